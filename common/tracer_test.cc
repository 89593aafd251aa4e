#include "common/tracer.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ecomstream::tracing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A process environment the test owns.
EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Keeps every ended span.
class RecordingProcessor : public SpanProcessor {
 public:
  void OnEnd(std::unique_ptr<SpanData> span) override {
    absl::MutexLock lock(&mu_);
    spans_.push_back(*span);
  }
  absl::Status ForceFlush(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Shutdown(absl::Duration) override { return absl::OkStatus(); }
  ExportStats stats() const override { return ExportStats(); }
  std::vector<SpanData> spans() const {
    absl::MutexLock lock(&mu_);
    return spans_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<SpanData> spans_;
};

TraceId TraceIdWithLow64(uint64_t low) {
  TraceId id;
  id.bytes[0] = 0x01;
  for (int i = 0; i < 8; ++i) id.bytes[15 - i] = static_cast<uint8_t>(low >> (8 * i));
  return id;
}

const TraceContext kSampledParent(NewTraceId(), NewSpanId(), kTraceFlagSampled);
const TraceContext kUnsampledParent(NewTraceId(), NewSpanId(), 0);

// --- Sampler -----------------------------------------------------------------------------------

TEST(SamplerTest, AlwaysOnAndAlwaysOffIgnoreTheParent) {
  EXPECT_TRUE(Sampler::AlwaysOn().ShouldSample(TraceContext(), NewTraceId()));
  EXPECT_TRUE(Sampler::AlwaysOn().ShouldSample(kUnsampledParent, kUnsampledParent.trace_id()));
  EXPECT_FALSE(Sampler::AlwaysOff().ShouldSample(TraceContext(), NewTraceId()));
  EXPECT_FALSE(Sampler::AlwaysOff().ShouldSample(kSampledParent, kSampledParent.trace_id()));
}

TEST(SamplerTest, TraceIdRatioComparesTheLow63BitsOfTheIdWithRatioTimesTwoTo63) {
  const Sampler quarter = Sampler::TraceIdRatio(0.25);
  const uint64_t bound = uint64_t{1} << 61;  // 0.25 * 2^63
  // The sampler looks at Low64() >> 1, so the boundary on Low64 is 2 * bound.
  EXPECT_TRUE(quarter.ShouldSample(TraceContext(), TraceIdWithLow64(0)));
  EXPECT_TRUE(quarter.ShouldSample(TraceContext(), TraceIdWithLow64(2 * bound - 1)));
  EXPECT_FALSE(quarter.ShouldSample(TraceContext(), TraceIdWithLow64(2 * bound)));
  EXPECT_FALSE(quarter.ShouldSample(TraceContext(), TraceIdWithLow64(~uint64_t{0})));
  // Ratio 1 samples the largest id, ratio 0 not even the smallest.
  EXPECT_TRUE(Sampler::TraceIdRatio(1.0).ShouldSample(TraceContext(), TraceIdWithLow64(~uint64_t{0})));
  EXPECT_FALSE(Sampler::TraceIdRatio(0.0).ShouldSample(TraceContext(), TraceIdWithLow64(0)));
}

TEST(SamplerTest, TraceIdRatioIsDeterministicPerTraceIdAndNearTheRatio) {
  const Sampler a = Sampler::TraceIdRatio(0.3);
  const Sampler b = Sampler::TraceIdRatio(0.3);
  // A fixed pseudo-random sequence (SplitMix64) so the count below is the same on every run.
  uint64_t state = 42;
  int sampled = 0;
  for (int i = 0; i < 10000; ++i) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    const TraceId id = TraceIdWithLow64(z ^ (z >> 31));
    const bool decision = a.ShouldSample(TraceContext(), id);
    ASSERT_EQ(decision, b.ShouldSample(TraceContext(), id));
    ASSERT_EQ(decision, a.ShouldSample(TraceContext(), id));
    sampled += decision ? 1 : 0;
  }
  EXPECT_GT(sampled, 2800);
  EXPECT_LT(sampled, 3200);
}

TEST(SamplerTest, ParentBasedFollowsTheParentsSampledFlag) {
  for (const Sampler& root : {Sampler::AlwaysOn(), Sampler::AlwaysOff(), Sampler::TraceIdRatio(0.5)}) {
    const Sampler sampler = Sampler::ParentBased(root);
    EXPECT_TRUE(sampler.ShouldSample(kSampledParent, kSampledParent.trace_id())) << sampler.Description();
    EXPECT_FALSE(sampler.ShouldSample(kUnsampledParent, kUnsampledParent.trace_id())) << sampler.Description();
  }
}

TEST(SamplerTest, ParentBasedAsksTheRootSamplerForARootSpan) {
  EXPECT_TRUE(Sampler::ParentBased(Sampler::AlwaysOn()).ShouldSample(TraceContext(), NewTraceId()));
  EXPECT_FALSE(Sampler::ParentBased(Sampler::AlwaysOff()).ShouldSample(TraceContext(), NewTraceId()));
  const Sampler ratio = Sampler::ParentBased(Sampler::TraceIdRatio(0.5));
  EXPECT_TRUE(ratio.ShouldSample(TraceContext(), TraceIdWithLow64(0)));
  EXPECT_FALSE(ratio.ShouldSample(TraceContext(), TraceIdWithLow64(~uint64_t{0})));
}

TEST(SamplerTest, FromNameKnowsTheSixOtelSamplers) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "parentbased_always_on"},
      {"always_on", "always_on"},
      {"always_off", "always_off"},
      {"traceidratio", "traceidratio(1)"},
      {"parentbased_always_on", "parentbased_always_on"},
      {"parentbased_always_off", "parentbased_always_off"},
      {"parentbased_traceidratio", "parentbased_traceidratio(1)"},
      {" Always_Off ", "always_off"},
  };
  for (const auto& [name, description] : cases) {
    absl::StatusOr<Sampler> sampler = Sampler::FromName(name, "");
    ASSERT_TRUE(sampler.ok()) << name << ": " << sampler.status();
    EXPECT_EQ(sampler->Description(), description) << name;
  }
  EXPECT_EQ(Sampler::FromName("traceidratio", "0.25")->Description(), "traceidratio(0.25)");
  EXPECT_EQ(Sampler::FromName("parentbased_traceidratio", "0")->Description(), "parentbased_traceidratio(0)");
  // The argument only matters to the ratio samplers.
  EXPECT_EQ(Sampler::FromName("always_on", "junk")->Description(), "always_on");
}

TEST(SamplerTest, FromNameRejectsUnknownNamesAndBadRatios) {
  absl::Status unknown = Sampler::FromName("sometimes", "").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.message(), HasSubstr("OTEL_TRACES_SAMPLER=\"sometimes\""));
  for (const char* arg : {"abc", "1.5", "-0.1", "nan", "0.5x", "inf"}) {
    absl::Status status = Sampler::FromName("traceidratio", arg).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << arg;
    EXPECT_THAT(status.message(), HasSubstr("OTEL_TRACES_SAMPLER_ARG")) << arg;
  }
}

// --- Configuration -----------------------------------------------------------------------------

std::string StringAttribute(const std::vector<Attribute>& attributes, absl::string_view key) {
  for (const Attribute& attribute : attributes) {
    if (attribute.key == key) return std::get<std::string>(attribute.value);
  }
  return "<absent>";
}

std::vector<std::string> Keys(const std::vector<Attribute>& attributes) {
  std::vector<std::string> keys;
  for (const Attribute& attribute : attributes) keys.push_back(attribute.key);
  return keys;
}

TEST(TracerOptionsTest, DefaultsWithAnEmptyEnvironment) {
  absl::StatusOr<TracerOptions> options = TracerOptionsFromEnvironment("ecomstream-writer", MapEnv({}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_FALSE(options->disabled);
  EXPECT_TRUE(options->export_otlp);
  EXPECT_EQ(options->sampler.Description(), "parentbased_always_on");
  EXPECT_THAT(Keys(options->resource), ElementsAre("service.name", "telemetry.sdk.name", "telemetry.sdk.language"));
  EXPECT_EQ(StringAttribute(options->resource, "service.name"), "ecomstream-writer");
  EXPECT_EQ(StringAttribute(options->resource, "telemetry.sdk.language"), "cpp");
}

TEST(TracerOptionsTest, ServiceNamePrecedenceIsEnvThenResourceAttributesThenDefault) {
  auto name = [](std::map<std::string, std::string> env) {
    return StringAttribute(TracerOptionsFromEnvironment("default-name", MapEnv(std::move(env)))->resource,
                           "service.name");
  };
  EXPECT_EQ(name({}), "default-name");
  EXPECT_EQ(name({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"}}), "from-attrs");
  EXPECT_EQ(name({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"}, {"OTEL_SERVICE_NAME", "from-env"}}),
            "from-env");
  EXPECT_EQ(name({{"OTEL_SERVICE_NAME", ""}}), "default-name");  // empty means unset
}

TEST(TracerOptionsTest, ResourceAttributesAreDecodedAndKeptInOrder) {
  absl::StatusOr<TracerOptions> options = TracerOptionsFromEnvironment(
      "svc", MapEnv({{"OTEL_RESOURCE_ATTRIBUTES",
                      " deployment.environment = staging , team=data%20eng%2Cplatform,k8s.pod.name=p-1"}}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_THAT(Keys(options->resource), ElementsAre("service.name", "deployment.environment", "team", "k8s.pod.name",
                                                   "telemetry.sdk.name", "telemetry.sdk.language"));
  EXPECT_EQ(StringAttribute(options->resource, "deployment.environment"), "staging");
  EXPECT_EQ(StringAttribute(options->resource, "team"), "data eng,platform");
}

TEST(TracerOptionsTest, MalformedResourceAttributesNameTheVariable) {
  for (const char* text : {"novalue", "=value", "a=%zz", "a=%4", "a=b,c"}) {
    absl::Status status = TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_RESOURCE_ATTRIBUTES", text}})).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(status.message(), HasSubstr("OTEL_RESOURCE_ATTRIBUTES")) << text;
  }
}

TEST(ParseResourceAttributesTest, ToleratesEmptyEntriesAndLetsTheLastDuplicateWin) {
  absl::StatusOr<std::vector<Attribute>> attributes = ParseResourceAttributes("a=1,,b=x=y, a=2 ,");
  ASSERT_TRUE(attributes.ok()) << attributes.status();
  EXPECT_THAT(Keys(*attributes), ElementsAre("a", "b"));
  EXPECT_EQ(StringAttribute(*attributes, "a"), "2");
  EXPECT_EQ(StringAttribute(*attributes, "b"), "x=y");
  EXPECT_TRUE(ParseResourceAttributes("")->empty());
}

TEST(TracerOptionsTest, SdkDisabledAcceptsTrueAndFalseInAnyCaseOnly) {
  EXPECT_TRUE(TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_SDK_DISABLED", "true"}}))->disabled);
  EXPECT_TRUE(TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_SDK_DISABLED", "TRUE"}}))->disabled);
  EXPECT_FALSE(TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_SDK_DISABLED", "False"}}))->disabled);
  EXPECT_FALSE(TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_SDK_DISABLED", ""}}))->disabled);
  absl::Status status = TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_SDK_DISABLED", "yes"}})).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("OTEL_SDK_DISABLED"));
}

TEST(TracerOptionsTest, SamplerAndExporterComeFromTheEnvironment) {
  absl::StatusOr<TracerOptions> options = TracerOptionsFromEnvironment(
      "svc", MapEnv({{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                     {"OTEL_TRACES_SAMPLER_ARG", "0.1"},
                     {"OTEL_TRACES_EXPORTER", "none"}}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->sampler.Description(), "parentbased_traceidratio(0.1)");
  EXPECT_FALSE(options->export_otlp);
  EXPECT_EQ(TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_TRACES_EXPORTER", "zipkin"}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TracerOptionsFromEnvironment("svc", MapEnv({{"OTEL_TRACES_SAMPLER", "bogus"}})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TracerTest, FromEnvironmentRejectsABadEndpointNamingTheVariable) {
  absl::Status status =
      Tracer::FromEnvironment("svc", MapEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector"}})).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("OTEL_EXPORTER_OTLP_ENDPOINT"));
  // Disabled: the exporter variables are not even read.
  EXPECT_TRUE(Tracer::FromEnvironment(
                  "svc", MapEnv({{"OTEL_SDK_DISABLED", "true"}, {"OTEL_EXPORTER_OTLP_ENDPOINT", "collector"}}))
                  .ok());
}

// --- Spans -------------------------------------------------------------------------------------

class SpanTest : public ::testing::Test {
 protected:
  explicit SpanTest(Sampler sampler = Sampler::ParentBased(Sampler::AlwaysOn())) {
    TracerOptions options;
    options.sampler = sampler;
    auto processor = std::make_unique<RecordingProcessor>();
    processor_ = processor.get();
    tracer_ = std::make_unique<Tracer>(options, std::move(processor));
  }
  RecordingProcessor* processor_;
  std::unique_ptr<Tracer> tracer_;
};

TEST_F(SpanTest, ARootSpanStartsANewSampledTrace) {
  Span span = tracer_->StartSpan("file.write", SpanKind::kProducer);
  EXPECT_TRUE(span.IsRecording());
  EXPECT_TRUE(span.context().IsValid());
  EXPECT_TRUE(span.context().sampled());
  const TraceContext context = span.context();
  span.End();
  EXPECT_FALSE(span.IsRecording());
  std::vector<SpanData> spans = processor_->spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].name, "file.write");
  EXPECT_EQ(spans[0].kind, SpanKind::kProducer);
  EXPECT_EQ(spans[0].trace_id, context.trace_id());
  EXPECT_EQ(spans[0].span_id, context.span_id());
  EXPECT_FALSE(spans[0].parent_span_id.IsValid());
  EXPECT_EQ(spans[0].flags, kTraceFlagSampled);
  EXPECT_LE(spans[0].start_unix_nanos, spans[0].end_unix_nanos);
}

TEST_F(SpanTest, AChildContinuesTheParentsTraceFromItsTraceparent) {
  Span parent = tracer_->StartSpan("file.process", SpanKind::kConsumer);
  const std::string traceparent = parent.context().ToTraceparent();
  Span child = tracer_->StartSpan("batch.send", SpanKind::kClient, TraceContext::FromTraceparentOrInvalid(traceparent));
  EXPECT_EQ(child.context().trace_id(), parent.context().trace_id());
  EXPECT_NE(child.context().span_id(), parent.context().span_id());
  child.End();
  parent.End();
  std::vector<SpanData> spans = processor_->spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].name, "batch.send");
  EXPECT_EQ(spans[0].parent_span_id, parent.context().span_id());
  EXPECT_EQ(spans[0].trace_id, parent.context().trace_id());
}

TEST_F(SpanTest, AttributesKeepTheirTypesAndASecondSetReplaces) {
  Span span = tracer_->StartSpan("db.commit", SpanKind::kClient);
  span.SetAttribute("db.system", "postgresql");
  span.SetAttribute("file.name", std::string("a.csv"));
  span.SetAttribute("rows", 42);
  span.SetAttribute("bytes", uint64_t{1} << 40);
  span.SetAttribute("ratio", 0.5);
  span.SetAttribute("late", true);
  span.SetAttribute("rows", int64_t{43});
  span.End();
  const SpanData data = processor_->spans().at(0);
  EXPECT_THAT(Keys(data.attributes), ElementsAre("db.system", "file.name", "rows", "bytes", "ratio", "late"));
  EXPECT_EQ(std::get<std::string>(data.attributes[0].value), "postgresql");
  EXPECT_EQ(std::get<std::string>(data.attributes[1].value), "a.csv");
  EXPECT_EQ(std::get<int64_t>(data.attributes[2].value), 43);
  EXPECT_EQ(std::get<int64_t>(data.attributes[3].value), int64_t{1} << 40);
  EXPECT_EQ(std::get<double>(data.attributes[4].value), 0.5);
  EXPECT_EQ(std::get<bool>(data.attributes[5].value), true);
}

TEST_F(SpanTest, AttributesAndEventsBeyondTheLimitAreCountedAsDropped) {
  Span span = tracer_->StartSpan("many", SpanKind::kInternal);
  for (size_t i = 0; i < kMaxAttributesPerSpan + 5; ++i) span.SetAttribute(absl::StrCat("k", i), int64_t(i));
  for (size_t i = 0; i < kMaxEventsPerSpan + 3; ++i) span.AddEvent("retry");
  span.SetAttribute("k0", "replaced, not dropped");
  span.End();
  const SpanData data = processor_->spans().at(0);
  EXPECT_EQ(data.attributes.size(), kMaxAttributesPerSpan);
  EXPECT_EQ(data.dropped_attributes_count, 5u);
  EXPECT_EQ(std::get<std::string>(data.attributes[0].value), "replaced, not dropped");
  EXPECT_EQ(data.events.size(), kMaxEventsPerSpan);
  EXPECT_EQ(data.dropped_events_count, 3u);
}

TEST_F(SpanTest, ExplicitTimesAreKeptToTheNanosecond) {
  const absl::Time start = absl::FromUnixNanos(1'700'000'000'123'456'789);
  StartSpanOptions options;
  options.start_time = start;
  Span span = tracer_->StartSpan("file.write", SpanKind::kProducer, TraceContext(), options);
  span.AddEvent("renamed", start + absl::Milliseconds(2));
  span.End(start + absl::Milliseconds(5));
  const SpanData data = processor_->spans().at(0);
  EXPECT_EQ(data.start_unix_nanos, 1'700'000'000'123'456'789);
  EXPECT_EQ(data.end_unix_nanos, 1'700'000'000'128'456'789);
  ASSERT_EQ(data.events.size(), 1u);
  EXPECT_EQ(data.events[0].name, "renamed");
  EXPECT_EQ(data.events[0].time_unix_nanos, 1'700'000'000'125'456'789);
}

TEST_F(SpanTest, FixedIdsNameARootSpanButAChildKeepsItsParentsTrace) {
  StartSpanOptions options;
  ASSERT_TRUE(TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736", &options.root_trace_id));
  ASSERT_TRUE(SpanId::FromHex("00f067aa0ba902b7", &options.span_id));
  Span root = tracer_->StartSpan("file.write", SpanKind::kProducer, TraceContext(), options);
  EXPECT_EQ(root.context().ToTraceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  Span child = tracer_->StartSpan("file.process", SpanKind::kConsumer, kSampledParent, options);
  EXPECT_EQ(child.context().trace_id(), kSampledParent.trace_id());
  EXPECT_EQ(child.context().span_id().ToHex(), "00f067aa0ba902b7");
  child.End();
  root.End();
  const std::vector<SpanData> spans = processor_->spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[1].trace_id.ToHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(spans[1].span_id.ToHex(), "00f067aa0ba902b7");
  EXPECT_FALSE(spans[1].parent_span_id.IsValid());
  EXPECT_EQ(spans[0].parent_span_id, kSampledParent.span_id());
}

TEST_F(SpanTest, AnEndBeforeTheStartBecomesAZeroDuration) {
  StartSpanOptions options;
  options.start_time = absl::FromUnixSeconds(2'000'000'000);
  Span span = tracer_->StartSpan("clock.skew", SpanKind::kInternal, TraceContext(), options);
  span.End(absl::FromUnixSeconds(1'999'999'999));
  const SpanData data = processor_->spans().at(0);
  EXPECT_EQ(data.end_unix_nanos, data.start_unix_nanos);
}

TEST_F(SpanTest, StatusRecordsErrorsWithTheirCode) {
  Span failed = tracer_->StartSpan("batch.write", SpanKind::kServer);
  failed.SetStatus(absl::UnavailableError("database down"));
  failed.End();
  Span fine = tracer_->StartSpan("batch.write", SpanKind::kServer);
  fine.SetStatus(absl::OkStatus());
  fine.End();
  Span untouched = tracer_->StartSpan("batch.write", SpanKind::kServer);
  untouched.End();
  std::vector<SpanData> spans = processor_->spans();
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].status_code, SpanStatusCode::kError);
  EXPECT_EQ(spans[0].status_message, "UNAVAILABLE: database down");
  EXPECT_EQ(spans[1].status_code, SpanStatusCode::kOk);
  EXPECT_EQ(spans[2].status_code, SpanStatusCode::kUnset);
}

TEST_F(SpanTest, EndTwiceDestructionAndMoveAssignmentEachEndExactlyOnce) {
  {
    Span span = tracer_->StartSpan("ended.twice", SpanKind::kInternal);
    span.End();
    span.End();
  }
  { Span span = tracer_->StartSpan("ended.by.scope", SpanKind::kInternal); }
  Span a = tracer_->StartSpan("replaced", SpanKind::kInternal);
  a = tracer_->StartSpan("replacement", SpanKind::kInternal);
  Span b = std::move(a);
  b.SetAttribute("after.move", true);
  b.End();
  std::vector<std::string> names;
  for (const SpanData& data : processor_->spans()) names.push_back(data.name);
  EXPECT_THAT(names, ElementsAre("ended.twice", "ended.by.scope", "replaced", "replacement"));
  EXPECT_THAT(Keys(processor_->spans()[3].attributes), ElementsAre("after.move"));
}

class UnsampledSpanTest : public SpanTest {
 protected:
  UnsampledSpanTest() : SpanTest(Sampler::ParentBased(Sampler::AlwaysOff())) {}
};

TEST_F(UnsampledSpanTest, AnUnsampledSpanPropagatesButRecordsNothing) {
  Span root = tracer_->StartSpan("file.process", SpanKind::kConsumer);
  EXPECT_FALSE(root.IsRecording());
  EXPECT_TRUE(root.context().IsValid());
  EXPECT_FALSE(root.context().sampled());
  root.SetAttribute("ignored", 1);
  Span child = tracer_->StartSpan("batch.send", SpanKind::kClient, root.context());
  EXPECT_EQ(child.context().trace_id(), root.context().trace_id());
  EXPECT_FALSE(child.context().sampled());
  // A sampled upstream parent wins over the always_off root sampler.
  Span continued = tracer_->StartSpan("batch.write", SpanKind::kServer, kSampledParent);
  EXPECT_TRUE(continued.IsRecording());
  child.End();
  root.End();
  continued.End();
  ASSERT_EQ(processor_->spans().size(), 1u);
  EXPECT_EQ(processor_->spans()[0].name, "batch.write");
}

TEST(DisabledTracerTest, SpansPassTheParentContextThroughAndRecordNothing) {
  std::unique_ptr<Tracer> tracer = Tracer::Disabled();
  EXPECT_FALSE(tracer->enabled());
  Span root = tracer->StartSpan("file.process", SpanKind::kConsumer);
  EXPECT_FALSE(root.IsRecording());
  EXPECT_FALSE(root.context().IsValid());
  EXPECT_EQ(root.context().ToTraceparent(), "");
  Span child = tracer->StartSpan("batch.write", SpanKind::kServer, kSampledParent);
  EXPECT_EQ(child.context(), kSampledParent);
  EXPECT_EQ(tracer->stats().exported, 0u);
  EXPECT_TRUE(tracer->ForceFlush(absl::Seconds(1)).ok());
}

TEST(DisabledTracerTest, ADisabledTracerIgnoresTheProcessorItWasGiven) {
  TracerOptions options;
  options.disabled = true;
  Tracer tracer(options, std::make_unique<RecordingProcessor>());  // dropped: nothing to record
  Span span = tracer.StartSpan("x", SpanKind::kInternal);
  EXPECT_FALSE(span.IsRecording());
}

TEST(ExporterNoneTest, SpansAreSampledAndPropagatedButNotRecorded) {
  absl::StatusOr<std::unique_ptr<Tracer>> tracer =
      Tracer::FromEnvironment("svc", MapEnv({{"OTEL_TRACES_EXPORTER", "none"}}));
  ASSERT_TRUE(tracer.ok()) << tracer.status();
  Span span = (*tracer)->StartSpan("file.process", SpanKind::kConsumer);
  EXPECT_TRUE(span.context().IsValid());
  EXPECT_TRUE(span.context().sampled());
  EXPECT_FALSE(span.IsRecording());
}

}  // namespace
}  // namespace ecomstream::tracing

#include "common/otlp_exporter.h"

#include <map>
#include <thread>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/otel/test_collector.h"

namespace ecomstream::tracing {
namespace {

using ::ecomstream::testing::CollectedSpan;
using ::ecomstream::testing::TestCollector;
using ::testing::HasSubstr;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::unique_ptr<TestCollector> StartCollector() {
  absl::StatusOr<std::unique_ptr<TestCollector>> collector = TestCollector::Start();
  EXPECT_TRUE(collector.ok()) << collector.status();
  return collector.ok() ? *std::move(collector) : nullptr;
}

// An always_on tracer exporting to `endpoint` with the given batching.
std::unique_ptr<Tracer> ExportingTracer(const std::string& endpoint, size_t batch, size_t queue,
                                        absl::Duration schedule_delay, OtlpExporter** exporter_out = nullptr) {
  OtlpExporterOptions exporter_options;
  exporter_options.endpoint = endpoint;
  exporter_options.max_export_batch_size = batch;
  exporter_options.max_queue_size = queue;
  exporter_options.schedule_delay = schedule_delay;
  exporter_options.export_timeout = absl::Seconds(30);
  TracerOptions options;
  options.sampler = Sampler::AlwaysOn();
  options.resource = {{"service.name", std::string("exporter-test")}};
  absl::StatusOr<std::unique_ptr<OtlpExporter>> exporter = OtlpExporter::Create(exporter_options, options.resource);
  EXPECT_TRUE(exporter.ok()) << exporter.status();
  if (exporter_out != nullptr) *exporter_out = exporter->get();
  return std::make_unique<Tracer>(options, *std::move(exporter));
}

void EndSpans(Tracer& tracer, int n) {
  for (int i = 0; i < n; ++i) {
    Span span = tracer.StartSpan("row.batch", SpanKind::kInternal);
    span.SetAttribute("i", i);
  }
}

// --- Configuration -----------------------------------------------------------------------------

TEST(OtlpEndpointTest, AcceptsHostPortAndHttpOrHttpsUrls) {
  struct Case {
    const char* endpoint;
    const char* target;
    bool tls;
  };
  for (const Case& c : {Case{"http://127.0.0.1:4317", "127.0.0.1:4317", false},
                        Case{"127.0.0.1:4317", "127.0.0.1:4317", false},
                        Case{"otel-collector:4317", "otel-collector:4317", false},
                        Case{"HTTP://collector:4317/", "collector:4317", false},
                        Case{"https://tempo.example.com:443", "tempo.example.com:443", true},
                        Case{"http://[::1]:4317", "[::1]:4317", false},
                        Case{" http://collector:4317 ", "collector:4317", false}}) {
    absl::StatusOr<OtlpEndpoint> parsed = ParseOtlpEndpoint(c.endpoint);
    ASSERT_TRUE(parsed.ok()) << c.endpoint << ": " << parsed.status();
    EXPECT_EQ(parsed->target, c.target) << c.endpoint;
    EXPECT_EQ(parsed->use_tls, c.tls) << c.endpoint;
  }
}

TEST(OtlpEndpointTest, RejectsPathsOtherSchemesAndBadPorts) {
  for (const char* endpoint : {"", "collector", "http://collector", "http://collector:4317/v1/traces",
                               "grpc://collector:4317", "unix:///tmp/otel.sock", "collector:0", "collector:65536",
                               "collector:43x7", ":4317", "http://:4317", "::1:4317", "[::1]", "[::1]4317",
                               "collector:-1"}) {
    EXPECT_EQ(ParseOtlpEndpoint(endpoint).status().code(), absl::StatusCode::kInvalidArgument) << endpoint;
  }
}

TEST(OtlpExporterOptionsTest, ReadsTheOtelVariablesWithTracesSpecificOnesFirst) {
  absl::StatusOr<OtlpExporterOptions> options = OtlpExporterOptionsFromEnvironment(
      MapEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4317"},
              {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"},
              {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
              {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
              {"OTEL_BSP_SCHEDULE_DELAY", "200"},
              {"OTEL_BSP_MAX_QUEUE_SIZE", "4096"},
              {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256"}}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->endpoint, "http://traces:4317");
  EXPECT_EQ(options->export_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(options->schedule_delay, absl::Milliseconds(200));
  EXPECT_EQ(options->max_queue_size, 4096u);
  EXPECT_EQ(options->max_export_batch_size, 256u);

  absl::StatusOr<OtlpExporterOptions> defaults = OtlpExporterOptionsFromEnvironment(MapEnv({}));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->endpoint, "http://localhost:4317");
  EXPECT_EQ(defaults->max_queue_size, 2048u);
  EXPECT_EQ(defaults->max_export_batch_size, 512u);
  EXPECT_EQ(defaults->schedule_delay, absl::Seconds(5));
}

TEST(OtlpExporterOptionsTest, MalformedValuesAreErrorsNamingTheVariable) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317/v1/traces"},
      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector"},
      {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"},
      {"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"},
      {"OTEL_BSP_SCHEDULE_DELAY", "0"},
      {"OTEL_BSP_MAX_QUEUE_SIZE", "-1"},
      {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "many"},
  };
  for (const auto& [name, value] : cases) {
    absl::Status status = OtlpExporterOptionsFromEnvironment(MapEnv({{name, value}})).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name << "=" << value;
    EXPECT_THAT(status.message(), HasSubstr(name)) << name << "=" << value;
  }
}

TEST(OtlpExporterOptionsTest, CreateCapsTheBatchAtTheQueueSize) {
  OtlpExporterOptions options;
  options.endpoint = "127.0.0.1:1";
  options.max_queue_size = 8;
  options.max_export_batch_size = 100;
  absl::StatusOr<std::unique_ptr<OtlpExporter>> exporter = OtlpExporter::Create(options, {});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_EQ((*exporter)->options().max_export_batch_size, 8u);
  options.max_queue_size = 0;
  EXPECT_EQ(OtlpExporter::Create(options, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Export to a real collector over gRPC --------------------------------------------------------

const CollectedSpan* FindSpan(const std::vector<CollectedSpan>& spans, absl::string_view name) {
  for (const CollectedSpan& span : spans) {
    if (span.span.name() == name) return &span;
  }
  return nullptr;
}

TEST(OtlpExportTest, DeliversAFileTraceWithIdsKindsAttributesAndResource) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  const std::map<std::string, std::string> common_env = {
      {"OTEL_EXPORTER_OTLP_ENDPOINT", collector->endpoint()},
      {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=data%20eng"},
      {"OTEL_BSP_SCHEDULE_DELAY", "20"},
  };
  auto env_for = [&](const std::string& service) {
    std::map<std::string, std::string> env = common_env;
    env["OTEL_SERVICE_NAME"] = service;
    return MapEnv(env);
  };
  absl::StatusOr<std::unique_ptr<Tracer>> generator = Tracer::FromEnvironment("x", env_for("ecomstream-generator"));
  absl::StatusOr<std::unique_ptr<Tracer>> processor = Tracer::FromEnvironment("x", env_for("ecomstream-processor"));
  absl::StatusOr<std::unique_ptr<Tracer>> writer = Tracer::FromEnvironment("x", env_for("ecomstream-writer"));
  ASSERT_TRUE(generator.ok() && processor.ok() && writer.ok());

  // generator: file.write from a recorded start time; its traceparent goes into the manifest.
  const absl::Time write_started = absl::FromUnixNanos(1'750'000'000'000'000'123);
  StartSpanOptions from_recorded;
  from_recorded.start_time = write_started;
  Span file_write = (*generator)->StartSpan("file.write", SpanKind::kProducer, TraceContext(), from_recorded);
  file_write.SetAttribute("file.name", "events-0001.csv");
  const std::string manifest_traceparent = file_write.context().ToTraceparent();
  file_write.End(write_started + absl::Milliseconds(3));

  // processor: continues the trace from the manifest.
  Span file_process = (*processor)->StartSpan("file.process", SpanKind::kConsumer,
                                              TraceContext::FromTraceparentOrInvalid(manifest_traceparent));
  file_process.SetAttribute("rows", int64_t{1000});
  file_process.SetAttribute("valid.ratio", 0.98);
  file_process.SetAttribute("has.manifest", true);
  Span batch_send = (*processor)->StartSpan("batch.send", SpanKind::kClient, file_process.context());
  const std::string metadata_traceparent = batch_send.context().ToTraceparent();

  // writer: batch.write from the gRPC metadata, db.commit inside it.
  Span batch_write = (*writer)->StartSpan("batch.write", SpanKind::kServer,
                                          TraceContext::FromTraceparentOrInvalid(metadata_traceparent));
  Span db_commit = (*writer)->StartSpan("db.commit", SpanKind::kClient, batch_write.context());
  db_commit.SetAttribute("db.system", "postgresql");
  db_commit.SetStatus(absl::OkStatus());
  db_commit.End();
  batch_write.End();
  batch_send.End();
  file_process.End();

  for (auto* tracer : {&*generator, &*processor, &*writer}) {
    EXPECT_TRUE((*tracer)->ForceFlush(absl::Seconds(10)).ok());
  }
  ASSERT_TRUE(collector->WaitForSpans(5, absl::Seconds(10)));
  const std::string trace_id = file_write.context().trace_id().ToHex();
  const std::vector<CollectedSpan> spans = collector->SpansForTrace(trace_id);
  ASSERT_EQ(spans.size(), 5u);
  EXPECT_EQ(collector->span_count(), 5u);

  const CollectedSpan* write = FindSpan(spans, "file.write");
  const CollectedSpan* process = FindSpan(spans, "file.process");
  const CollectedSpan* send = FindSpan(spans, "batch.send");
  const CollectedSpan* bwrite = FindSpan(spans, "batch.write");
  const CollectedSpan* commit = FindSpan(spans, "db.commit");
  ASSERT_TRUE(write && process && send && bwrite && commit);

  // Parent chain.
  EXPECT_EQ(write->parent_span_id_hex(), "");
  EXPECT_EQ(write->span_id_hex(), file_write.context().span_id().ToHex());
  EXPECT_EQ(process->parent_span_id_hex(), write->span_id_hex());
  EXPECT_EQ(send->parent_span_id_hex(), process->span_id_hex());
  EXPECT_EQ(bwrite->parent_span_id_hex(), send->span_id_hex());
  EXPECT_EQ(commit->parent_span_id_hex(), bwrite->span_id_hex());

  // Kinds.
  EXPECT_EQ(write->span.kind(), otlp_trace::Span::SPAN_KIND_PRODUCER);
  EXPECT_EQ(process->span.kind(), otlp_trace::Span::SPAN_KIND_CONSUMER);
  EXPECT_EQ(send->span.kind(), otlp_trace::Span::SPAN_KIND_CLIENT);
  EXPECT_EQ(bwrite->span.kind(), otlp_trace::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(commit->span.kind(), otlp_trace::Span::SPAN_KIND_CLIENT);

  // Times (nanoseconds), flags and status.
  EXPECT_EQ(write->span.start_time_unix_nano(), 1'750'000'000'000'000'123u);
  EXPECT_EQ(write->span.end_time_unix_nano(), 1'750'000'000'003'000'123u);
  EXPECT_LE(send->span.start_time_unix_nano(), send->span.end_time_unix_nano());
  EXPECT_LE(process->span.start_time_unix_nano(), send->span.start_time_unix_nano());
  EXPECT_EQ(process->span.flags(), 1u);
  EXPECT_EQ(commit->span.status().code(), otlp_trace::Status::STATUS_CODE_OK);
  EXPECT_FALSE(process->span.has_status());

  // Attributes of each type.
  EXPECT_EQ(write->Attribute("file.name")->string_value(), "events-0001.csv");
  EXPECT_EQ(process->Attribute("rows")->int_value(), 1000);
  EXPECT_EQ(process->Attribute("valid.ratio")->double_value(), 0.98);
  EXPECT_TRUE(process->Attribute("has.manifest")->bool_value());
  EXPECT_EQ(commit->Attribute("db.system")->string_value(), "postgresql");
  EXPECT_FALSE(send->Attribute("rows").has_value());

  // Resource and scope.
  EXPECT_EQ(write->ResourceAttribute("service.name"), "ecomstream-generator");
  EXPECT_EQ(process->ResourceAttribute("service.name"), "ecomstream-processor");
  EXPECT_EQ(commit->ResourceAttribute("service.name"), "ecomstream-writer");
  for (const CollectedSpan& span : spans) {
    EXPECT_EQ(span.ResourceAttribute("deployment.environment"), "test");
    EXPECT_EQ(span.ResourceAttribute("team"), "data eng");
    EXPECT_EQ(span.ResourceAttribute("telemetry.sdk.language"), "cpp");
    EXPECT_EQ(span.scope.name(), "ecomstream");
  }
  for (auto* tracer : {&*generator, &*processor, &*writer}) {
    EXPECT_EQ((*tracer)->stats().dropped(), 0u);
  }
  EXPECT_EQ((*processor)->stats().exported, 2u);
}

TEST(OtlpExportTest, SendsFullBatchesThenFlushesTheRemainder) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  std::unique_ptr<Tracer> tracer = ExportingTracer(collector->endpoint(), 10, 100, absl::Hours(1));
  EndSpans(*tracer, 25);
  ASSERT_TRUE(tracer->ForceFlush(absl::Seconds(10)).ok());
  EXPECT_EQ(collector->span_count(), 25u);
  EXPECT_EQ(collector->export_calls(), 3);  // 10 + 10 + 5
  const ExportStats stats = tracer->stats();
  EXPECT_EQ(stats.exported, 25u);
  EXPECT_EQ(stats.dropped(), 0u);
  EXPECT_EQ(stats.queued, 0u);
}

TEST(OtlpExportTest, ThePartialBatchLeavesAfterTheScheduleDelayWithoutAFlush) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  std::unique_ptr<Tracer> tracer = ExportingTracer(collector->endpoint(), 512, 2048, absl::Milliseconds(50));
  EndSpans(*tracer, 3);
  EXPECT_TRUE(collector->WaitForSpans(3, absl::Seconds(10)));
  EXPECT_EQ(collector->span_count(), 3u);
}

TEST(OtlpExportTest, ABlockingCollectorNeverBlocksSpansAndTheOverflowIsDroppedAndCounted) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  collector->SetExportDelay(absl::Seconds(60));  // each Export hangs (until the collector stops)
  std::unique_ptr<Tracer> tracer = ExportingTracer(collector->endpoint(), 10, 100, absl::Hours(1));

  EndSpans(*tracer, 10);  // a full batch: the export thread sends it and hangs
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (collector->export_calls() < 1 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(collector->export_calls(), 1);

  // A blocking exporter would sit here for a minute; ours queues 100 and drops the rest.
  const absl::Time start = absl::Now();
  EndSpans(*tracer, 1000);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ExportStats stats = tracer->stats();
  EXPECT_EQ(stats.dropped_queue_full, 900u);
  EXPECT_EQ(stats.queued, 100u);
  EXPECT_EQ(stats.exported, 0u);

  // Shutdown cannot flush to a hung collector: it gives up at its deadline, cancels the call and
  // counts the in-flight batch and the queue as dropped.
  const absl::Time shutdown_start = absl::Now();
  const absl::Status shutdown = tracer->Shutdown(absl::Milliseconds(300));
  EXPECT_EQ(shutdown.code(), absl::StatusCode::kDeadlineExceeded) << shutdown;
  EXPECT_LT(absl::Now() - shutdown_start, absl::Seconds(5));
  stats = tracer->stats();
  EXPECT_EQ(stats.dropped_shutdown, 110u);
  EXPECT_EQ(stats.dropped_queue_full, 900u);
  EXPECT_EQ(stats.exported, 0u);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(collector->span_count(), 0u);
}

TEST(OtlpExportTest, AnAbsentCollectorCountsFailedExportsAndFlushSaysUnavailable) {
  std::string endpoint;
  {
    std::unique_ptr<TestCollector> gone = StartCollector();
    ASSERT_NE(gone, nullptr);
    endpoint = gone->endpoint();  // nothing listens here once it is destroyed
  }
  std::unique_ptr<Tracer> tracer = ExportingTracer(endpoint, 10, 100, absl::Hours(1));
  const absl::Time start = absl::Now();
  EndSpans(*tracer, 25);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  const absl::Status flush = tracer->ForceFlush(absl::Seconds(20));
  EXPECT_EQ(flush.code(), absl::StatusCode::kUnavailable) << flush;
  const ExportStats stats = tracer->stats();
  EXPECT_EQ(stats.exported, 0u);
  EXPECT_EQ(stats.dropped_export_failed, 25u);
  EXPECT_EQ(stats.dropped(), 25u);
}

TEST(OtlpExportTest, AFailedExportIsCountedAndLaterSpansStillArrive) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  std::unique_ptr<Tracer> tracer = ExportingTracer(collector->endpoint(), 512, 2048, absl::Hours(1));
  collector->SetExportStatus(absl::UnavailableError("collector overloaded"));
  EndSpans(*tracer, 4);
  EXPECT_EQ(tracer->ForceFlush(absl::Seconds(10)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(tracer->stats().dropped_export_failed, 4u);

  collector->SetExportStatus(absl::OkStatus());
  EndSpans(*tracer, 2);
  EXPECT_TRUE(tracer->ForceFlush(absl::Seconds(10)).ok());
  EXPECT_EQ(collector->span_count(), 2u);
  EXPECT_EQ(tracer->stats().exported, 2u);
  EXPECT_EQ(tracer->stats().dropped_export_failed, 4u);
}

TEST(OtlpExportTest, SdkDisabledExportsNothing) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  absl::StatusOr<std::unique_ptr<Tracer>> tracer = Tracer::FromEnvironment(
      "svc", MapEnv({{"OTEL_SDK_DISABLED", "true"},
                     {"OTEL_EXPORTER_OTLP_ENDPOINT", collector->endpoint()},
                     {"OTEL_BSP_SCHEDULE_DELAY", "1"}}));
  ASSERT_TRUE(tracer.ok()) << tracer.status();
  EndSpans(**tracer, 50);
  EXPECT_TRUE((*tracer)->Shutdown(absl::Seconds(5)).ok());
  EXPECT_EQ(collector->export_calls(), 0);
  EXPECT_EQ((*tracer)->stats().exported, 0u);
  EXPECT_EQ((*tracer)->stats().dropped(), 0u);
}

TEST(OtlpExportTest, ShutdownFlushesWhatIsQueuedAndDropsLaterSpans) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  std::unique_ptr<Tracer> tracer = ExportingTracer(collector->endpoint(), 512, 2048, absl::Hours(1));
  EndSpans(*tracer, 5);
  EXPECT_EQ(collector->export_calls(), 0);  // the batch is not full and the timer is an hour away
  EXPECT_TRUE(tracer->Shutdown(absl::Seconds(10)).ok());
  EXPECT_EQ(collector->span_count(), 5u);
  EndSpans(*tracer, 1);
  EXPECT_EQ(tracer->stats().exported, 5u);
  EXPECT_EQ(tracer->stats().dropped_shutdown, 1u);
  EXPECT_TRUE(tracer->Shutdown(absl::Seconds(1)).ok());  // idempotent
  EXPECT_TRUE(tracer->ForceFlush(absl::Seconds(1)).ok());
}

TEST(OtlpExportTest, ManyThreadsEndingSpansLoseNoneWhenTheQueueIsLargeEnough) {
  std::unique_ptr<TestCollector> collector = StartCollector();
  ASSERT_NE(collector, nullptr);
  collector->SetKeepSpans(false);
  std::unique_ptr<Tracer> tracer = ExportingTracer(collector->endpoint(), 256, 8192, absl::Milliseconds(10));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&tracer] { EndSpans(*tracer, 2000); });
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(tracer->ForceFlush(absl::Seconds(20)).ok());
  EXPECT_EQ(collector->span_count(), 8000u);
  EXPECT_EQ(tracer->stats().exported, 8000u);
  EXPECT_EQ(tracer->stats().dropped(), 0u);
}

}  // namespace
}  // namespace ecomstream::tracing

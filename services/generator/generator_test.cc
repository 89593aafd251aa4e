#include "services/generator/generator.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/trace_context.h"
#include "common/sha256.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/generator/testing/files.h"
#include "services/generator/testing/row_oracle.h"
#include "tests/otel/test_collector.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::generator {
namespace {

using testing::FreshPath;
using testing::ListDir;
using testing::ReadFile;

using testing::ClassifyCsv;
using testing::OracleFile;

using ::ecomstream::testing::CollectedSpan;
using ::ecomstream::testing::TestCollector;

constexpr char kStart[] = "2026-05-01T12:00:00Z";
constexpr int64_t kStartUs = 1'777'636'800'000'000;
constexpr int64_t kMinuteUs = 60'000'000;
constexpr int64_t kHourUs = 60 * kMinuteUs;

struct OutputFile {
  std::string name;
  std::string csv;
  std::string manifest_json;
  v1::FileManifest manifest;
};

// The CSVs of `dir` in name order, each with its manifest (if any).
std::vector<OutputFile> ReadOutput(const std::string& dir) {
  std::vector<OutputFile> files;
  for (const std::string& name : ListDir(dir)) {
    if (!absl::EndsWith(name, ".csv")) continue;
    OutputFile f;
    f.name = name;
    f.csv = ReadFile(dir + "/" + name);
    f.manifest_json = ReadFile(dir + "/" + name + ".manifest.json");
    if (!f.manifest_json.empty()) {
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(f.manifest_json, &f.manifest).ok()) << name;
    }
    files.push_back(std::move(f));
  }
  return files;
}

GeneratorConfig SimulatedConfig(const std::string& dir) {
  GeneratorConfig config;
  config.output_dir = dir;
  config.seed = 42;
  config.start_time = kStart;
  config.total_events = 20'000;
  config.events_per_file = 2'500;
  config.quiet = true;
  return config;
}

absl::StatusOr<RunSummary> RunWith(const GeneratorConfig& config, Clock* clock = SystemClock::Get(),
                                   const tracing::Tracer* tracer = nullptr) {
  metrics::Registry registry;
  ASSIGN_OR_RETURN(std::unique_ptr<Generator> generator, Generator::Create(config, clock, &registry, tracer));
  return generator->Run();
}

// A test collector and a tracer exporting to it, as the binary has with OTEL_EXPORTER_OTLP_ENDPOINT.
struct TracedRun {
  TracedRun() {
    auto started = TestCollector::Start();
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return;
    collector = *std::move(started);
    auto made = collector->NewTracer("ecomstream-generator");
    EXPECT_TRUE(made.ok()) << made.status();
    if (made.ok()) tracer = *std::move(made);
  }
  // Every file.write span the collector received, after a flush.
  std::vector<CollectedSpan> FlushedSpans() {
    EXPECT_TRUE(tracer->ForceFlush(absl::Seconds(10)).ok());
    return collector->Spans();
  }
  std::unique_ptr<TestCollector> collector;
  std::unique_ptr<tracing::Tracer> tracer;
};

const CollectedSpan* SpanOfTrace(const std::vector<CollectedSpan>& spans,
                                          const tracing::TraceContext& context) {
  for (const CollectedSpan& span : spans) {
    if (span.trace_id_hex() == context.trace_id().ToHex()) return &span;
  }
  return nullptr;
}

int64_t MtimeNanos(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

int64_t DataRows(const std::string& csv) { return std::count(csv.begin(), csv.end(), '\n') - 1; }

TEST(GeneratorTest, SameSeedAndStartTimeGiveByteIdenticalFilesAndManifests) {
  for (const char* schema : {"v3", "mixed"}) {
    SCOPED_TRACE(schema);
    GeneratorConfig a = SimulatedConfig(FreshPath(absl::StrCat("gen_det_a_", schema)));
    a.schema_version = schema;
    GeneratorConfig b = a;
    b.output_dir = FreshPath(absl::StrCat("gen_det_b_", schema));
    GeneratorConfig c = a;
    c.output_dir = FreshPath(absl::StrCat("gen_det_c_", schema));
    c.seed = 43;
    ASSERT_TRUE(RunWith(a).ok());
    ASSERT_TRUE(RunWith(b).ok());
    ASSERT_TRUE(RunWith(c).ok());
    const std::vector<OutputFile> fa = ReadOutput(a.output_dir), fb = ReadOutput(b.output_dir),
                                  fc = ReadOutput(c.output_dir);
    ASSERT_EQ(fa.size(), 8u);
    ASSERT_EQ(fb.size(), fa.size());
    for (size_t i = 0; i < fa.size(); ++i) {
      EXPECT_EQ(fa[i].name, fb[i].name);
      EXPECT_TRUE(fa[i].csv == fb[i].csv) << fa[i].name;
      EXPECT_EQ(fa[i].manifest_json, fb[i].manifest_json);
    }
    ASSERT_EQ(fc.size(), fa.size());
    EXPECT_NE(fa[0].name, fc[0].name) << "the run id in the name comes from the seed";
    EXPECT_NE(fa[0].csv, fc[0].csv);
  }
}

// Every manifest matches its file, and an independent reading of docs/rows.md (against the
// manifest's created_time_us) finds exactly the manifest's ground truth in the rows.
TEST(GeneratorTest, ManifestsDescribeTheirFilesAndTheirGroundTruthIsExact) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_manifests"));
  config.schema_version = "mixed";
  config.events_per_file = 1'000;
  config.anomaly_rate = 0.1;
  config.late_rate = 0.02;
  ASSERT_TRUE(RunWith(config).ok());
  const std::regex traceparent("00-[0-9a-f]{32}-[0-9a-f]{16}-01");
  std::set<std::string> versions, traceparents;
  for (const OutputFile& f : ReadOutput(config.output_dir)) {
    SCOPED_TRACE(f.name);
    const v1::FileManifest& m = f.manifest;
    EXPECT_EQ(m.file_name(), f.name);
    EXPECT_EQ(m.rows(), DataRows(f.csv));
    EXPECT_EQ(m.sha256(), Sha256Hex(f.csv));
    EXPECT_EQ(m.size_bytes(), static_cast<int64_t>(f.csv.size()));
    EXPECT_TRUE(std::regex_match(m.traceparent(), traceparent)) << m.traceparent();
    EXPECT_TRUE(tracing::TraceContext::FromTraceparent(m.traceparent()).ok()) << m.traceparent();
    EXPECT_TRUE(traceparents.insert(m.traceparent()).second) << "one trace per file";
    const OracleFile oracle = ClassifyCsv(f.csv, m.created_time_us());
    EXPECT_EQ(m.schema_version(), absl::StrCat("v", oracle.schema_version));
    versions.insert(m.schema_version());
    EXPECT_EQ(m.expected_valid_events(), oracle.events);
    EXPECT_EQ(m.expected_dead_letters(), oracle.dead_letters);
    EXPECT_EQ(m.exact_duplicates(), oracle.duplicates);
    EXPECT_EQ(m.late_events(), oracle.late);
    EXPECT_EQ(m.rows(), m.expected_valid_events() + m.expected_dead_letters() + m.exact_duplicates());
    // Each dead-letter kind is exactly the count of its reason; every row has one reason.
    int64_t dead_kinds = 0;
    for (const auto& [kind, count] : m.anomaly_counts()) {
      absl::StatusOr<AnomalyKindSet> parsed = ParseAnomalyKinds(kind);
      ASSERT_TRUE(parsed.ok()) << kind;
      for (int k = 0; k < kNumAnomalyKinds; ++k) {
        if (!parsed->test(k) || OutcomeOf(static_cast<AnomalyKind>(k)) != RowOutcome::kDeadLetter) continue;
        dead_kinds += count;
        const auto it = oracle.reasons.find(ReasonOf(static_cast<AnomalyKind>(k)));
        EXPECT_EQ(it == oracle.reasons.end() ? 0 : it->second, count) << kind;
      }
    }
    EXPECT_EQ(dead_kinds, m.expected_dead_letters());
    const auto late = m.anomaly_counts().find("late_event");
    EXPECT_EQ(late == m.anomaly_counts().end() ? 0 : late->second, m.late_events());
    const auto dups = m.anomaly_counts().find("exact_duplicate");
    EXPECT_EQ(dups == m.anomaly_counts().end() ? 0 : dups->second, m.exact_duplicates());
  }
  EXPECT_EQ(versions.size(), 3u);
}

// Live: one file.write span per file; the manifest's traceparent is its context; the span
// brackets the file's drop time (its mtime, the processor's reference) and ends after the rename.
TEST(GeneratorTest, EachFileIsOneFileWriteSpanWhoseContextIsInItsManifestAndThatEndsAfterTheRename) {
  TracedRun traced;
  ASSERT_NE(traced.tracer, nullptr);
  GeneratorConfig config;
  config.output_dir = FreshPath("gen_spans_live");
  config.seed = 7;
  config.total_events = 3'000;
  config.events_per_file = 1'000;
  config.quiet = true;
  const int64_t before_ns = absl::ToUnixMicros(absl::Now()) * 1000;  // span times are whole microseconds
  ASSERT_TRUE(RunWith(config, SystemClock::Get(), traced.tracer.get()).ok());
  const int64_t after_ns = absl::ToUnixNanos(absl::Now());
  const std::vector<CollectedSpan> spans = traced.FlushedSpans();
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_EQ(files.size(), 3u);
  ASSERT_EQ(spans.size(), 3u);
  int64_t previous_end_ns = before_ns;
  for (const OutputFile& f : files) {
    SCOPED_TRACE(f.name);
    absl::StatusOr<tracing::TraceContext> context = tracing::TraceContext::FromTraceparent(f.manifest.traceparent());
    ASSERT_TRUE(context.ok()) << f.manifest.traceparent();
    EXPECT_TRUE(context->sampled());
    const CollectedSpan* span = SpanOfTrace(spans, *context);
    ASSERT_NE(span, nullptr) << "no span of the manifest's trace";
    EXPECT_EQ(span->span.name(), "file.write");
    EXPECT_EQ(span->span.kind(), opentelemetry::proto::trace::v1::Span::SPAN_KIND_PRODUCER);
    EXPECT_EQ(span->span_id_hex(), context->span_id().ToHex());
    EXPECT_EQ(span->parent_span_id_hex(), "") << "a file starts its trace";
    EXPECT_EQ(span->ResourceAttribute("service.name"), "ecomstream-generator");
    ASSERT_TRUE(span->Attribute("file.name").has_value() && span->Attribute("rows").has_value() &&
                span->Attribute("schema_version").has_value() && span->Attribute("bytes").has_value());
    EXPECT_EQ(span->Attribute("file.name")->string_value(), f.name);
    EXPECT_EQ(span->Attribute("rows")->int_value(), 1'000);
    EXPECT_EQ(span->Attribute("schema_version")->string_value(), "v3");
    EXPECT_EQ(span->Attribute("bytes")->int_value(), static_cast<int64_t>(f.csv.size()));
    EXPECT_EQ(span->span.status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_UNSET);
    const int64_t start_ns = span->span.start_time_unix_nano(), end_ns = span->span.end_time_unix_nano();
    const int64_t mtime_ns = MtimeNanos(config.output_dir + "/" + f.name);
    EXPECT_GE(start_ns, previous_end_ns) << "files are written one after another";
    EXPECT_LE(start_ns, mtime_ns);
    EXPECT_GE(end_ns, mtime_ns);
    EXPECT_LE(end_ns, after_ns);
    previous_end_ns = end_ns;
  }
}

// Simulated: the spans are still exported, with ids from the seed, so a traced and an untraced
// run write byte-identical manifests; the span times are real, not simulated.
TEST(GeneratorTest, UnderASimulatedClockSpanIdsComeFromTheSeedAndSpanTimesAreReal) {
  TracedRun traced;
  ASSERT_NE(traced.tracer, nullptr);
  const GeneratorConfig with_spans = SimulatedConfig(FreshPath("gen_spans_sim_a"));
  GeneratorConfig without = with_spans;
  without.output_dir = FreshPath("gen_spans_sim_b");
  const int64_t before_ns = absl::ToUnixNanos(absl::Now());
  ASSERT_TRUE(RunWith(with_spans, SystemClock::Get(), traced.tracer.get()).ok());
  const int64_t after_ns = absl::ToUnixNanos(absl::Now());
  ASSERT_TRUE(RunWith(without).ok());
  const std::vector<CollectedSpan> spans = traced.FlushedSpans();
  const std::vector<OutputFile> a = ReadOutput(with_spans.output_dir), b = ReadOutput(without.output_dir);
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), a.size());
  ASSERT_EQ(spans.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].name);
    EXPECT_EQ(a[i].manifest_json, b[i].manifest_json);
    EXPECT_TRUE(a[i].csv == b[i].csv);
    const tracing::TraceContext context = tracing::TraceContext::FromTraceparentOrInvalid(a[i].manifest.traceparent());
    const CollectedSpan* span = SpanOfTrace(spans, context);
    ASSERT_NE(span, nullptr);
    EXPECT_EQ(span->span_id_hex(), context.span_id().ToHex());
    EXPECT_GE(static_cast<int64_t>(span->span.start_time_unix_nano()), before_ns);
    EXPECT_LE(static_cast<int64_t>(span->span.end_time_unix_nano()), after_ns);
  }
}

// OTEL_SDK_DISABLED: no span, so no context to hand on; the processor starts the trace.
TEST(GeneratorTest, ADisabledTracerLeavesTheTraceparentOutOfTheManifests) {
  std::unique_ptr<tracing::Tracer> disabled = tracing::Tracer::Disabled();
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_spans_off"));
  config.total_events = 5'000;
  ASSERT_TRUE(RunWith(config, SystemClock::Get(), disabled.get()).ok());
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_EQ(files.size(), 2u);
  for (const OutputFile& f : files) {
    EXPECT_EQ(f.manifest.rows(), 2'500) << f.name;
    EXPECT_EQ(f.manifest.traceparent(), "") << f.manifest_json;
  }
}

TEST(GeneratorTest, SummaryFileHasExactlyTheDocumentedKeysAndTheManifestTotals) {
  const std::string dir = FreshPath("gen_summary");
  GeneratorConfig config = SimulatedConfig(dir + "/inbox");
  config.total_events = 12'345;
  config.anomaly_kinds = "noise,bad_price,exact_duplicate,late_event";
  config.anomaly_rate = 0.05;
  config.summary_file = dir + "/summary.json";
  ASSERT_TRUE(MakeDirs(dir).ok());
  absl::StatusOr<RunSummary> run = RunWith(config);
  ASSERT_TRUE(run.ok()) << run.status();
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ReadFile(config.summary_file), &summary).ok());
  std::set<std::string> keys;
  for (const auto& [key, value] : summary.fields()) keys.insert(key);
  EXPECT_EQ(keys, (std::set<std::string>{"events_written", "files", "valid_distinct_events", "expected_dead_letters",
                                         "exact_duplicates", "late_events", "anomalies"}));
  int64_t rows = 0, valid = 0, dead = 0, dups = 0, late = 0;
  std::map<std::string, int64_t> anomalies;
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  for (const OutputFile& f : files) {
    rows += f.manifest.rows();
    valid += f.manifest.expected_valid_events();
    dead += f.manifest.expected_dead_letters();
    dups += f.manifest.exact_duplicates();
    late += f.manifest.late_events();
    for (const auto& [kind, count] : f.manifest.anomaly_counts()) anomalies[kind] += count;
  }
  const auto number = [&](const char* key) { return static_cast<int64_t>(summary.fields().at(key).number_value()); };
  EXPECT_EQ(number("events_written"), 12'345);
  EXPECT_EQ(rows, 12'345);
  EXPECT_EQ(number("files"), static_cast<int64_t>(files.size()));
  EXPECT_EQ(number("valid_distinct_events"), valid);
  EXPECT_EQ(number("expected_dead_letters"), dead);
  EXPECT_EQ(number("exact_duplicates"), dups);
  EXPECT_EQ(number("late_events"), late);
  EXPECT_GT(dead, 0);
  EXPECT_GT(dups, 0);
  EXPECT_GT(late, 0);
  const auto& kinds = summary.fields().at("anomalies").struct_value().fields();
  EXPECT_EQ(kinds.size(), 8u) << "the five noise kinds, bad_price, exact_duplicate, late_event";
  for (const auto& [kind, value] : kinds) {
    EXPECT_EQ(static_cast<int64_t>(value.number_value()), anomalies[kind]) << kind;
  }
  EXPECT_EQ(run->truth.rows, 12'345);
  EXPECT_EQ(run->files, static_cast<int64_t>(files.size()));
}

TEST(GeneratorTest, MixedSchemaVariesVersionsColumnOrdersAndLineEnds) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_mixed"));
  config.schema_version = "mixed";
  config.total_events = 3'000;
  config.events_per_file = 50;
  ASSERT_TRUE(RunWith(config).ok());
  std::set<std::string> headers;
  std::set<int> versions;
  int crlf = 0;
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_EQ(files.size(), 60u);
  for (const OutputFile& f : files) {
    headers.insert(f.csv.substr(0, f.csv.find('\n')));
    const OracleFile oracle = ClassifyCsv(f.csv, f.manifest.created_time_us());
    versions.insert(oracle.schema_version);
    EXPECT_EQ(static_cast<int64_t>(oracle.rows.size()), f.manifest.rows());
    crlf += absl::StrContains(f.csv, "\r\n");
  }
  EXPECT_EQ(versions, (std::set<int>{1, 2, 3}));
  EXPECT_GT(headers.size(), 20u) << "shuffled column orders";
  EXPECT_GT(crlf, 0);
  EXPECT_LT(crlf, 20);
}

TEST(GeneratorTest, EachFixedVersionWritesExactlyItsColumns) {
  const std::map<std::string, size_t> columns = {{"v1", 6}, {"v2", 10}, {"v3", 16}};
  for (const auto& [version, count] : columns) {
    GeneratorConfig config = SimulatedConfig(FreshPath(absl::StrCat("gen_version_", version)));
    config.schema_version = version;
    config.total_events = 1'000;
    config.events_per_file = 100;
    ASSERT_TRUE(RunWith(config).ok());
    const std::vector<OutputFile> files = ReadOutput(config.output_dir);
    ASSERT_EQ(files.size(), 10u) << version << ": 1,000 events at 100 per file";
    for (const OutputFile& f : files) {
      const OracleFile oracle = ClassifyCsv(f.csv, f.manifest.created_time_us());
      EXPECT_EQ(absl::StrCat("v", oracle.schema_version), version) << f.name;
      EXPECT_EQ(oracle.header.size(), count);
      EXPECT_EQ(f.manifest.schema_version(), version);
    }
  }
}

TEST(GeneratorTest, FilesRollOverAtEventsPerFileAndStopAtTotalEventsWithSortableNames) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_rollover"));
  config.total_events = 2'500;
  config.events_per_file = 1'000;
  ASSERT_TRUE(RunWith(config).ok());
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].manifest.rows(), 1'000);
  EXPECT_EQ(files[1].manifest.rows(), 1'000);
  EXPECT_EQ(files[2].manifest.rows(), 500);
  const std::regex name("events-20260501T12000[0-9]-00000[1-3]-[0-9a-f]{8}\\.csv");
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_TRUE(std::regex_match(files[i].name, name)) << files[i].name;
    EXPECT_NE(files[i].name.find(absl::StrCat("-00000", i + 1, "-")), std::string::npos) << "name order = write order";
    if (i > 0) {
      EXPECT_GT(files[i].manifest.created_time_us(), files[i - 1].manifest.created_time_us());
    }
  }
  EXPECT_EQ(ListDir(config.output_dir + "/.tmp"), std::vector<std::string>{});
}

// At 1M events/s the simulated clock steps 1 us per row; files close after 10 ms (10,000 rows)
// and the run after 50 ms, both on that clock. Pacing sleeps on an injected clock.
TEST(GeneratorTest, FileIntervalAndDurationAreMeasuredOnTheSimulatedClock) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_interval"));
  config.events_per_second = 1e6;
  config.total_events = 0;
  config.duration = absl::Milliseconds(50);
  config.file_interval = absl::Milliseconds(10);
  config.events_per_file = 100'000;
  ManualClock clock(0);
  absl::StatusOr<RunSummary> run = RunWith(config, &clock);
  ASSERT_TRUE(run.ok()) << run.status();
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_EQ(files.size(), 5u);
  for (const OutputFile& f : files) EXPECT_EQ(f.manifest.rows(), 10'000) << f.name;
  EXPECT_EQ(run->truth.rows, 50'000) << "50 ms at 1 us per event";
}

// Normal rows lie within [created - file_interval, created] (generator.h; 1 s slack for a
// timestamp written to the second); late ones 2-6 h before created.
TEST(GeneratorTest, EventTimesSitInsideTheFileWindowExceptLateEvents) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_window"));
  config.events_per_second = 5;  // 200 ms apart in simulated time
  config.total_events = 20'000;  // ~67 simulated minutes
  config.events_per_file = 100'000;
  config.file_interval = absl::Minutes(20);
  config.anomaly_kinds = "late_event,noise_timestamp_format";
  config.anomaly_rate = 0.05;
  config.late_rate = 0.02;
  ManualClock clock(0);  // pacing at 5/s sleeps on it, not for real
  ASSERT_TRUE(RunWith(config, &clock).ok());
  int64_t late = 0, normal = 0;
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  EXPECT_GE(files.size(), 4u);
  for (const OutputFile& f : files) {
    const int64_t created = f.manifest.created_time_us();
    for (const testing::OracleRow& row : ClassifyCsv(f.csv, created).rows) {
      ASSERT_TRUE(row.reasons.empty()) << row.raw;
      int64_t t = 0;
      ASSERT_TRUE(testing::ParseEventTime(row.fields.at("event_time"), &t)) << row.raw;
      if (row.late) {
        ++late;
        EXPECT_LE(t, created - 2 * kHourUs + 1'000'000);
        EXPECT_GE(t, created - 6 * kHourUs - 20 * kMinuteUs);
      } else {
        ++normal;
        EXPECT_LE(t, created);
        EXPECT_GE(t, created - absl::ToInt64Microseconds(config.file_interval) - 1'000'000);
      }
    }
  }
  EXPECT_GT(late, 200);
  EXPECT_GT(normal, 18'000);
  EXPECT_GE(files.front().manifest.created_time_us(), kStartUs);
}

TEST(GeneratorTest, EventIdsAreNeverReusedAcrossFiles) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_ids"));
  config.events_per_file = 500;
  config.anomaly_rate = 0.2;
  ASSERT_TRUE(RunWith(config).ok());
  std::map<std::string, std::string> file_of;
  for (const OutputFile& f : ReadOutput(config.output_dir)) {
    for (const testing::OracleRow& row : ClassifyCsv(f.csv, f.manifest.created_time_us()).rows) {
      if (!row.reasons.empty() || row.duplicate) continue;
      const std::string id = row.fields.at("event_id");
      auto [it, inserted] = file_of.try_emplace(id, f.name);
      EXPECT_TRUE(inserted) << id << " in " << it->second << " and " << f.name;
    }
  }
  EXPECT_GT(file_of.size(), 15'000u);
}

TEST(GeneratorTest, LiveRateIsHeldWithinTwoPercentOnAnInjectedClock) {
  GeneratorConfig config;
  config.output_dir = FreshPath("gen_rate");
  config.seed = 7;
  config.quiet = true;
  config.events_per_second = 1'000;
  config.total_events = 10'000;
  config.events_per_file = 2'000;
  ManualClock clock(kStartUs);
  absl::StatusOr<RunSummary> run = RunWith(config, &clock);
  ASSERT_TRUE(run.ok()) << run.status();
  const double seconds = static_cast<double>(clock.NowMicros() - kStartUs) / 1e6;
  EXPECT_NEAR(10'000 / seconds, 1'000, 20);
  // Live mode stamps events with the (injected) clock: the first file starts at the start.
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_EQ(files.size(), 5u);
  EXPECT_TRUE(absl::StartsWith(files[0].name, "events-20260501T120000-000001-")) << files[0].name;
  EXPECT_NEAR(files[4].manifest.created_time_us() - kStartUs, 10'000'000, 200'000);
}

// Runs `config` on a manual clock with stderr captured; returns the "Progress" lines.
std::vector<std::string> ProgressLines(GeneratorConfig config) {
  const std::string path = FreshPath(absl::StrCat("gen_progress_", config.quiet));
  fflush(stderr);
  const int saved = dup(2);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  close(fd);
  ManualClock clock(kStartUs);
  const bool ok = RunWith(config, &clock).ok();
  dup2(saved, 2);
  close(saved);
  EXPECT_TRUE(ok);
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(ReadFile(path), '\n')) {
    if (absl::StrContains(line, " INFO Progress ")) lines.emplace_back(line);
  }
  return lines;
}

TEST(GeneratorTest, ProgressLinesComeEveryIntervalWithCountsUnlessQuiet) {
  GeneratorConfig config;
  config.output_dir = FreshPath("gen_progress");
  config.seed = 8;
  config.events_per_second = 1'000;
  config.total_events = 5'000;  // 5 s on the manual clock
  config.events_per_file = 500;
  config.progress_interval = absl::Seconds(1);
  const std::vector<std::string> lines = ProgressLines(config);
  ASSERT_GE(lines.size(), 5u);
  ASSERT_LE(lines.size(), 6u);
  EXPECT_TRUE(absl::StrContains(lines.back(), "events=5000 files=10 ")) << lines.back();
  EXPECT_TRUE(absl::StrContains(lines[1], "events_per_second=")) << lines[1];
  config.quiet = true;
  config.output_dir = FreshPath("gen_progress_quiet");
  EXPECT_TRUE(ProgressLines(config).empty());
}

TEST(GeneratorTest, StaleTempFilesAreRemovedAtStart) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_stale"));
  config.total_events = 10;
  ASSERT_TRUE(MakeDirs(config.output_dir + "/.tmp").ok());
  std::ofstream(config.output_dir + "/.tmp/events-crashed.csv") << "event_id\npartial";
  ASSERT_TRUE(RunWith(config).ok());
  EXPECT_EQ(ListDir(config.output_dir + "/.tmp"), std::vector<std::string>{});
  EXPECT_EQ(ReadOutput(config.output_dir).size(), 1u);
}

// File names are known in advance (simulated clock): /dev/full behind the second one's temp name
// makes the real write path hit ENOSPC after the first file is committed.
TEST(GeneratorTest, DiskFullEndsTheRunWithAClearErrorAndNoPartialFile) {
  GeneratorConfig probe = SimulatedConfig(FreshPath("gen_full_probe"));
  probe.total_events = 3'000;
  probe.events_per_file = 1'000;
  ASSERT_TRUE(RunWith(probe).ok());
  const std::vector<OutputFile> expected = ReadOutput(probe.output_dir);
  ASSERT_EQ(expected.size(), 3u);

  const std::string dir = FreshPath("gen_full");
  GeneratorConfig config = probe;
  config.output_dir = dir + "/inbox";
  config.summary_file = dir + "/summary.json";
  ASSERT_TRUE(MakeDirs(config.output_dir + "/.tmp").ok());
  ASSERT_EQ(symlink("/dev/full", (config.output_dir + "/.tmp/" + expected[1].name).c_str()), 0);
  TracedRun traced;
  ASSERT_NE(traced.tracer, nullptr);
  absl::StatusOr<RunSummary> run = RunWith(config, SystemClock::Get(), traced.tracer.get());
  ASSERT_EQ(run.status().code(), absl::StatusCode::kResourceExhausted) << run.status();
  EXPECT_NE(run.status().message().find("No space left on device"), absl::string_view::npos) << run.status();
  EXPECT_NE(run.status().message().find(expected[1].name), absl::string_view::npos) << run.status();
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_EQ(files.size(), 1u) << "the file before the failure is complete; nothing after it";
  EXPECT_EQ(files[0].csv, expected[0].csv);
  EXPECT_EQ(ListDir(config.output_dir), (std::vector<std::string>{".tmp", expected[0].name,
                                                                expected[0].name + ".manifest.json"}));
  EXPECT_EQ(ListDir(config.output_dir + "/.tmp"), std::vector<std::string>{});
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ReadFile(config.summary_file), &summary).ok());
  EXPECT_EQ(summary.fields().at("files").number_value(), 1) << "the summary covers the committed files";
  EXPECT_EQ(summary.fields().at("events_written").number_value(), 1'000);
  // The abandoned file's span ends with the error; the committed one's without.
  const std::vector<CollectedSpan> spans = traced.FlushedSpans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].Attribute("file.name").value_or(opentelemetry::proto::common::v1::AnyValue()).string_value(),
            expected[0].name);
  EXPECT_EQ(spans[0].span.status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_UNSET);
  EXPECT_EQ(spans[1].Attribute("file.name").value_or(opentelemetry::proto::common::v1::AnyValue()).string_value(),
            expected[1].name);
  EXPECT_EQ(spans[1].span.status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  EXPECT_NE(spans[1].span.status().message().find("No space left on device"), std::string::npos)
      << spans[1].span.status().message();
}

TEST(GeneratorTest, OutputPathThatIsAFileIsAClearError) {
  const std::string path = FreshPath("gen_file_output");
  std::ofstream(path) << "x";
  GeneratorConfig config = SimulatedConfig(path);
  absl::StatusOr<RunSummary> run = RunWith(config);
  EXPECT_EQ(run.status().code(), absl::StatusCode::kFailedPrecondition) << run.status();
  EXPECT_NE(run.status().message().find(path), absl::string_view::npos) << run.status();
}

TEST(GeneratorTest, SummaryInAMissingDirectoryFailsBeforeWritingAnything) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_summary_missing"));
  config.summary_file = "/nonexistent-ecomstream-dir/summary.json";
  absl::StatusOr<RunSummary> run = RunWith(config);
  EXPECT_EQ(run.status().code(), absl::StatusCode::kFailedPrecondition) << run.status();
  EXPECT_NE(run.status().message().find("--summary_file"), absl::string_view::npos) << run.status();
  EXPECT_TRUE(ReadOutput(config.output_dir).empty());
}

TEST(GeneratorTest, StopClosesTheCurrentFileCompleteAndReturns) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_stop"));
  config.total_events = 0;  // until stopped
  config.events_per_file = 7'000;
  metrics::Registry registry;
  absl::StatusOr<std::unique_ptr<Generator>> generator = Generator::Create(config, SystemClock::Get(), &registry);
  ASSERT_TRUE(generator.ok());
  absl::StatusOr<RunSummary> run;
  std::thread runner([&] { run = (*generator)->Run(); });
  while ((*generator)->files_written() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  (*generator)->Stop();
  runner.join();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_FALSE((*generator)->running());
  const std::vector<OutputFile> files = ReadOutput(config.output_dir);
  ASSERT_GE(files.size(), 2u);
  int64_t rows = 0;
  for (const OutputFile& f : files) {
    EXPECT_EQ(f.manifest.rows(), DataRows(f.csv)) << f.name;
    EXPECT_EQ(f.manifest.sha256(), Sha256Hex(f.csv)) << f.name;
    EXPECT_LE(f.manifest.rows(), 7'000);
    rows += f.manifest.rows();
  }
  EXPECT_EQ(run->truth.rows, rows);
  EXPECT_EQ(ListDir(config.output_dir + "/.tmp"), std::vector<std::string>{});
  const std::string text = registry.ExportText();
  EXPECT_NE(text.find(absl::StrCat("ecomstream_generator_events_total ", rows)), std::string::npos) << text;
  EXPECT_NE(text.find(absl::StrCat("ecomstream_generator_files_total ", files.size())), std::string::npos);
}

TEST(GeneratorTest, WithoutManifestsTheMtimeCarriesTheSimulatedCreationTime) {
  GeneratorConfig config = SimulatedConfig(FreshPath("gen_nomanifest"));
  config.manifests = false;
  config.total_events = 100;
  ASSERT_TRUE(RunWith(config).ok());
  const std::vector<std::string> names = ListDir(config.output_dir);
  ASSERT_EQ(names.size(), 2u);  // .tmp and the CSV
  struct stat st;
  ASSERT_EQ(stat((config.output_dir + "/" + names[1]).c_str(), &st), 0);
  // 100 rows 1 ms apart from the start; created just after the last.
  EXPECT_EQ(MtimeMicros(st), kStartUs + 100'000);
}

TEST(GeneratorConfigTest, RejectsEachBadSettingNamingIt) {
  const std::vector<std::pair<std::function<void(GeneratorConfig&)>, std::string>> cases = {
      {[](GeneratorConfig& c) { c.output_dir = ""; }, "--output_dir"},
      {[](GeneratorConfig& c) { c.events_per_file = 0; }, "--events_per_file"},
      {[](GeneratorConfig& c) { c.events_per_file = 20'000'000; }, "--events_per_file"},
      {[](GeneratorConfig& c) { c.total_events = -1; }, "--total_events"},
      {[](GeneratorConfig& c) { c.events_per_second = -5; }, "--events_per_second"},
      {[](GeneratorConfig& c) { c.events_per_second = std::nan(""); }, "--events_per_second"},
      {[](GeneratorConfig& c) { c.anomaly_rate = 1.5; }, "--anomaly_rate"},
      {[](GeneratorConfig& c) { c.anomaly_rate = std::nan(""); }, "--anomaly_rate"},
      {[](GeneratorConfig& c) { c.late_rate = -0.1; }, "--late_rate"},
      {[](GeneratorConfig& c) { c.anomaly_kinds = "bad_price,nonsense"; }, "'nonsense'"},
      {[](GeneratorConfig& c) { c.schema_version = "v4"; }, "--schema_version='v4'"},
      {[](GeneratorConfig& c) { c.start_time = "yesterday"; }, "--start_time='yesterday'"},
      {[](GeneratorConfig& c) { c.start_time = "1999-01-01T00:00:00Z"; }, "--start_time"},
      {[](GeneratorConfig& c) { c.duration = absl::Seconds(-1); }, "--duration"},
      {[](GeneratorConfig& c) { c.file_interval = absl::ZeroDuration(); }, "--file_interval"},
      {[](GeneratorConfig& c) { c.file_interval = absl::Hours(1); }, "--file_interval"},
      {[](GeneratorConfig& c) { c.summary_file = ::ecomstream::testing::ScratchDir() + "/"; }, "--summary_file"},
  };
  for (const auto& [mutate, needle] : cases) {
    GeneratorConfig config = SimulatedConfig(::ecomstream::testing::ScratchDir() + "/unused");
    ASSERT_TRUE(config.Validate().ok());
    mutate(config);
    const absl::Status status = config.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_NE(status.message().find(needle), absl::string_view::npos) << status;
    metrics::Registry registry;
    EXPECT_FALSE(Generator::Create(config, SystemClock::Get(), &registry).ok()) << needle;
  }
}

}  // namespace
}  // namespace ecomstream::generator

// Each service's /metrics while the whole pipeline runs (generator at a steady rate, processor
// tailing the inbox, writer on a real PostgreSQL, spans going to a test collector): Debian's
// `promtool check metrics` finds nothing, every histogram has its +Inf bucket, and the must-have
// series of docs/design.md ("Metrics, health, logs") are there by name, in every service they
// belong to.
#include <signal.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/e2e/e2e_util.h"
#include "tests/otel/metrics_check.h"
#include "tests/otel/test_collector.h"
#include "tests/trace_e2e/traced_pipeline.h"

namespace ecomstream::testing {
namespace {

// A series a service must export: its family, the family's TYPE, and label keys that at least
// one of its samples carries.
struct Requirement {
  const char* service;
  const char* what;  // the must-have it stands for
  const char* family;
  const char* type;
  std::vector<std::string> labels;
};

const std::vector<Requirement>& Requirements() {
  static const auto* requirements = new std::vector<Requirement>{
      {"generator", "events", "ecomstream_generator_events_total", "counter", {}},
      {"generator", "files", "ecomstream_generator_files_total", "counter", {}},
      {"processor", "rows by outcome and reason", "ecomstream_processor_rows_total", "counter", {"outcome", "reason"}},
      {"processor", "files by outcome", "ecomstream_processor_files_total", "counter", {"outcome"}},
      {"processor", "batches", "ecomstream_processor_batches_total", "counter", {}},
      {"processor", "in-flight window", "ecomstream_processor_in_flight_batches", "gauge", {}},
      {"processor", "backlog", "ecomstream_processor_backlog_files", "gauge", {}},
      {"processor", "reconnects", "ecomstream_processor_stream_reconnects_total", "counter", {}},
      {"processor", "retries", "ecomstream_processor_claim_retries_total", "counter", {}},
      {"processor", "discovery delay", "ecomstream_processor_file_discovery_delay_seconds", "histogram", {}},
      {"writer", "rows by outcome", "ecomstream_writer_rows_total", "counter", {"outcome"}},
      {"writer", "rows by reason", "ecomstream_writer_dead_letters_total", "counter", {"reason"}},
      {"writer", "batches", "ecomstream_writer_batches_total", "counter", {}},
      {"writer", "commit latency", "ecomstream_writer_commit_latency_seconds", "histogram", {}},
      {"writer", "end-to-end latency", "ecomstream_end_to_end_latency_seconds", "histogram", {}},
  };
  return *requirements;
}

// Series every service has.
const std::vector<Requirement>& Common() {
  static const auto* common = new std::vector<Requirement>{
      {"", "spans exported", "ecomstream_spans_exported_total", "counter", {}},
      {"", "spans dropped", "ecomstream_spans_dropped_total", "counter", {"reason"}},
      {"", "build info", "ecomstream_build_info", "gauge", {"service"}},
  };
  return *common;
}

// The families of a text exposition: TYPE by name, and the label keys of each sample.
struct Exposition {
  std::map<std::string, std::string> types;
  std::map<std::string, std::vector<std::set<std::string>>> samples;  // by sample name
};

Exposition Parse(const std::string& text) {
  Exposition e;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2) e.types[parts[0]] = parts[1];
      continue;
    }
    if (line[0] == '#') continue;
    const size_t brace = line.find('{');
    const size_t space = line.find(' ');
    std::set<std::string> keys;
    if (brace != absl::string_view::npos && brace < space) {
      const absl::string_view labels = line.substr(brace + 1, line.find('}') - brace - 1);
      // Label values here never hold '=' or ',' (reason codes, outcomes, numbers).
      for (absl::string_view pair : absl::StrSplit(labels, ',', absl::SkipEmpty())) {
        keys.insert(std::string(pair.substr(0, pair.find('='))));
      }
    }
    e.samples[std::string(line.substr(0, std::min(brace, space)))].push_back(std::move(keys));
  }
  return e;
}

// "" when met, else what is wrong.
std::string Check(const Exposition& e, const Requirement& r) {
  const auto type = e.types.find(r.family);
  if (type == e.types.end()) return "absent";
  if (type->second != r.type) return absl::StrCat("TYPE ", type->second, ", want ", r.type);
  const auto samples = e.samples.find(std::string(r.family) + (std::string(r.type) == "histogram" ? "_bucket" : ""));
  if (samples == e.samples.end()) return "declared without samples";
  for (const std::set<std::string>& keys : samples->second) {
    bool all = true;
    for (const std::string& label : r.labels) all = all && keys.count(label) > 0;
    if (all) return "";
  }
  return absl::StrCat("no sample with labels ", absl::StrJoin(r.labels, ","));
}

std::string Scrape(const std::string& address) {
  const size_t colon = address.rfind(':');
  httplib::Client client(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  client.set_read_timeout(5, 0);
  const auto response = client.Get("/metrics");
  if (!response) return "";
  EXPECT_EQ(response->status, 200) << address;
  return response->body;
}

TEST(LiveMetricsTest, EachServiceServesCleanPrometheusTextWithItsMustHaveSeriesWhileTheyRun) {
  absl::StatusOr<std::unique_ptr<TestCollector>> collector = TestCollector::Start();
  ASSERT_TRUE(collector.ok()) << collector.status();
  TracedPipeline p("live_metrics", TracedPipeline::ExportTo(**collector));
  ASSERT_TRUE(p.StartWriter().ok()) << p.pipeline().Logs();
  absl::StatusOr<std::unique_ptr<Process>> processor = p.StartProcessor({"--batch_rows=500", "--linger=50ms"});
  ASSERT_TRUE(processor.ok()) << processor.status();
  // A steady trickle with 5% anomalies, so dead letters (rows by reason) occur.
  absl::StatusOr<std::unique_ptr<Process>> generator = p.StartGenerator(
      {"--events_per_second=3000", "--events_per_file=1000", "--file_interval=1s", "--anomaly_rate=0.05", "--seed=3"});
  ASSERT_TRUE(generator.ok()) << generator.status();
  ASSERT_TRUE(WaitUntil([&] { return p.pipeline().CommittedBatches() >= 8; }, absl::Seconds(20),
                        absl::Milliseconds(100)))
      << "no traffic: " << p.pipeline().CommittedBatches() << " batches\n" << p.pipeline().Logs();

  const std::map<std::string, std::string> addresses = {{"generator", p.generator_metrics()},
                                                        {"processor", p.processor_metrics()},
                                                        {"writer", p.writer_metrics()}};
  std::vector<std::string> missing;
  for (const auto& [service, address] : addresses) {
    SCOPED_TRACE(service);
    const std::string text = Scrape(address);
    ASSERT_FALSE(text.empty()) << "no /metrics at " << address;
    EXPECT_TRUE(CheckMetricsText(text).ok()) << CheckMetricsText(text);
    const Exposition e = Parse(text);
    std::vector<Requirement> wanted = Common();
    for (const Requirement& r : Requirements()) {
      if (r.service == service) wanted.push_back(r);
    }
    for (const Requirement& r : wanted) {
      const std::string problem = Check(e, r);
      if (!problem.empty()) missing.push_back(absl::StrCat(service, ": ", r.what, " (", r.family, "): ", problem));
    }
  }
  EXPECT_TRUE(missing.empty()) << "missing must-have series:\n" << absl::StrJoin(missing, "\n");

  // SIGTERM drains each service: exit 0.
  absl::StatusOr<int> stopped = (*generator)->Stop();
  EXPECT_TRUE(stopped.ok() && *stopped == 0) << (*generator)->LogTail();
  stopped = (*processor)->Stop();
  EXPECT_TRUE(stopped.ok() && *stopped == 0) << (*processor)->LogTail();
  stopped = p.writer()->Stop();
  EXPECT_TRUE(stopped.ok() && *stopped == 0) << p.writer()->LogTail();
}

}  // namespace
}  // namespace ecomstream::testing

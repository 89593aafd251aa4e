// The three real binaries of tests/e2e's Pipeline (its database, directories, argv and checks),
// started with an OpenTelemetry environment and --metrics_address on known ports, for the tests
// that look at what the services export: spans to a collector, Prometheus text on /metrics.
//
//   auto collector = TestCollector::Start().value();
//   TracedPipeline p("trace", TracedPipeline::ExportTo(*collector));
//   ASSERT_OK(p.Generate({"--total_events=6000", ...}));
//   ASSERT_OK(p.StartWriter());
//   EXPECT_EQ(p.RunProcessorOnce().value(), 0);
//
// Pipeline's own Generate/StartWriter/RunProcessorOnce always add OTEL_SDK_DISABLED=true and take
// no environment, hence these.
#ifndef ECOMSTREAM_TESTS_TRACE_E2E_TRACED_PIPELINE_H_
#define ECOMSTREAM_TESTS_TRACE_E2E_TRACED_PIPELINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/pipeline_harness.h"
#include "tests/otel/test_collector.h"

namespace ecomstream::testing {

class TracedPipeline {
 public:
  // OTEL_* variables that make a service export every span to `collector` within 50 ms, whatever
  // the test's own environment says (service names stay the binaries' defaults).
  static std::vector<std::string> ExportTo(const TestCollector& collector);

  // `env` (KEY=VALUE) is given to every service this class starts.
  TracedPipeline(absl::string_view name, std::vector<std::string> env);

  Pipeline& pipeline() { return pipeline_; }
  // host:port of each service's /metrics (fixed at construction).
  const std::string& generator_metrics() const { return generator_metrics_; }
  const std::string& processor_metrics() const { return processor_metrics_; }
  const std::string& writer_metrics() const { return writer_metrics_; }

  // Runs the generator into the inbox with `flags` (plus --output_dir, --summary_file, --quiet)
  // to completion. kInternal with its log if it does not exit 0 within `timeout`.
  absl::Status Generate(const std::vector<std::string>& flags, absl::Duration timeout = absl::Seconds(60));
  // Starts a generator that runs until stopped (flags as for Generate, plus its --metrics_address).
  absl::StatusOr<std::unique_ptr<Process>> StartGenerator(const std::vector<std::string>& flags);
  // Starts the writer (--migrate) and waits until its /readyz answers (the database is usable).
  absl::Status StartWriter();
  Process* writer() { return writer_.get(); }
  // Starts a processor with Pipeline::ProcessorArgs(extra) and its --metrics_address.
  absl::StatusOr<std::unique_ptr<Process>> StartProcessor(const std::vector<std::string>& extra);
  // `processor --once` to completion; its exit code.
  absl::StatusOr<int> RunProcessorOnce(const std::vector<std::string>& extra = {},
                                       absl::Duration timeout = absl::Seconds(90));

 private:
  std::vector<std::string> GeneratorArgs(const std::vector<std::string>& flags) const;

  Pipeline pipeline_;
  std::vector<std::string> env_;
  std::string generator_metrics_;
  std::string processor_metrics_;
  std::string writer_metrics_;
  std::unique_ptr<Process> writer_;
};

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_TRACE_E2E_TRACED_PIPELINE_H_

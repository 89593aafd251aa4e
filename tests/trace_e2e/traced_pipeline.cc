#include "tests/trace_e2e/traced_pipeline.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_server.h"
#include "tests/pg_fixture.h"

namespace ecomstream::testing {

std::vector<std::string> TracedPipeline::ExportTo(const TestCollector& collector) {
  // Empty values count as unset (OpenTelemetry's rule), so these undo whatever the caller has.
  return {"OTEL_SDK_DISABLED=false",
          "OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.endpoint(),
          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
          "OTEL_BSP_SCHEDULE_DELAY=50",
          "OTEL_TRACES_SAMPLER=",
          "OTEL_TRACES_EXPORTER=",
          "OTEL_SERVICE_NAME=",
          "OTEL_RESOURCE_ATTRIBUTES="};
}

TracedPipeline::TracedPipeline(absl::string_view name, std::vector<std::string> env)
    : pipeline_(name),
      env_(std::move(env)),
      generator_metrics_(absl::StrCat("127.0.0.1:", FreePort())),
      processor_metrics_(absl::StrCat("127.0.0.1:", FreePort())),
      writer_metrics_(absl::StrCat("127.0.0.1:", FreePort())) {}

std::vector<std::string> TracedPipeline::GeneratorArgs(const std::vector<std::string>& flags) const {
  std::vector<std::string> argv = {BinPath("ecomstream-generator"), "--output_dir=" + pipeline_.inbox(),
                                   "--summary_file=" + pipeline_.summary_path(), "--quiet",
                                   "--metrics_address=" + generator_metrics_};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return argv;
}

absl::Status TracedPipeline::Generate(const std::vector<std::string>& flags, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<Process>> generator = StartGenerator(flags);
  if (!generator.ok()) return generator.status();
  absl::StatusOr<int> code = (*generator)->Wait(timeout);
  if (!code.ok() || *code != 0) {
    return absl::InternalError(absl::StrCat("generator: ", code.ok() ? absl::StrCat("exit ", *code)
                                                                     : code.status().ToString(),
                                            "\n", (*generator)->LogTail()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Process>> TracedPipeline::StartGenerator(const std::vector<std::string>& flags) {
  return Process::Start(GeneratorArgs(flags), pipeline_.logs() + "/generator.log", env_);
}

absl::Status TracedPipeline::StartWriter() {
  const std::vector<std::string> argv = {BinPath("ecomstream-writer"), "--listen_address=" + pipeline_.writer_address(),
                                         "--pg_dsn=" + pipeline_.dsn(), "--migrate",
                                         "--metrics_address=" + writer_metrics_};
  absl::StatusOr<std::unique_ptr<Process>> started = Process::Start(argv, pipeline_.logs() + "/writer.log", env_);
  if (!started.ok()) return started.status();
  writer_ = *std::move(started);
  const bool ready =
      WaitUntil([&] { return !writer_->Running() || ProbeReady(writer_metrics_, 1000).ok(); }, absl::Seconds(30),
                absl::Milliseconds(100));
  if (!writer_->Running()) return absl::InternalError(absl::StrCat("writer exited: ", writer_->LogTail()));
  if (!ready) return absl::DeadlineExceededError(absl::StrCat("writer not ready after 30 s: ", writer_->LogTail()));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Process>> TracedPipeline::StartProcessor(const std::vector<std::string>& extra) {
  std::vector<std::string> argv = pipeline_.ProcessorArgs(extra);
  // ProcessorArgs picks a metrics port of its own; the last --metrics_address wins (absl flags).
  argv.push_back("--metrics_address=" + processor_metrics_);
  return Process::Start(argv, pipeline_.logs() + "/processor.log", env_);
}

absl::StatusOr<int> TracedPipeline::RunProcessorOnce(const std::vector<std::string>& extra, absl::Duration timeout) {
  std::vector<std::string> flags = extra;
  flags.push_back("--once");
  absl::StatusOr<std::unique_ptr<Process>> processor = StartProcessor(flags);
  if (!processor.ok()) return processor.status();
  return (*processor)->Wait(timeout);
}

}  // namespace ecomstream::testing

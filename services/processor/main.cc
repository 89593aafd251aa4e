// ecomstream-processor: flags -> ProcessorOptions -> Validate -> channel, tracer (OTEL_*),
// metrics, status server -> Processor::Run until SIGTERM (or, with --once, until the inbox is
// committed) -> flush the spans.
#include <cstdio>
#include <thread>

#include "common/flags.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/span_metrics.h"
#include "common/status_server.h"
#include "common/tracer.h"
#include "services/processor/processor.h"
#include "services/processor/processor_flags.h"

namespace {

int ConfigError(const absl::Status& status) {
  std::fprintf(stderr, "ecomstream-processor: %s\n", std::string(status.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ecomstream;
  using namespace ecomstream::processor;
  ShutdownSignal::Get().Install();
  ParseCommandLineWithEnv(argc, argv, kUsage);
  if (const std::string address = HealthCheckAddressFromFlags(); !address.empty()) {
    const absl::Status ready = ProbeReady(address);
    std::fprintf(stderr, "%s\n", ready.ok() ? "ready" : std::string(ready.message()).c_str());
    return ready.ok() ? 0 : 1;
  }
  const ProcessorOptions options = OptionsFromFlags();
  if (absl::Status status = options.Validate(); !status.ok()) return ConfigError(status);
  auto channel = MakeWriterChannel(options.writer_address, options.tls);
  if (!channel.ok()) return ConfigError(channel.status());
  auto tracer = tracing::Tracer::FromEnvironment("ecomstream-processor");
  if (!tracer.ok()) return ConfigError(tracer.status());

  metrics::Registry& registry = metrics::Registry::Default();
  metrics::RegisterBuildInfo(registry, "processor");
  ProcessorMetrics metrics(registry);
  tracing::SpanExportMetrics span_metrics(tracer->get(), &registry);
  Processor processor(options, *channel, &metrics, tracer->get());
  StatusServer status_server(&registry, [&processor] { return processor.Ready(); });
  if (!options.metrics_address.empty()) {
    if (absl::Status status = status_server.Start(options.metrics_address); !status.ok()) return ConfigError(status);
  }
  std::thread stopper([&processor] {
    ShutdownSignal::Get().Wait();
    processor.Stop();
  });
  const absl::Status result = processor.Run();
  ShutdownSignal::Get().Trigger();  // releases the stopper after --once
  stopper.join();
  // Run() has ended every span it started. An export failure is logged by the exporter and counted.
  (void)(*tracer)->Shutdown(absl::Seconds(2));
  status_server.Stop();
  if (absl::IsAborted(result)) {
    LOG_WARNING("Some files were not committed; they stay in the inbox") << Kv("error", result.message());
    return 1;
  }
  if (!result.ok()) {
    LOG_ERROR("Processor failed") << Kv("error", result.ToString());
    return 1;
  }
  return 0;
}

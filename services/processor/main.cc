// ecomstream-processor: flags -> ProcessorConfig -> Validate -> Processor::Run until SIGTERM (or,
// with --once, until the inbox is committed); SIGHUP reloads --rules_file; --redrive runs a redrive
// instead. The bootstrap (flags, exit codes, tracing, status server, signals) is common/service.h.
#include <signal.h>

#include "common/service.h"
#include "services/processor/processor.h"
#include "services/processor/processor_flags.h"
#include "services/processor/tap.h"

int main(int argc, char** argv) {
  using namespace ecomstream;
  using namespace ecomstream::processor;
  Service service("processor", kUsage, argc, argv, {.handled_signals = {SIGHUP}});
  if (const std::string address = HealthCheckAddressFromFlags(); !address.empty()) {
    return service.HealthCheck(ProbeReady(address), "ready");
  }
  absl::StatusOr<std::shared_ptr<const Rules>> rules = RulesFromFlags();
  if (!rules.ok()) return service.ConfigError(rules.status());
  ProcessorConfig config = ConfigFromFlags();
  if (RedriveFromFlags()) return RunRedriveFromFlags(service, config, *rules);
  if (absl::Status status = config.Validate(); !status.ok()) return service.ConfigError(status);
  auto channel = MakeWriterChannel(config.writer_address, config.tls);
  if (!channel.ok()) return service.ConfigError(channel.status());
  if (absl::Status status = service.StartTelemetry(); !status.ok()) return service.ConfigError(status);
  ProcessorMetrics metrics(service.registry());
  std::shared_ptr<RulesStore> rules_store = RulesStoreFromFlags(service, *rules);
  Tap tap(TapOptions{}, &service.registry());
  config.rules = rules_store.get();
  config.job.tap = &tap;
  Processor processor(config, *channel, &metrics, service.tracer());
  tap.Serve(&service.status_server());
  const absl::Status serving = service.ServeStatus(config.metrics_address, [&processor] { return processor.Ready(); });
  if (!serving.ok()) return service.ConfigError(serving);
  const absl::Status result = service.Run([&processor] { return processor.Run(); }, [&processor] { processor.Stop(); });
  tap.Close();  // ends the /tap streams, so the status server can stop
  if (!absl::IsAborted(result)) return service.Finish(result, "Processor failed");
  return service.Finish(result, "Some files were not committed; they stay in the inbox", LogLevel::kWarning);
}

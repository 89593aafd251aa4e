// ecomstream-processor: flags -> ProcessorOptions -> Validate -> rules (--rules_file), channel,
// tracer (OTEL_*), metrics, status server (with GET /tap) -> Processor::Run until SIGTERM (or,
// with --once, until the inbox is committed) -> flush the spans. SIGHUP reloads the rules file.
// With --redrive: rules and channel -> Redriver::Run -> print the report.
#include <signal.h>

#include <cstdio>
#include <memory>
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
#include "services/processor/redrive.h"
#include "services/processor/rules.h"
#include "services/processor/tap.h"

namespace {

int ConfigError(const absl::Status& status) {
  std::fprintf(stderr, "ecomstream-processor: %s\n", std::string(status.message()).c_str());
  return 2;
}

// Reloads the rules file on every SIGHUP (blocked in every thread by main) until the process ends.
void ReloadRulesOnSighup(std::shared_ptr<ecomstream::processor::RulesStore> store, std::string path,
                         ecomstream::processor::RulesWindows windows) {
  std::thread([store, path, windows] {
    using ecomstream::Kv;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      if (path.empty()) {
        LOG_INFO("SIGHUP ignored: no --rules_file to reload");
        continue;
      }
      if (absl::Status status = store->Reload(path, windows); !status.ok()) {
        LOG_WARNING("Rules file not reloaded; the rules in force stay")
            << Kv("version", store->Get()->version()) << Kv("error", status.message());
      } else {
        LOG_INFO("Rules reloaded") << Kv("file", path) << Kv("version", store->Get()->version());
      }
    }
  }).detach();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ecomstream;
  using namespace ecomstream::processor;
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);  // before any thread starts: ReloadRulesOnSighup waits for it
  ShutdownSignal::Get().Install();
  ParseCommandLineWithEnv(argc, argv, kUsage);
  if (const std::string address = HealthCheckAddressFromFlags(); !address.empty()) {
    const absl::Status ready = ProbeReady(address);
    std::fprintf(stderr, "%s\n", ready.ok() ? "ready" : std::string(ready.message()).c_str());
    return ready.ok() ? 0 : 1;
  }
  const std::string rules_file = RulesFileFromFlags();
  const RulesWindows windows = RulesWindowsFromFlags();
  std::shared_ptr<const Rules> rules = Rules::Builtin(windows);
  if (!rules_file.empty()) {
    auto loaded = Rules::LoadFile(rules_file, windows);
    if (!loaded.ok()) return ConfigError(loaded.status());
    rules = *std::move(loaded);
  }
  ProcessorOptions options = OptionsFromFlags();

  if (RedriveFromFlags()) {
    absl::StatusOr<RedriveOptions> redrive_options = RedriveOptionsFromFlags();
    if (!redrive_options.ok()) return ConfigError(redrive_options.status());
    auto channel = MakeWriterChannel(options.writer_address, options.tls);
    if (!channel.ok()) return ConfigError(channel.status());
    const bool dry_run = redrive_options->dry_run;
    Redriver redriver(*channel, rules, *std::move(redrive_options));
    absl::StatusOr<RedriveReport> report =
        redriver.Run([] { return ShutdownSignal::Get().signal_number() != 0; });
    if (!report.ok()) {
      LOG_ERROR("Redrive stopped; what it committed stays, run it again to continue")
          << Kv("error", report.status().ToString());
      return 1;
    }
    std::printf("%s\n", RedriveSummary(*report, dry_run).c_str());
    return 0;
  }

  if (absl::Status status = options.Validate(); !status.ok()) return ConfigError(status);
  auto channel = MakeWriterChannel(options.writer_address, options.tls);
  if (!channel.ok()) return ConfigError(channel.status());
  auto tracer = tracing::Tracer::FromEnvironment("ecomstream-processor");
  if (!tracer.ok()) return ConfigError(tracer.status());

  metrics::Registry& registry = metrics::Registry::Default();
  metrics::RegisterBuildInfo(registry, "processor");
  ProcessorMetrics metrics(registry);
  tracing::SpanExportMetrics span_metrics(tracer->get(), &registry);
  auto rules_store = std::make_shared<RulesStore>(rules, &registry);
  LOG_INFO("Rules in force") << Kv("version", rules->version()) << Kv("file", rules_file.empty() ? "(built-in)" : rules_file);
  ReloadRulesOnSighup(rules_store, rules_file, windows);
  Tap tap(TapOptions{}, &registry);
  options.rules = rules_store.get();
  options.job.tap = &tap;
  Processor processor(options, *channel, &metrics, tracer->get());
  StatusServer status_server(&registry, [&processor] { return processor.Ready(); });
  tap.Serve(&status_server);
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
  tap.Close();  // ends the /tap streams, so the status server can stop
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

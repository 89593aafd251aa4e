// ecomstream-writer: flags -> WriterConfig -> Validate -> (migrate) -> WriterServer -> SIGTERM.
#include <cstdio>

#include "absl/time/time.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/span_metrics.h"
#include "common/tracer.h"
#include "services/writer/health_probe.h"
#include "services/writer/pg/migrator.h"
#include "services/writer/writer_flags.h"
#include "services/writer/writer_server.h"

namespace {

int ConfigError(const absl::Status& status) {
  std::fprintf(stderr, "ecomstream-writer: %s\n", std::string(status.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ecomstream;
  using namespace ecomstream::writer;
  ShutdownSignal::Get().Install();
  ParseCommandLineWithEnv(argc, argv, kUsage);
  const WriterConfig config = ConfigFromFlags();
  if (absl::Status status = config.Validate(); !status.ok()) return ConfigError(status);
  if (absl::Status status = ExportPasswordFile(); !status.ok()) return ConfigError(status);

  if (const std::string address = HealthCheckAddressFromFlags(); !address.empty()) {
    auto credentials = ProbeCredentials(config);
    if (!credentials.ok()) return ConfigError(credentials.status());
    const absl::Status health = ProbeHealth(address, *credentials, absl::Seconds(3));
    std::fprintf(stderr, "%s\n", health.ok() ? "SERVING" : std::string(health.message()).c_str());
    return health.ok() ? 0 : 1;
  }

  if (config.migrate) {
    auto migrations = EmbeddedMigrations();
    if (!migrations.ok()) return ConfigError(migrations.status());
    auto report = Migrator(config.pg_dsn, *std::move(migrations)).ApplyWithRetry(absl::Seconds(config.migrate_timeout_seconds));
    if (!report.ok()) {
      LOG_ERROR("Migrations failed") << Kv("error", report.status().ToString());
      return 1;
    }
    LOG_INFO("Schema is current") << Kv("version", report->version) << Kv("applied", report->applied.size());
    if (config.migrate_only) return 0;
  }

  auto tracer = tracing::Tracer::FromEnvironment("ecomstream-writer");
  if (!tracer.ok()) return ConfigError(tracer.status());
  tracing::SpanExportMetrics span_metrics(tracer->get(), &metrics::Registry::Default());
  metrics::RegisterBuildInfo(metrics::Registry::Default(), "writer");
  WriterServer server(config, &metrics::Registry::Default(), tracer->get());
  if (absl::Status status = server.Start(); !status.ok()) {
    LOG_ERROR("Writer failed to start") << Kv("error", status.ToString());
    return 1;
  }
  ShutdownSignal::Get().Wait();
  LOG_INFO("Shutting down; draining streams") << Kv("signal", ShutdownSignal::Get().signal_number());
  const bool drained = server.Shutdown(absl::Seconds(config.drain_seconds));
  LOG_INFO("Writer stopped") << Kv("drained", drained);
  (void)(*tracer)->Shutdown(absl::Seconds(2));
  return 0;
}

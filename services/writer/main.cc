// ecomstream-writer: flags -> WriterConfig -> Validate -> (migrate) -> WriterServer until SIGTERM,
// then drain. The bootstrap (flags, exit codes, tracing, signals) is common/service.h; the writer's
// status server belongs to WriterServer (its readiness is the database's).
#include <string>

#include "absl/time/time.h"
#include "common/log.h"
#include "common/service.h"
#include "services/writer/health_probe.h"
#include "services/writer/pg/migrator.h"
#include "services/writer/writer_flags.h"
#include "services/writer/writer_server.h"

int main(int argc, char** argv) {
  using namespace ecomstream;
  using namespace ecomstream::writer;
  Service service("writer", kUsage, argc, argv);
  const WriterConfig config = ConfigFromFlags();
  if (absl::Status status = config.Validate(); !status.ok()) return service.ConfigError(status);
  if (absl::Status status = ExportPasswordFile(); !status.ok()) return service.ConfigError(status);
  if (const std::string address = HealthCheckAddressFromFlags(); !address.empty()) {
    auto credentials = ProbeCredentials(config);
    if (!credentials.ok()) return service.ConfigError(credentials.status());
    return service.HealthCheck(ProbeHealth(address, *credentials, absl::Seconds(3)), "SERVING");
  }
  if (config.migrate) {
    auto migrations = EmbeddedMigrations();
    if (!migrations.ok()) return service.ConfigError(migrations.status());
    auto report = Migrator(config.pg_dsn, *std::move(migrations)).ApplyWithRetry(absl::Seconds(config.migrate_timeout_seconds));
    if (!report.ok()) return service.Failed("Migrations failed", report.status());
    LOG_INFO("Schema is current") << Kv("version", report->version) << Kv("applied", report->applied.size());
    if (config.migrate_only) return kExitOk;
  }
  if (absl::Status status = service.StartTelemetry(); !status.ok()) return service.ConfigError(status);
  WriterServer server(config, &service.registry(), service.tracer());
  if (absl::Status status = server.Start(); !status.ok()) return service.Failed("Writer failed to start", status);
  LOG_INFO("Shutting down; draining streams") << Kv("signal", service.WaitForShutdown());
  LOG_INFO("Writer stopped") << Kv("drained", server.Shutdown(absl::Seconds(config.drain_seconds)));
  return service.Finish(absl::OkStatus(), "Writer failed");
}

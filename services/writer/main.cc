// ecomstream-writer: flags -> WriterConfig -> Validate -> (migrate) -> WriterServer until SIGTERM,
// then drain. The bootstrap (flags, exit codes, tracing, signals) is common/service.h; the writer's
// status server belongs to WriterServer (its readiness is the database's).
#include <malloc.h>

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
  // Freed memory stays in the heap for the next batches (gRPC's read buffers, a batch's encoded
  // rows): glibc's defaults give blocks past its adaptive thresholds back to the kernel, and the
  // next batch takes a page fault per 4 KiB to get them again (~7% of the writer's CPU).
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
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

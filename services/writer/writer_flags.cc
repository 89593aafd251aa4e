#include "services/writer/writer_flags.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

ABSL_FLAG(std::string, listen_address, "127.0.0.1:50051", "gRPC address (host:port) to serve Ingest on.");
ABSL_FLAG(bool, allow_insecure_remote, false, "Allow a non-loopback --listen_address without TLS.");
ABSL_FLAG(std::string, pg_dsn, "", "libpq connection string (key=value or URI); empty = libpq's PG* variables.");
ABSL_FLAG(std::string, pg_password_file, "",
          "File holding the database password (default: $PGPASSWORD_FILE); exported as PGPASSWORD for libpq.");
ABSL_FLAG(int, pg_max_connections, 16,
          "Maximum PostgreSQL sessions (one per in-flight batch or claim; each commit lane of a stream uses a "
          "second one to begin its next batch while one commits, when one is idle).");
ABSL_FLAG(bool, migrate, false, "Apply pending sql/ migrations (embedded) before serving.");
ABSL_FLAG(bool, migrate_only, false, "Apply pending migrations and exit.");
ABSL_FLAG(int, migrate_timeout_seconds, 60, "How long --migrate waits for an unreachable database.");
ABSL_FLAG(int64_t, max_message_bytes, 4 << 20, "Largest Batch accepted; larger ones get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, lease_seconds, 60, "Default and maximum ClaimFile lease; each committed batch extends it.");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate (chain); with --tls_key enables TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA for client certificates: requires and verifies them (mTLS).");
ABSL_FLAG(std::string, metrics_address, "", "host:port for HTTP /metrics, /healthz and /readyz; empty = off.");
ABSL_FLAG(std::string, health_check, "",
          "Probe the writer at this gRPC address (health service) and exit 0 only if it is SERVING.");
ABSL_FLAG(int, keepalive_seconds, 30, "Ping idle client connections this often.");
ABSL_FLAG(int, max_connection_age_seconds, 1800, "Close client connections after this long (GOAWAY) to rebalance.");
ABSL_FLAG(int, drain_seconds, 20, "On SIGTERM, how long in-flight batches may take to commit before exit.");
ABSL_FLAG(int, commit_lanes, 1,
          "Per Write stream, how many files' batches commit at the same time (1..16; a file's batches "
          "commit in row order on one lane; 1 = one batch after the other; more pays when batches update "
          "stored events, not for inserts: see the writer's README).");

namespace ecomstream::writer {

const char kUsage[] =
    "ecomstream-writer: serves ecomstream.v1.Ingest and upserts batches into PostgreSQL.\n"
    "  ecomstream-writer --pg_dsn='host=... dbname=...' --migrate      serve on 127.0.0.1:50051\n"
    "  ecomstream-writer --migrate_only                               apply migrations, exit\n"
    "  ecomstream-writer --health_check=127.0.0.1:50051               exit 0 if SERVING\n"
    "Every flag also reads ECOMSTREAM_<FLAG>. Exit codes: 0 ok, 1 runtime failure, 2 bad configuration.";

WriterConfig ConfigFromFlags() {
  WriterConfig config;
  config.listen_address = absl::GetFlag(FLAGS_listen_address);
  config.allow_insecure_remote = absl::GetFlag(FLAGS_allow_insecure_remote);
  config.pg_dsn = absl::GetFlag(FLAGS_pg_dsn);
  config.pg_max_connections = absl::GetFlag(FLAGS_pg_max_connections);
  config.migrate = absl::GetFlag(FLAGS_migrate) || absl::GetFlag(FLAGS_migrate_only);
  config.migrate_only = absl::GetFlag(FLAGS_migrate_only);
  config.migrate_timeout_seconds = absl::GetFlag(FLAGS_migrate_timeout_seconds);
  config.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  config.lease_seconds = absl::GetFlag(FLAGS_lease_seconds);
  config.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key = absl::GetFlag(FLAGS_tls_key);
  config.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  config.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  config.keepalive_seconds = absl::GetFlag(FLAGS_keepalive_seconds);
  config.max_connection_age_seconds = absl::GetFlag(FLAGS_max_connection_age_seconds);
  config.drain_seconds = absl::GetFlag(FLAGS_drain_seconds);
  config.commit_lanes = absl::GetFlag(FLAGS_commit_lanes);
  return config;
}

std::string HealthCheckAddressFromFlags() { return absl::GetFlag(FLAGS_health_check); }

absl::Status ExportPasswordFile() {
  std::string path = absl::GetFlag(FLAGS_pg_password_file);
  if (path.empty()) {
    const char* env = std::getenv("PGPASSWORD_FILE");
    if (env == nullptr || *env == '\0') return absl::OkStatus();
    path = env;
  }
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  if (!file) return absl::InvalidArgumentError(absl::StrCat("--pg_password_file=", path, ": cannot read it"));
  const std::string password(absl::StripTrailingAsciiWhitespace(contents.str()));
  ::setenv("PGPASSWORD", password.c_str(), /*overwrite=*/1);
  return absl::OkStatus();
}

}  // namespace ecomstream::writer

#include "services/writer/writer_server.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "services/writer/pg/migrator.h"

namespace ecomstream::writer {
namespace {

PgPoolOptions WithConfig(PgPoolOptions options, const WriterConfig& config) {
  options.dsn = config.pg_dsn;
  options.max_connections = config.pg_max_connections;
  auto migrations = EmbeddedMigrations();
  options.required_schema_version = migrations.ok() && !migrations->empty() ? migrations->back().version : 0;
  return options;
}

FileLedgerOptions LedgerOptions(const WriterConfig& config) {
  FileLedgerOptions options;
  options.default_lease = absl::Seconds(config.lease_seconds);
  options.max_lease = absl::Seconds(config.lease_seconds);
  return options;
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(absl::string_view flag, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  if (!file || contents.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", path, ": cannot read a PEM file there"));
  }
  return contents.str();
}

WriterServer::WriterServer(WriterConfig config, metrics::Registry* registry, const tracing::Tracer* tracer,
                           PgPoolOptions pool_options)
    : config_(std::move(config)),
      registry_(registry),
      metrics_(registry),
      server_metrics_(registry),
      pool_(WithConfig(std::move(pool_options), config_)),
      sink_(&pool_, &metrics_, tracer),
      ledger_(&pool_, &metrics_, LedgerOptions(config_)),
      service_(&sink_, &ledger_, &server_metrics_, tracer, config_.commit_lanes),
      redrive_store_(&pool_),
      redrive_service_(&redrive_store_) {
  pool_.SetHealthListener([this](bool healthy) {
    database_up_ = healthy;
    server_metrics_.SetDatabaseUp(healthy);
    UpdateHealth();
  });
}

WriterServer::~WriterServer() {
  if (started_) Shutdown(absl::ZeroDuration());
}

int WriterServer::metrics_port() const { return status_server_ != nullptr ? status_server_->port() : 0; }

void WriterServer::UpdateHealth() {
  if (!started_) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving());
  health->SetServingStatus(v1::Ingest::service_full_name(), serving());
}

absl::Status WriterServer::Start() {
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (config_.tls()) {
    grpc::SslServerCredentialsOptions options(
        config_.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                      : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    ASSIGN_OR_RETURN(pair.cert_chain, ReadPemFile("tls_cert", config_.tls_cert));
    ASSIGN_OR_RETURN(pair.private_key, ReadPemFile("tls_key", config_.tls_key));
    options.pem_key_cert_pairs.push_back(std::move(pair));
    if (!config_.tls_client_ca.empty()) {
      ASSIGN_OR_RETURN(options.pem_root_certs, ReadPemFile("tls_client_ca", config_.tls_client_ca));
    }
    credentials = grpc::SslServerCredentials(options);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen_address, credentials, &port_);
  builder.RegisterService(&service_);
  builder.RegisterService(&redrive_service_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, config_.keepalive_seconds * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Clients may ping every 10 s without being told off (GOAWAY too_many_pings).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, config_.max_connection_age_seconds * 1000);
  // After GOAWAY, a stream has this long to finish its batches before it is cut.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 60'000);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config_.listen_address));
  }
  started_ = true;
  UpdateHealth();  // NOT_SERVING until the pool has reached the database

  if (!config_.metrics_address.empty()) {
    status_server_ = std::make_unique<StatusServer>(registry_, [this] { return serving(); });
    RETURN_IF_ERROR(status_server_->Start(config_.metrics_address));
  }
  // The first attempt tells the health service where we stand; the pool retries on its own.
  absl::Status database = pool_.Start();
  if (database.ok()) {
    // A stream commits on up to two sessions per commit lane at once (one batch begun while
    // another finishes).
    absl::Status warm = sink_.WarmUp(std::min(2 * config_.commit_lanes, config_.pg_max_connections));
    if (warm.ok()) warm = ledger_.WarmUp();
    if (!warm.ok()) {
      LOG_INFO("Database sessions not set up ahead; their first batches set them up") << Kv("error", warm.ToString());
    }
  }
  LOG_INFO("Writer serving") << Kv("address", config_.listen_address) << Kv("port", port_)
                             << Kv("tls", config_.tls()) << Kv("mtls", !config_.tls_client_ca.empty())
                             << Kv("database", database.ok() ? "up" : database.ToString());
  return absl::OkStatus();
}

bool WriterServer::Shutdown(absl::Duration timeout) {
  if (!started_.exchange(false)) return true;
  draining_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  const bool drained = service_.Drain(timeout);
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  if (status_server_ != nullptr) status_server_->Stop();
  return drained;
}

}  // namespace ecomstream::writer

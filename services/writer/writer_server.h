// The running writer: a PostgreSQL pool, pg_sink, file_ledger and ingest_service behind a gRPC
// server with the health service (SERVING only while the database is usable and the writer is
// not draining), reflection, a maximum message size (RESOURCE_EXHAUSTED beyond it), keepalive, a
// maximum connection age, optional TLS/mTLS, and the HTTP status server (/metrics, /healthz,
// /readyz). main.cc builds one from flags; tests build one on 127.0.0.1:0.
#ifndef ECOMSTREAM_SERVICES_WRITER_WRITER_SERVER_H_
#define ECOMSTREAM_SERVICES_WRITER_WRITER_SERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/status_server.h"
#include "common/tracer.h"
#include "services/writer/config.h"
#include "services/writer/pg/file_ledger.h"
#include "services/writer/ingest_service.h"
#include "services/writer/pg/pg_pool.h"
#include "services/writer/pg/pg_sink.h"
#include "services/writer/redrive_service.h"
#include "services/writer/server_metrics.h"
#include "services/writer/pg/writer_metrics.h"

namespace ecomstream::writer {

class WriterServer {
 public:
  // `config` must have passed Validate(); `registry` and `tracer` must outlive the server.
  WriterServer(WriterConfig config, metrics::Registry* registry, const tracing::Tracer* tracer,
               PgPoolOptions pool_options = {});
  ~WriterServer();
  WriterServer(const WriterServer&) = delete;
  WriterServer& operator=(const WriterServer&) = delete;

  // Binds and serves. The database may still be down: the health service says NOT_SERVING until
  // the pool connects. kUnavailable if an address cannot be bound; kInvalidArgument for an
  // unreadable TLS file.
  absl::Status Start();
  int port() const { return port_; }
  int metrics_port() const;
  // SERVING: the database is usable and the writer is not draining.
  bool serving() const { return database_up_ && !draining_; }

  // Graceful stop (SIGTERM): NOT_SERVING, drain the streams (in-flight batches commit and are
  // acked) for up to `timeout`, then shut the server down. Returns true if everything drained.
  bool Shutdown(absl::Duration timeout);

 private:
  void UpdateHealth();

  WriterConfig config_;
  metrics::Registry* registry_;
  WriterMetrics metrics_;
  ServerMetrics server_metrics_;
  PgPool pool_;
  PgSink sink_;
  FileLedger ledger_;
  IngestService service_;
  RedriveStore redrive_store_;
  RedriveService redrive_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<StatusServer> status_server_;
  int port_ = 0;
  std::atomic<bool> database_up_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> started_{false};
};

// The contents of a PEM file named by --`flag`; kInvalidArgument if it cannot be read or is empty.
absl::StatusOr<std::string> ReadPemFile(absl::string_view flag, const std::string& path);

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_WRITER_SERVER_H_

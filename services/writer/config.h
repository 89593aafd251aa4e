// The writer's configuration, from flags (main.cc) or tests, checked before anything starts.
#ifndef ECOMSTREAM_SERVICES_WRITER_CONFIG_H_
#define ECOMSTREAM_SERVICES_WRITER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace ecomstream::writer {

// Each lane of a stream holds up to two sessions (a batch committing, the next begun ahead).
inline constexpr int kMaxCommitLanes = 16;

struct WriterConfig {
  std::string listen_address = "127.0.0.1:50051";
  bool allow_insecure_remote = false;  // serve a non-loopback address without TLS
  std::string pg_dsn;                  // libpq key=value or URI; "" = PG* variables
  int pg_max_connections = 16;
  bool migrate = false;                // apply migrations before serving
  bool migrate_only = false;           // apply migrations and exit
  int migrate_timeout_seconds = 60;    // how long to wait for an unreachable database
  int64_t max_message_bytes = 4 << 20;  // larger batches get RESOURCE_EXHAUSTED
  int lease_seconds = 60;              // default and maximum ClaimFile lease
  std::string tls_cert;                // PEM files; cert + key enable TLS
  std::string tls_key;
  std::string tls_client_ca;           // PEM CA: clients must present a certificate it signed (mTLS)
  std::string metrics_address;         // host:port for /metrics, /healthz, /readyz; "" = off
  int keepalive_seconds = 30;          // server pings idle connections this often
  int max_connection_age_seconds = 1800;  // then GOAWAY, so clients rebalance across writers
  int drain_seconds = 20;              // SIGTERM: how long in-flight batches may take to finish
  int commit_lanes = 1;                // per Write stream: files whose batches commit concurrently

  bool tls() const { return !tls_cert.empty(); }
  // kInvalidArgument with one line naming the flag and what is wrong: an unparseable address,
  // a non-loopback listen address without TLS or --allow_insecure_remote, a TLS file missing or
  // unreadable, half a cert/key pair, a client CA without TLS, or a number out of range.
  absl::Status Validate() const;
};

// True for 127.0.0.0/8, ::1 and localhost.
bool IsLoopbackHost(const std::string& host);

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_CONFIG_H_

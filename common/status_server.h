// The HTTP side every service exposes on --metrics_address:
//   GET /metrics  Prometheus text (text/plain; version=0.0.4)
//   GET /healthz  200 "ok" while the process is alive (liveness)
//   GET /readyz   200 "ready" when `ready()` returns true, else 503 "not ready" (readiness)
// and the client side of `--health_check=ADDRESS` for container healthchecks.
#ifndef ECOMSTREAM_COMMON_STATUS_SERVER_H_
#define ECOMSTREAM_COMMON_STATUS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ecomstream {

// Splits "host:port" ("[::1]:9090", "0.0.0.0:9090", ":9090" = all interfaces). kInvalidArgument
// on anything else (missing or non-numeric port, port > 65535).
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view address);

class StatusServer {
 public:
  // `registry` must outlive the server. `ready` is called from the server's threads.
  StatusServer(metrics::Registry* registry, std::function<bool()> ready);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Serves GET `path` with `handler` too (from the server's threads). Call before Start.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  void AddGet(std::string path, Handler handler);

  // Binds `address` (port 0 picks a free port) and serves on a background thread.
  // kInvalidArgument for a malformed address, kUnavailable when the port cannot be bound.
  absl::Status Start(absl::string_view address);
  // The bound port (after Start).
  int port() const { return port_; }
  void Stop();

 private:
  metrics::Registry* registry_;
  std::function<bool()> ready_;
  std::vector<std::pair<std::string, Handler>> extra_gets_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// GET http://ADDRESS/readyz within `timeout_ms`: OK on 200, kUnavailable otherwise (the message
// says what answered). For `--health_check` of the generator and processor.
absl::Status ProbeReady(absl::string_view address, int timeout_ms = 2000);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_STATUS_SERVER_H_

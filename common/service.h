// The bootstrap every ecomstream binary runs, so each main.cc is only its service's wiring:
//
//   Service service("processor", kUsage, argc, argv);  // signals, flags + ECOMSTREAM_<FLAG>
//   if (!address.empty()) return service.HealthCheck(ProbeReady(address), "ready");
//   if (status = config.Validate(); !status.ok()) return service.ConfigError(status);  // exit 2
//   if (status = service.StartTelemetry(); ...)        // tracer (OTEL_*), build info, span metrics
//   service.ServeStatus(metrics_address, ready);       // /metrics, /healthz, /readyz (+ AddGet)
//   return service.Finish(service.Run(run, stop), "Processor failed");
//
// Exit codes, the same for every binary: 0 ok, 1 runtime failure, 2 bad configuration (one line
// on stderr: "ecomstream-<name>: <what is wrong>").
#ifndef ECOMSTREAM_COMMON_SERVICE_H_
#define ECOMSTREAM_COMMON_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/span_metrics.h"
#include "common/status_server.h"
#include "common/tracer.h"

namespace ecomstream {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadConfig = 2;

class Service {
 public:
  struct Options {
    // Signals (besides SIGTERM and SIGINT) blocked in every thread from the start, so OnSignal
    // can wait for them, e.g. SIGHUP to reload a file.
    std::vector<int> handled_signals;
  };

  // Call first in main, before any thread starts: turns off absl::Mutex deadlock detection (on in
  // Debian's Abseil build, costly on every lock), blocks SIGTERM, SIGINT and
  // `options.handled_signals` (every thread inherits the mask) and turns the first two into the
  // shutdown request; then sets the flags from ECOMSTREAM_<FLAG> and the command line (a bad value
  // exits 2 with one line; --help prints `usage` and the flags). `name` is "generator",
  // "processor" or "writer": the binary is "ecomstream-<name>".
  Service(absl::string_view name, absl::string_view usage, int argc, char** argv, Options options = {});
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const std::string& binary() const { return binary_; }

  // Prints "ecomstream-<name>: <message>" as one line on stderr; returns kExitBadConfig.
  int ConfigError(const absl::Status& status) const;
  // Logs "<what> error=<status>"; returns kExitFailure.
  int Failed(absl::string_view what, const absl::Status& status) const;
  // The end of --health_check: prints `ok_text` (e.g. "ready") and returns 0 when `probe` is OK,
  // else prints "ecomstream-<name>: <why>" and returns 1.
  int HealthCheck(const absl::Status& probe, absl::string_view ok_text) const;

  // The tracer from the OTEL_* environment (service.name "ecomstream-<name>"), ecomstream_build_info
  // and the span export series in registry(). kInvalidArgument for a bad OTEL_* value.
  absl::Status StartTelemetry();
  // After StartTelemetry.
  const tracing::Tracer* tracer() const { return tracer_.get(); }
  metrics::Registry& registry() const { return *registry_; }

  // The status server (/metrics, /healthz, /readyz): add handlers with AddGet before ServeStatus.
  StatusServer& status_server() { return *status_server_; }
  // Serves it on `address` ("" = not at all) with /readyz answering `ready()` (called from the
  // server's threads). kInvalidArgument / kUnavailable for an address that is malformed or taken.
  absl::Status ServeStatus(absl::string_view address, std::function<bool()> ready);

  // Calls `stop` (from another thread) on SIGTERM or SIGINT while `run` runs on this one; returns
  // what `run` returned. Once `run` returns by itself, the shutdown request is raised too.
  absl::Status Run(const std::function<absl::Status()>& run, const std::function<void()>& stop);
  // Blocks until SIGTERM or SIGINT; returns the signal number.
  int WaitForShutdown();
  // Whether SIGTERM or SIGINT arrived.
  bool stopping() const;
  // Runs `handler` on a thread of its own each time `signal` (one of Options::handled_signals)
  // arrives, until the process ends.
  void OnSignal(int signal, std::function<void()> handler);

  // Flushes the spans (up to 2 s; a failure is logged by the exporter and counted), stops the
  // status server, and returns the exit code of `result`: kExitOk, or kExitFailure after logging
  // "<failure> error=<result>" at `level` (kWarning when nothing is lost, e.g. files left to retry).
  int Finish(const absl::Status& result, absl::string_view failure, LogLevel level = LogLevel::kError);

 private:
  const std::string name_;
  const std::string binary_;
  metrics::Registry* registry_;
  std::unique_ptr<tracing::Tracer> tracer_;
  std::unique_ptr<tracing::SpanExportMetrics> span_metrics_;
  std::function<bool()> ready_;
  std::unique_ptr<StatusServer> status_server_;
};

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_SERVICE_H_

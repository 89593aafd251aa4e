// A minimal service built on the bootstrap, run as a child process by service_test.cc the way
// the three binaries run: "Started port=N" once serving, "Reloaded" on each SIGHUP, then runs
// until SIGTERM (or --run_error: fails at once).
#include <signal.h>

#include <string>

#include "absl/flags/flag.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/service.h"

ABSL_FLAG(std::string, metrics_address, "", "Status server address; empty = none.");
ABSL_FLAG(std::string, health_check, "", "Probe /readyz at this address and exit.");
ABSL_FLAG(std::string, bad_setting, "", "Fail validation with this message.");
ABSL_FLAG(std::string, run_error, "", "Run fails with this message.");
ABSL_FLAG(int, count, 1, "An integer setting, for malformed values.");

int main(int argc, char** argv) {
  using namespace ecomstream;
  Service service("bootstrap_test", "bootstrap test service", argc, argv, {{SIGHUP}});
  if (const std::string address = absl::GetFlag(FLAGS_health_check); !address.empty()) {
    return service.HealthCheck(ProbeReady(address), "ready");
  }
  if (const std::string bad = absl::GetFlag(FLAGS_bad_setting); !bad.empty()) {
    return service.ConfigError(absl::InvalidArgumentError(bad));
  }
  if (absl::Status status = service.StartTelemetry(); !status.ok()) return service.ConfigError(status);
  absl::Notification stopped;
  absl::Status status = service.ServeStatus(absl::GetFlag(FLAGS_metrics_address), [] { return true; });
  if (!status.ok()) return service.ConfigError(status);
  service.OnSignal(SIGHUP, [] { LOG_INFO("Reloaded"); });
  LOG_INFO("Started") << Kv("port", service.status_server().port());
  const absl::Status result = service.Run(
      [&] {
        if (!absl::GetFlag(FLAGS_run_error).empty()) return absl::InternalError(absl::GetFlag(FLAGS_run_error));
        stopped.WaitForNotification();
        return absl::OkStatus();
      },
      [&] { stopped.Notify(); });
  return service.Finish(result, "Run failed");
}

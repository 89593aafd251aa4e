#include "common/service.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/shutdown.h"

namespace ecomstream {

Service::Service(absl::string_view name, absl::string_view usage, int argc, char** argv, Options options)
    : name_(name), binary_(absl::StrCat("ecomstream-", name)), registry_(&metrics::Registry::Default()) {
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex acquire would feed the deadlock
  // detector's graph under one global lock. The binaries turn it off; tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t set;
  sigemptyset(&set);
  for (const int signal : options.handled_signals) sigaddset(&set, signal);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ShutdownSignal::Get().Install();
  ParseCommandLineWithEnv(argc, argv, usage);
  status_server_ = std::make_unique<StatusServer>(registry_, [this] { return ready_ != nullptr && ready_(); });
}

Service::~Service() { status_server_->Stop(); }

int Service::ConfigError(const absl::Status& status) const {
  std::fprintf(stderr, "%s: %s\n", binary_.c_str(), OneLine(status.message()).c_str());
  return kExitBadConfig;
}

int Service::Failed(absl::string_view what, const absl::Status& status) const {
  LOG_ERROR(what) << Kv("error", status.ToString());
  return kExitFailure;
}

int Service::HealthCheck(const absl::Status& probe, absl::string_view ok_text) const {
  if (!probe.ok()) {
    std::fprintf(stderr, "%s: %s\n", binary_.c_str(), OneLine(probe.message()).c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "%s\n", std::string(ok_text).c_str());
  return kExitOk;
}

absl::Status Service::StartTelemetry() {
  absl::StatusOr<std::unique_ptr<tracing::Tracer>> tracer = tracing::Tracer::FromEnvironment(binary_);
  if (!tracer.ok()) return tracer.status();
  tracer_ = *std::move(tracer);
  metrics::RegisterBuildInfo(*registry_, name_);
  span_metrics_ = std::make_unique<tracing::SpanExportMetrics>(tracer_.get(), registry_);
  return absl::OkStatus();
}

absl::Status Service::ServeStatus(absl::string_view address, std::function<bool()> ready) {
  ready_ = std::move(ready);
  if (address.empty()) return absl::OkStatus();
  return status_server_->Start(address);
}

absl::Status Service::Run(const std::function<absl::Status()>& run, const std::function<void()>& stop) {
  std::thread stopper([&stop] {
    ShutdownSignal::Get().Wait();
    stop();
  });
  const absl::Status result = run();
  ShutdownSignal::Get().Trigger();  // releases the stopper when `run` ended by itself
  stopper.join();
  return result;
}

int Service::WaitForShutdown() {
  ShutdownSignal::Get().Wait();
  return ShutdownSignal::Get().signal_number();
}

bool Service::stopping() const { return ShutdownSignal::Get().signal_number() != 0; }

void Service::OnSignal(int signal, std::function<void()> handler) {
  std::thread([signal, handler = std::move(handler)] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    int received = 0;
    while (sigwait(&set, &received) == 0) handler();
  }).detach();
}

int Service::Finish(const absl::Status& result, absl::string_view failure, LogLevel level) {
  if (tracer_ != nullptr) (void)tracer_->Shutdown(absl::Seconds(2));
  status_server_->Stop();
  if (result.ok()) return kExitOk;
  if (LogEnabled(level)) LogLine(level, failure) << Kv("error", result.ToString());
  return kExitFailure;
}

}  // namespace ecomstream

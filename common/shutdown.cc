#include "common/shutdown.h"

#include <pthread.h>
#include <signal.h>

#include <thread>

namespace ecomstream {

ShutdownSignal& ShutdownSignal::Get() {
  static ShutdownSignal* instance = new ShutdownSignal();
  return *instance;
}

void ShutdownSignal::Install() {
  if (installed_) return;
  installed_ = true;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::thread([this, set]() {
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      if (!notification_.HasBeenNotified()) {
        signal_number_ = sig;
        notification_.Notify();
      }
    }
  }).detach();
}

void ShutdownSignal::Trigger() {
  if (!notification_.HasBeenNotified()) notification_.Notify();
}

}  // namespace ecomstream

// Turns SIGTERM and SIGINT into a notification that a service's main loop can wait on.
//
// Install() blocks the signals in the calling thread (call it first in main, before any thread
// starts, so every thread inherits the mask) and starts a thread that sigwait()s for them.
#ifndef ECOMSTREAM_COMMON_SHUTDOWN_H_
#define ECOMSTREAM_COMMON_SHUTDOWN_H_

#include "absl/synchronization/notification.h"

namespace ecomstream {

class ShutdownSignal {
 public:
  // Process-wide instance.
  static ShutdownSignal& Get();

  void Install();
  // Requests shutdown as if a signal had arrived (tests, fatal errors).
  void Trigger();
  // Blocks until shutdown is requested.
  void Wait() { notification_.WaitForNotification(); }
  int signal_number() const { return signal_number_; }

 private:
  absl::Notification notification_;
  int signal_number_ = 0;
  bool installed_ = false;
};

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_SHUTDOWN_H_

// Child processes for tests: one-shot commands with captured output, and long-running services
// with their output in a log file that are killed if a test forgets them.
//
//   std::string out;
//   int rc = RunCommand({"openssl", "version"}, &out);             // stdout+stderr in `out`
//   auto writer = Process::Start({BinPath("ecomstream-writer"), ...}, dir.File("writer.log"));
//   (*writer)->Stop();                                             // SIGTERM, then SIGKILL
#ifndef ECOMSTREAM_TESTS_TESTING_PROCESS_H_
#define ECOMSTREAM_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ecomstream::testing {

// $ECOMSTREAM_BIN_DIR/<name>, e.g. BinPath("ecomstream-writer") (ecomstream_test sets the variable);
// without it, <build>/bin/<name> next to the test binary's <build>/tests.
std::string BinPath(absl::string_view name);

// Runs a command (argv[0] looked up in PATH) with stdin from /dev/null; returns its exit code
// (128 + signal if a signal ended it, 127 if it could not be executed) and captures
// stdout+stderr into *output if given.
int RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr);

// A child process with stdout and stderr appended to a log file. The destructor SIGKILLs and
// reaps it if it is still running, so a failing test never leaves a service behind.
class Process {
 public:
  // Starts argv (argv[0] a path). Adds OTEL_SDK_DISABLED=true to the environment unless `env`
  // sets it; `env` entries (KEY=VALUE) override inherited ones. kInternal if fork/exec fails.
  static absl::StatusOr<std::unique_ptr<Process>> Start(const std::vector<std::string>& argv,
                                                        const std::string& log_path,
                                                        const std::vector<std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // Sends `signal` if the process has not been reaped yet.
  void Signal(int signal);
  // True while the process has not exited (reaps it when it has).
  bool Running();
  // Waits for exit; returns the exit code, or 128 + signal number if a signal ended it.
  // kDeadlineExceeded if it is still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGTERM, then SIGKILL if it has not exited within `grace`. Returns what Wait returns.
  absl::StatusOr<int> Stop(absl::Duration grace = absl::Seconds(20));
  // The last `bytes` of the log, for failure messages.
  std::string LogTail(size_t bytes = 3000) const;

 private:
  Process(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  bool reaped_ = false;
  int exit_code_ = -1;
};

// Runs a command to completion with stdout+stderr appended to `log_path`; returns the exit code
// (or kDeadlineExceeded, after killing it).
absl::StatusOr<int> RunToExit(const std::vector<std::string>& argv, const std::string& log_path,
                              absl::Duration timeout);

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_TESTING_PROCESS_H_

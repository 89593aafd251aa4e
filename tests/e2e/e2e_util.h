// Helpers for tests that run the real binaries: spawning and signalling processes, waiting with a
// deadline, temporary directories, and the generator's --summary_file.
//
// Binaries come from $ECOMSTREAM_BIN_DIR (set by ecomstream_test). PostgreSQL, free ports and
// one-shot commands come from tests/pg_fixture.h.
#ifndef ECOMSTREAM_TESTS_E2E_E2E_UTIL_H_
#define ECOMSTREAM_TESTS_E2E_E2E_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ecomstream::testing {

// $ECOMSTREAM_BIN_DIR/<name>, e.g. BinPath("ecomstream-writer"); without that variable,
// <build>/bin/<name> next to the test binary's <build>/tests.
std::string BinPath(absl::string_view name);

// A child process with stdout and stderr appended to a log file. The destructor SIGKILLs and
// reaps it if it is still running, so a failing test never leaves a service behind.
class Process {
 public:
  // Starts argv (argv[0] a path). Adds OTEL_SDK_DISABLED=true to the environment unless `env`
  // sets it. kInternal if fork/exec fails.
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

// A fresh directory under $TMPDIR (or /tmp), removed with its contents by the destructor unless
// ECOMSTREAM_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path()/name, created (with parents) if missing.
  std::string Subdir(absl::string_view name) const;

 private:
  std::string path_;
};

// Polls `done` every `poll` until it returns true (true) or `timeout` passes (false).
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout,
               absl::Duration poll = absl::Milliseconds(50));

// Names (not paths) of the regular files in `dir` that end in `suffix` and do not start with a
// dot, sorted. Empty if the directory does not exist.
std::vector<std::string> ListFiles(const std::string& dir, absl::string_view suffix = "");

absl::StatusOr<std::string> ReadFileToString(const std::string& path);
// Copies a file (mode 0644) through WriteFileAtomically (a temp file in the destination's .tmp/, then a
// rename), so a directory watcher never sees it half-written.
absl::Status CopyFileAtomically(const std::string& from, const std::string& to);

// The generator's --summary_file (DESIGN.md, "The input contract").
struct GeneratorSummary {
  int64_t events_written = 0;
  int64_t files = 0;
  int64_t valid_distinct_events = 0;
  int64_t expected_dead_letters = 0;
  int64_t exact_duplicates = 0;
  int64_t late_events = 0;
  std::map<std::string, int64_t> anomalies;
};
// kInvalidArgument if the JSON is malformed or a required field is missing.
absl::StatusOr<GeneratorSummary> ReadGeneratorSummary(const std::string& path);

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_E2E_E2E_UTIL_H_

#include "tests/testing/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/atomic_file.h"
#include "tests/testing/files.h"

namespace ecomstream::testing {

std::string BinPath(absl::string_view name) {
  if (const char* dir = std::getenv("ECOMSTREAM_BIN_DIR"); dir != nullptr && *dir != '\0') {
    return absl::StrCat(dir, "/", name);
  }
  // Test binaries live in <build>/tests, the services in <build>/bin.
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string exe(self, n > 0 ? static_cast<size_t>(n) : 0);
  return absl::StrCat(exe.substr(0, exe.rfind('/')), "/../bin/", name);
}

int RunCommand(const std::vector<std::string>& argv, std::string* output) {
  if (argv.empty()) return -1;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    ::dup2(devnull, STDIN_FILENO);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(pipefd[1]);
  ::close(devnull);
  if (pid < 0) {
    ::close(pipefd[0]);
    return -1;
  }
  std::string captured;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buffer, sizeof(buffer))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) captured.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output != nullptr) *output = std::move(captured);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

absl::StatusOr<std::unique_ptr<Process>> Process::Start(const std::vector<std::string>& argv,
                                                        const std::string& log_path,
                                                        const std::vector<std::string>& env) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  bool otel_set = false;
  for (const auto& e : env) otel_set |= absl::StartsWith(e, "OTEL_SDK_DISABLED=");
  for (char** e = environ; *e != nullptr; ++e) {
    bool overridden = false;
    for (const auto& mine : env) {
      size_t eq = mine.find('=');
      if (std::strncmp(*e, mine.c_str(), eq + 1) == 0) overridden = true;
    }
    if (!overridden && !(!otel_set && absl::StartsWith(*e, "OTEL_SDK_DISABLED="))) env_strings.push_back(*e);
  }
  for (const auto& e : env) env_strings.push_back(e);
  if (!otel_set) env_strings.push_back("OTEL_SDK_DISABLED=true");
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return ErrnoToStatus(errno, absl::StrCat("cannot open ", log_path));
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(log_fd);
    ::close(null_fd);
    return ErrnoToStatus(err, "fork failed");
  }
  if (pid == 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(args[0], args.data(), envp.data());
    static const char kMsg[] = "exec failed\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  return std::unique_ptr<Process>(new Process(pid, log_path));
}

Process::~Process() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
}

void Process::Signal(int signal) {
  if (!reaped_) ::kill(pid_, signal);
}

bool Process::Running() {
  if (reaped_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  reaped_ = true;
  exit_code_ = r < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return exit_code_;
}

absl::StatusOr<int> Process::Stop(absl::Duration grace) {
  Signal(SIGTERM);
  auto code = Wait(grace);
  if (code.ok()) return code;
  Signal(SIGKILL);
  (void)Wait(absl::Seconds(10));
  return code.status();
}

std::string Process::LogTail(size_t bytes) const {
  auto text = ReadFileToString(log_path_);
  if (!text.ok()) return text.status().ToString();
  return text->size() <= bytes ? *text : text->substr(text->size() - bytes);
}

absl::StatusOr<int> RunToExit(const std::vector<std::string>& argv, const std::string& log_path,
                              absl::Duration timeout) {
  auto process = Process::Start(argv, log_path);
  if (!process.ok()) return process.status();
  auto code = (*process)->Wait(timeout);
  if (!code.ok()) (*process)->Signal(SIGKILL);
  return code;
}

}  // namespace ecomstream::testing

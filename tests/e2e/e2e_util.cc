#include "tests/e2e/e2e_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/atomic_file.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/pg_fixture.h"

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

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/ecomstream-e2e-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp(%s) failed: %s\n", tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::getenv("ECOMSTREAM_KEEP_TEST_DIRS") != nullptr) {
    std::fprintf(stderr, "Kept test directory %s\n", path_.c_str());
    return;
  }
  RunCommand({"rm", "-rf", path_});
}

std::string TempDir::Subdir(absl::string_view name) const {
  std::string dir = absl::StrCat(path_, "/", name);
  RunCommand({"mkdir", "-p", dir});
  return dir;
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout, absl::Duration poll) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(poll);
  }
}

std::vector<std::string> ListFiles(const std::string& dir, absl::string_view suffix) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.' || !absl::EndsWith(name, suffix)) continue;
    struct stat st;
    if (::stat(absl::StrCat(dir, "/", name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::Status CopyFileAtomically(const std::string& from, const std::string& to) {
  auto content = ReadFileToString(from);
  if (!content.ok()) return content.status();
  const size_t slash = to.rfind('/');
  if (slash == std::string::npos) return WriteFileAtomically(".", to, *content);
  return WriteFileAtomically(to.substr(0, slash), to.substr(slash + 1), *content);
}

absl::StatusOr<GeneratorSummary> ReadGeneratorSummary(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  google::protobuf::Struct doc;
  auto parsed = google::protobuf::util::JsonStringToMessage(*text, &doc);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.ToString()));
  const auto& fields = doc.fields();
  GeneratorSummary summary;
  const std::pair<const char*, int64_t*> required[] = {
      {"events_written", &summary.events_written},
      {"files", &summary.files},
      {"valid_distinct_events", &summary.valid_distinct_events},
      {"expected_dead_letters", &summary.expected_dead_letters},
      {"exact_duplicates", &summary.exact_duplicates},
      {"late_events", &summary.late_events},
  };
  for (const auto& [name, out] : required) {
    auto it = fields.find(name);
    if (it == fields.end() || it->second.kind_case() != google::protobuf::Value::kNumberValue) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no numeric field ", name, " in ", *text));
    }
    *out = static_cast<int64_t>(it->second.number_value());
  }
  auto anomalies = fields.find("anomalies");
  if (anomalies != fields.end() && anomalies->second.kind_case() == google::protobuf::Value::kStructValue) {
    for (const auto& [kind, value] : anomalies->second.struct_value().fields()) {
      summary.anomalies[kind] = static_cast<int64_t>(value.number_value());
    }
  }
  return summary;
}

}  // namespace ecomstream::testing

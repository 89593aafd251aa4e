#include "tests/pg_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ecomstream::testing {
namespace {

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string FindBinDir() {
  if (const char* env = std::getenv("ECOMSTREAM_PG_BINDIR")) return env;
  for (int version = 17; version >= 12; --version) {
    std::string dir = absl::StrCat("/usr/lib/postgresql/", version, "/bin");
    if (IsExecutable(dir + "/initdb")) return dir;
  }
  return "";
}

std::string CurrentUser() {
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : "postgres";
}

}  // namespace

int RunCommand(const std::vector<std::string>& argv, std::string* output) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(pipefd[1]);
  std::string captured;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buffer, sizeof(buffer))) > 0) captured.append(buffer, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (output != nullptr) *output = std::move(captured);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string PgCluster::Bin(absl::string_view tool) const { return absl::StrCat(bindir_, "/", tool); }

absl::Status PgCluster::RunAsOwner(const std::vector<std::string>& argv, std::string* output) const {
  std::vector<std::string> full;
  if (as_postgres_) full = {"runuser", "-u", "postgres", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  std::string captured;
  int rc = RunCommand(full, &captured);
  if (output != nullptr) *output = captured;
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("`", absl::StrJoin(argv, " "), "` exited ", rc, ": ", captured));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Start() {
  std::unique_ptr<PgCluster> pg(new PgCluster());
  pg->bindir_ = FindBinDir();
  if (pg->bindir_.empty()) {
    return absl::FailedPreconditionError(
        "PostgreSQL server binaries not found (install postgresql-15 or set ECOMSTREAM_PG_BINDIR)");
  }
  pg->as_postgres_ = ::geteuid() == 0;
  pg->superuser_ = pg->as_postgres_ ? "postgres" : CurrentUser();
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/ecomstream-pg-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed for the PostgreSQL cluster");
  pg->dir_ = tmpl;
  if (pg->as_postgres_) {
    struct passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) return absl::FailedPreconditionError("running as root but there is no `postgres` user");
    if (::chown(pg->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError("chown of cluster dir failed");
  }
  ::chmod(pg->dir_.c_str(), 0700);
  const std::string data = pg->dir_ + "/data";
  absl::Status status = pg->RunAsOwner(
      {pg->Bin("initdb"), "-D", data, "-A", "trust", "-U", pg->superuser_, "-E", "UTF8", "--locale=C", "--no-sync"});
  if (!status.ok()) return status;
  {
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
         << "max_connections = 200\nshared_buffers = 128MB\n"
         << "unix_socket_directories = '" << pg->dir_ << "'\nlisten_addresses = '127.0.0.1'\n";
  }
  pg->port_ = FreePort();
  status = pg->Restart();
  if (!status.ok()) return status;
  return pg;
}

absl::Status PgCluster::Restart() {
  absl::Status status = RunAsOwner({Bin("pg_ctl"), "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t", "60",
                                    "-o", absl::StrCat("-p ", port_), "start"});
  if (status.ok()) running_ = true;
  return status;
}

absl::Status PgCluster::Stop() {
  if (!running_) return absl::OkStatus();
  running_ = false;
  return RunAsOwner({Bin("pg_ctl"), "-D", dir_ + "/data", "-m", "fast", "-w", "stop"});
}

PgCluster::~PgCluster() {
  (void)Stop();
  if (!dir_.empty()) RunCommand({"rm", "-rf", dir_});
}

std::string PgCluster::Dsn(absl::string_view dbname) const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " user=", superuser_, " dbname=", dbname);
}

absl::StatusOr<std::string> PgCluster::Psql(absl::string_view dbname, absl::string_view sql) const {
  std::string output;
  std::vector<std::string> argv = {Bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                   "-d", Dsn(dbname), "-c", std::string(sql)};
  int rc = RunCommand(argv, &output);
  if (rc != 0) return absl::InternalError(absl::StrCat("psql failed (", rc, "): ", output));
  return output;
}

absl::StatusOr<std::string> PgCluster::CreateDatabase(absl::string_view prefix) {
  std::string name = absl::StrCat(prefix, "_", ::getpid(), "_", next_db_++);
  auto result = Psql("postgres", absl::StrCat("CREATE DATABASE \"", name, "\""));
  if (!result.ok()) return result.status();
  return Dsn(name);
}

PgCluster& SharedPgCluster() {
  // A function-local static: destroyed (cluster stopped, directory removed) at normal exit.
  static std::unique_ptr<PgCluster> cluster = [] {
    auto started = PgCluster::Start();
    if (!started.ok()) {
      std::fprintf(stderr, "Cannot start the test PostgreSQL cluster: %s\n", started.status().ToString().c_str());
      std::abort();
    }
    return std::move(started).value();
  }();
  return *cluster;
}

}  // namespace ecomstream::testing

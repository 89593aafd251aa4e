#include "tests/pg_fixture.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testing/files.h"
#include "tests/testing/temp_dir.h"

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

std::string Quoted(absl::string_view identifier) { return absl::StrCat("\"", identifier, "\""); }

// An exclusive flock on `path` for the life of the object (blocking).
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// `rm -rf dir` in a detached process: removing every test's database (a gigabyte or more) takes
// tens of seconds on a busy machine, which no test should wait for. The server is stopped first.
void RemoveInBackground(const std::string& dir) {
  const char* argv[] = {"rm", "-rf", dir.c_str(), nullptr};
  const pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    if (::fork() == 0) {
      const int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);  // ctest waits for the test's output pipe to close
      ::dup2(devnull, STDERR_FILENO);
      ::execvp(argv[0], const_cast<char**>(argv));
    }
    _exit(0);
  }
  if (child > 0) ::waitpid(child, nullptr, 0);
}

}  // namespace

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

namespace {

// The key=value lines of a cluster description (WriteInfo).
std::map<std::string, std::string> InfoFields(absl::string_view text) {
  std::map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    fields[kv.first] = kv.second;
  }
  return fields;
}

// The fresh initdb output the run's cluster kept (StartOptions::keep_initdb_copy), if the
// description in $ECOMSTREAM_TEST_PG or $ECOMSTREAM_TEST_PG_INITDB names one made by `bindir`.
std::string InitdbCopyOfTheRun(const std::string& bindir) {
  for (const char* variable : {"ECOMSTREAM_TEST_PG", "ECOMSTREAM_TEST_PG_INITDB"}) {
    const char* info = std::getenv(variable);
    if (info == nullptr || *info == '\0') continue;
    auto text = ReadFileToString(info);
    if (!text.ok()) continue;
    std::map<std::string, std::string> fields = InfoFields(*text);
    const std::string& copy = fields["initdb"];
    if (!copy.empty() && fields["bindir"] == bindir && ::access((copy + "/PG_VERSION").c_str(), R_OK) == 0) {
      return copy;
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Start(StartOptions options) {
  std::unique_ptr<PgCluster> pg(new PgCluster());
  pg->bindir_ = FindBinDir();
  if (pg->bindir_.empty()) {
    return absl::FailedPreconditionError(
        "PostgreSQL server binaries not found (install postgresql-15 or set ECOMSTREAM_PG_BINDIR)");
  }
  pg->as_postgres_ = ::geteuid() == 0;
  pg->superuser_ = pg->as_postgres_ ? "postgres" : CurrentUser();
  std::string tmpl = absl::StrCat(TmpRoot(), "/ecomstream-pg-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed for the PostgreSQL cluster");
  pg->dir_ = tmpl;
  if (pg->as_postgres_) {
    struct passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) return absl::FailedPreconditionError("running as root but there is no `postgres` user");
    if (::chown(pg->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError("chown of cluster dir failed");
  }
  ::chmod(pg->dir_.c_str(), 0700);
  const std::string data = pg->dir_ + "/data";
  // initdb costs a second of CPU; a copy of the run's fresh initdb output a tenth of that.
  const std::string initdb_copy = InitdbCopyOfTheRun(pg->bindir_);
  absl::Status status =
      initdb_copy.empty()
          ? pg->RunAsOwner({pg->Bin("initdb"), "-D", data, "-A", "trust", "-U", pg->superuser_, "-E", "UTF8",
                            "--locale=C", "--no-sync"})
          : pg->RunAsOwner({"cp", "-a", initdb_copy, data});
  if (!status.ok()) return status;
  if (options.keep_initdb_copy) {
    status = pg->RunAsOwner({"cp", "-a", data, pg->dir_ + "/initdb"});
    if (!status.ok()) return status;
  }
  {
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    // No autovacuum: tests are over before it would matter, and its workers visiting every
    // test's database cost CPU the tests need.
    conf << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nautovacuum = off\n"
         << "max_connections = 300\nshared_buffers = 128MB\n"
         << "unix_socket_directories = '" << pg->dir_ << "'\nlisten_addresses = '127.0.0.1'\n";
  }
  // PostgreSQL cannot listen on port 0: take a reserved free port, and another one if something
  // outside the tests bound it in between.
  for (int attempt = 0;; ++attempt) {
    pg->port_ = FreePort();
    status = pg->Restart();
    if (status.ok() || attempt == 4) break;
    auto log = ReadFileToString(pg->dir_ + "/server.log");
    if (!log.ok() || !absl::StrContains(*log, "could not bind")) break;
  }
  if (!status.ok()) return status;
  status = pg->ReadServerVersion();
  if (!status.ok()) return status;
  return pg;
}

absl::Status PgCluster::ReadServerVersion() {
  auto answer = Psql("postgres", "SHOW server_version_num");
  if (!answer.ok()) return answer.status();
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*answer), &server_version_)) {
    return absl::InternalError(absl::StrCat("unexpected server_version_num: ", *answer));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Attach(const std::string& info_path) {
  auto text = ReadFileToString(info_path);
  if (!text.ok()) return text.status();
  std::map<std::string, std::string> fields = InfoFields(*text);
  std::unique_ptr<PgCluster> pg(new PgCluster());
  pg->dir_ = fields["dir"];
  pg->bindir_ = fields["bindir"];
  pg->superuser_ = fields["superuser"];
  pg->as_postgres_ = fields["as_postgres"] == "1";
  if (pg->dir_.empty() || pg->bindir_.empty() || pg->superuser_.empty() || !absl::SimpleAtoi(fields["port"], &pg->port_)) {
    return absl::InvalidArgumentError(absl::StrCat(info_path, " is not a cluster description: ", *text));
  }
  pg->owned_ = false;
  pg->running_ = true;
  absl::Status answer = pg->ReadServerVersion();
  if (!answer.ok()) {
    return absl::UnavailableError(absl::StrCat("the cluster of ", info_path, " does not answer: ", answer.message()));
  }
  return pg;
}

absl::Status PgCluster::WriteInfo(const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  out << "dir=" << dir_ << "\nport=" << port_ << "\nsuperuser=" << superuser_ << "\nbindir=" << bindir_
      << "\nas_postgres=" << (as_postgres_ ? 1 : 0) << "\n";
  if (::access((dir_ + "/initdb/PG_VERSION").c_str(), F_OK) == 0) out << "initdb=" << dir_ << "/initdb\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  owned_ = false;
  return absl::OkStatus();
}

absl::Status PgCluster::StopFromInfo(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return absl::OkStatus();  // nothing was started
  std::map<std::string, std::string> fields = InfoFields(*text);
  std::unique_ptr<PgCluster> pg(new PgCluster());
  pg->dir_ = fields["dir"];
  pg->bindir_ = fields["bindir"];
  pg->as_postgres_ = fields["as_postgres"] == "1";
  absl::Status status = absl::OkStatus();
  if (!pg->dir_.empty() && IsExecutable(pg->Bin("pg_ctl"))) {
    // `pg_ctl status` exits 3 when no server runs: then there is nothing to stop. Immediate mode:
    // no shutdown checkpoint writing out every test's database, which is removed next anyway.
    if (pg->RunAsOwner({pg->Bin("pg_ctl"), "-D", pg->dir_ + "/data", "status"}).ok()) {
      status = pg->RunAsOwner({pg->Bin("pg_ctl"), "-D", pg->dir_ + "/data", "-m", "immediate", "-w", "stop"});
    }
    if (status.ok()) RemoveInBackground(pg->dir_);
  }
  pg->dir_.clear();  // the destructor must not remove it again
  if (status.ok()) ::unlink(path.c_str());
  return status;
}

absl::Status PgCluster::Restart() {
  if (!owned_ && running_) {
    return absl::FailedPreconditionError(
        "this is the test run's shared PostgreSQL cluster: a test that restarts PostgreSQL starts its own "
        "(PgCluster::Start(), or ecomstream_test(... OWN_PG_CLUSTER))");
  }
  absl::Status status = RunAsOwner({Bin("pg_ctl"), "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t", "60",
                                    "-o", absl::StrCat("-p ", port_), "start"});
  if (status.ok()) running_ = true;
  return status;
}

absl::Status PgCluster::Stop() {
  if (!owned_) {
    return absl::FailedPreconditionError(
        "this is the test run's shared PostgreSQL cluster: a test that stops PostgreSQL starts its own "
        "(PgCluster::Start(), or ecomstream_test(... OWN_PG_CLUSTER))");
  }
  if (!running_) return absl::OkStatus();
  running_ = false;
  return RunAsOwner({Bin("pg_ctl"), "-D", dir_ + "/data", "-m", "fast", "-w", "stop"});
}

PgCluster::~PgCluster() {
  if (!owned_) return;
  (void)Stop();
  if (!dir_.empty()) RunCommand({"rm", "-rf", dir_});
}

std::string PgCluster::Dsn(absl::string_view dbname) const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " user=", superuser_, " dbname=", dbname);
}

namespace {

using Connection = std::unique_ptr<PGconn, void (*)(PGconn*)>;

absl::StatusOr<Connection> Connect(absl::string_view dsn) {
  Connection connection(PQconnectdb(std::string(dsn).c_str()), PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    return absl::InternalError(absl::StrCat("SQL failed (connect): ", PQerrorMessage(connection.get())));
  }
  PQsetNoticeProcessor(connection.get(), [](void*, const char*) {}, nullptr);
  return connection;
}

// One simple-query message on `connection`, as `psql -c` sends it; the output is that of
// `psql -X -q -A -t`: every row of every result, fields joined by '|', NULL as empty.
absl::StatusOr<std::string> Run(PGconn* connection, absl::string_view sql) {
  if (PQsendQuery(connection, std::string(sql).c_str()) == 0) {
    return absl::InternalError(absl::StrCat("SQL failed (send): ", PQerrorMessage(connection)));
  }
  std::string output;
  std::string error;
  while (PGresult* raw = PQgetResult(connection)) {
    std::unique_ptr<PGresult, void (*)(PGresult*)> result(raw, PQclear);
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_FATAL_ERROR) {
      error = PQresultErrorMessage(raw);
    } else if (status == PGRES_TUPLES_OK) {
      for (int row = 0; row < PQntuples(raw); ++row) {
        for (int field = 0; field < PQnfields(raw); ++field) {
          if (field > 0) output.push_back('|');
          output.append(PQgetvalue(raw, row, field), static_cast<size_t>(PQgetlength(raw, row, field)));
        }
        output.push_back('\n');
      }
    } else if (status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY) {
      error = absl::StrCat("unexpected result ", PQresStatus(status), ": ", PQresultErrorMessage(raw));
    }
  }
  if (!error.empty()) return absl::InternalError(absl::StrCat("SQL failed: ", error));
  return output;
}

// The idle sessions of this process, by DSN: a test runs its SQL in many RunSql/Psql calls, and a
// fresh session each (connect, a backend forked, catalogs loaded, PL/pgSQL functions compiled
// again) cost the server more than most of those statements. A session is lent to one call at a time
// (threads of a test take one each) and kept only while it is outside any transaction, reset
// (DISCARD ALL: settings, temporary tables, prepared statements, session locks) when it comes
// back; one that does not answer when lent again is closed. Never freed: a forked child exiting
// must not end its parent's sessions.
class IdleSessions {
 public:
  static IdleSessions& Get() {
    static IdleSessions* const sessions = new IdleSessions();
    return *sessions;
  }

  absl::StatusOr<Connection> Take(const std::string& dsn) {
    for (;;) {
      Connection connection(nullptr, PQfinish);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = idle_.find(dsn);
        if (it == idle_.end()) break;
        connection.reset(it->second.release());
        idle_.erase(it);
      }
      // An empty query: does the session still answer (a test may have ended it meanwhile)?
      if (Answers(connection.get(), "", PGRES_EMPTY_QUERY)) return connection;
    }
    return Connect(dsn);
  }

  void Give(const std::string& dsn, Connection connection) {
    if (PQstatus(connection.get()) != CONNECTION_OK || PQtransactionStatus(connection.get()) != PQTRANS_IDLE) return;
    // What the statement left in the session (settings, temporary tables, session locks,
    // prepared statements) goes now, as it did when the session ended.
    if (!Answers(connection.get(), "DISCARD ALL", PGRES_COMMAND_OK)) return;
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.emplace(dsn, std::move(connection));
  }

  // Closes the idle sessions whose DSN `matches`; returns how many.
  int Close(const std::function<bool(const std::string& dsn)>& matches) {
    std::vector<Connection> closed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = idle_.begin(); it != idle_.end();) {
        if (matches(it->first)) {
          closed.push_back(std::move(it->second));
          it = idle_.erase(it);
        } else {
          ++it;
        }
      }
    }
    return static_cast<int>(closed.size());
  }

 private:
  static bool Answers(PGconn* connection, const char* sql, ExecStatusType expected) {
    PGresult* result = PQexec(connection, sql);
    const bool ok = PQresultStatus(result) == expected;
    PQclear(result);
    return ok;
  }

  std::mutex mutex_;
  std::multimap<std::string, Connection> idle_;
};

}  // namespace

absl::StatusOr<std::string> RunSql(absl::string_view dsn, absl::string_view sql) {
  // Through libpq in this process: a psql child per statement cost tens of milliseconds, and
  // tests run many; a session per statement cost the server more than most statements do.
  const std::string key(dsn);
  auto connection = IdleSessions::Get().Take(key);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<std::string> output = Run(connection->get(), sql);
  IdleSessions::Get().Give(key, *std::move(connection));
  // DROP/ALTER/copy of a database refuses while anyone is connected to it: this process's idle
  // sessions must not be that anyone. The statement failed as a whole, so it may run again.
  if (!output.ok() && absl::StrContains(output.status().message(), "is being accessed by other users") &&
      IdleSessions::Get().Close([&](const std::string& idle) { return idle != key; }) > 0) {
    return RunSql(dsn, sql);
  }
  return output;
}

absl::StatusOr<std::string> PgCluster::Psql(absl::string_view dbname, absl::string_view sql) const {
  return RunSql(Dsn(dbname), sql);
}

void PgCluster::CloseIdleSessions(absl::string_view dbname) const {
  // Any role's: DSNs as Dsn() and the tests' login DSNs spell them (host, port, user, dbname).
  const std::string port = absl::StrCat(" port=", port_, " ");
  const std::string database = absl::StrCat(" dbname=", dbname);
  IdleSessions::Get().Close([&](const std::string& idle) {
    return absl::StrContains(idle, port) &&
           (absl::EndsWith(idle, database) || absl::StrContains(idle, absl::StrCat(database, " ")));
  });
}

absl::StatusOr<std::string> PgCluster::CreateUniqueDatabase(absl::string_view prefix, absl::string_view clause) {
  // Names carry the pid, but the shared cluster outlives processes and pids are reused: on a
  // name taken by an earlier test, take the next one.
  // FILE_COPY (PostgreSQL 15+) copies the files after a checkpoint; the default (WAL_LOG) reads
  // every page through shared buffers into the WAL, which took twice the server's CPU for our
  // 8 MB databases (mostly system catalogs).
  const std::string strategy = server_version_ >= 150000 ? " STRATEGY FILE_COPY" : "";
  for (int attempt = 0;; ++attempt) {
    const std::string name = absl::StrCat(prefix, "_", ::getpid(), "_", next_db_++);
    auto result = Psql("postgres", absl::StrCat("CREATE DATABASE ", Quoted(name), clause, strategy));
    if (result.ok()) return Dsn(name);
    const absl::string_view message = result.status().message();
    if (absl::StrContains(message, "already exists") && attempt < 100) continue;
    // Copying a template needs it free of connections; a backend of its builder may still be
    // exiting (PostgreSQL waits 5 s itself), and concurrent copies hold it briefly.
    if (absl::StrContains(message, "is being accessed by other users") && attempt < 100) {
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    return result.status();
  }
}

absl::StatusOr<std::string> PgCluster::CreateDatabase(absl::string_view prefix) {
  return CreateUniqueDatabase(prefix, "");
}

absl::Status PgCluster::EnsureTemplate(absl::string_view template_name,
                                       const std::function<absl::Status(const std::string& dsn)>& build) {
  const std::string exists_sql =
      absl::StrCat("SELECT count(*) FROM pg_database WHERE datistemplate AND datname = '", template_name, "'");
  auto exists = Psql("postgres", exists_sql);
  if (!exists.ok()) return exists.status();
  if (absl::StripAsciiWhitespace(*exists) == "1") return absl::OkStatus();
  // One builder per cluster, across processes: a lock file in the cluster's directory.
  FileLock lock(absl::StrCat(dir_, "/template-", template_name, ".lock"));
  if (!lock.ok()) return absl::InternalError(absl::StrCat("cannot lock the template ", template_name, " in ", dir_));
  exists = Psql("postgres", exists_sql);
  if (!exists.ok()) return exists.status();
  if (absl::StripAsciiWhitespace(*exists) == "1") return absl::OkStatus();
  // A half-built one from a builder that died.
  auto dropped = Psql("postgres", absl::StrCat("DROP DATABASE IF EXISTS ", Quoted(template_name), " WITH (FORCE)"));
  if (!dropped.ok()) return dropped.status();
  auto created = Psql("postgres", absl::StrCat("CREATE DATABASE ", Quoted(template_name)));
  if (!created.ok()) return created.status();
  absl::Status built = build(Dsn(template_name));
  if (!built.ok()) return built;
  CloseIdleSessions(template_name);
  // No connections from now on: copying a template requires that nobody is connected to it.
  auto frozen = Psql("postgres", absl::StrCat("ALTER DATABASE ", Quoted(template_name),
                                              " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"));
  return frozen.ok() ? absl::OkStatus() : frozen.status();
}

absl::StatusOr<std::string> PgCluster::CreateDatabaseFromTemplate(
    absl::string_view prefix, absl::string_view template_name,
    const std::function<absl::Status(const std::string& dsn)>& build) {
  absl::Status ready = EnsureTemplate(template_name, build);
  if (!ready.ok()) return ready;
  return CreateUniqueDatabase(prefix, absl::StrCat(" TEMPLATE ", Quoted(template_name)));
}

PgCluster& SharedPgCluster() {
  // A function-local static: destroyed (an own cluster stopped, its directory removed) at exit.
  static std::unique_ptr<PgCluster> cluster = [] {
    const char* info = std::getenv("ECOMSTREAM_TEST_PG");
    if (info != nullptr && *info != '\0') {
      auto attached = PgCluster::Attach(info);
      if (attached.ok()) return std::move(attached).value();
      std::fprintf(stderr, "Starting a PostgreSQL cluster of this test: %s\n", attached.status().ToString().c_str());
    }
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

// PostgreSQL for tests. Under ctest, every test that needs it shares one cluster per run: the
// pg_cluster fixture (tests/CMakeLists.txt) starts it before the first such test, stops it
// after the last, and hands it over in $ECOMSTREAM_TEST_PG (a file naming its directory, port
// and superuser). A test binary run by hand, without that variable, starts its own cluster.
// Either way each test owns its databases:
//
//   PgCluster& pg = SharedPgCluster();
//   std::string dsn = pg.CreateDatabase("writer_test").value();       // empty, private
//   std::string migrated = pg.CreateDatabaseFromTemplate(              // a clone of a template
//       "writer_test", "my_template", [](const std::string& dsn) { return Build(dsn); }).value();
//
// A test that stops, restarts or crashes PostgreSQL starts a cluster of its own with
// PgCluster::Start() (or is an ecomstream_test(... OWN_PG_CLUSTER), whose SharedPgCluster() is
// then private to the test): Stop() and Restart() of the run's shared cluster are refused.
//
// A cluster of its own: initdb + pg_ctl in a fresh temp directory on a free port, as the
// `postgres` user when the test runs as root (initdb refuses root). Trust auth on 127.0.0.1 and a
// Unix socket inside the temp directory; fsync and autovacuum off (tests, not durability).
// Binaries come from $ECOMSTREAM_PG_BINDIR, else /usr/lib/postgresql/<N>/bin.
#ifndef ECOMSTREAM_TESTS_PG_FIXTURE_H_
#define ECOMSTREAM_TESTS_PG_FIXTURE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/testing/ports.h"    // FreePort
#include "tests/testing/process.h"  // RunCommand

namespace ecomstream::testing {

struct StartOptions {
  // Keeps a copy of the fresh initdb output in the cluster's directory: WriteInfo names it, and
  // Start() in a process whose $ECOMSTREAM_TEST_PG or $ECOMSTREAM_TEST_PG_INITDB names that
  // description copies it instead of running initdb (the run's cluster keeps one for the tests
  // that start a cluster of their own).
  bool keep_initdb_copy = false;
};

class PgCluster {
 public:
  // Creates and starts a cluster of this process's own, removed by the destructor.
  // kFailedPrecondition when PostgreSQL is not installed.
  static absl::StatusOr<std::unique_ptr<PgCluster>> Start(StartOptions options = {});
  // The running cluster described by `info_path` (written by WriteInfo); the destructor leaves
  // it running. kNotFound if the file is missing, kUnavailable if the cluster does not answer.
  static absl::StatusOr<std::unique_ptr<PgCluster>> Attach(const std::string& info_path);
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // libpq connection string for `dbname` (superuser).
  std::string Dsn(absl::string_view dbname = "postgres") const;
  // Creates an empty database with a unique name starting with `prefix`; returns its DSN.
  absl::StatusOr<std::string> CreateDatabase(absl::string_view prefix);
  // Creates a database with a unique name starting with `prefix` as a copy of the template
  // database `template_name`; returns its DSN. The first caller in the cluster (across
  // processes) creates the template and runs `build` on its DSN; later callers only copy it.
  absl::StatusOr<std::string> CreateDatabaseFromTemplate(
      absl::string_view prefix, absl::string_view template_name,
      const std::function<absl::Status(const std::string& dsn)>& build);
  // Runs SQL as the superuser in one simple query (libpq, as `psql -c` would); returns the rows as
  // `psql -A -t` prints them: fields joined by '|', one line per row, NULL as empty. The session
  // is RunSql's.
  absl::StatusOr<std::string> Psql(absl::string_view dbname, absl::string_view sql) const;
  // Closes this process's idle RunSql/Psql sessions (any role) to `dbname` of this cluster
  // (before it becomes a template, or when a test needs nobody connected to it).
  void CloseIdleSessions(absl::string_view dbname) const;

  // For fault tests on a cluster of their own: fast shutdown / start again on the same port and
  // data. kFailedPrecondition on an attached (shared) cluster.
  absl::Status Stop();
  absl::Status Restart();

  // Writes what Attach needs to `path`, and stops owning the cluster: the destructor leaves it
  // running, and StopFromInfo stops it and removes its directory.
  absl::Status WriteInfo(const std::string& path);
  // Stops the cluster described by `path` (if it still runs) and removes `path`; its directory is
  // removed by a detached process (this returns before it is gone).
  static absl::Status StopFromInfo(const std::string& path);

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& superuser() const { return superuser_; }
  // True when this object started the cluster (Start), false when it joined one (Attach).
  bool owned() const { return owned_; }

 private:
  PgCluster() = default;
  absl::Status RunAsOwner(const std::vector<std::string>& argv, std::string* output = nullptr) const;
  std::string Bin(absl::string_view tool) const;
  absl::Status EnsureTemplate(absl::string_view template_name,
                              const std::function<absl::Status(const std::string& dsn)>& build);
  absl::StatusOr<std::string> CreateUniqueDatabase(absl::string_view prefix, absl::string_view clause);
  // Sets server_version_ (e.g. 150004) from the running server.
  absl::Status ReadServerVersion();

  std::string dir_;
  std::string bindir_;
  std::string superuser_;
  bool as_postgres_ = false;
  bool running_ = false;
  bool owned_ = true;
  int port_ = 0;
  int server_version_ = 0;
  std::atomic<int> next_db_{0};
};

// The cluster of this test: the run's shared cluster under ctest ($ECOMSTREAM_TEST_PG), else one
// started on first use and stopped at exit. Aborts the binary (not skips) if it cannot start.
PgCluster& SharedPgCluster();

// Runs SQL on `dsn` in one simple query through libpq (as `psql -c` would: every statement of
// it, one transaction unless it says otherwise); returns the rows as `psql -X -q -A -t` prints
// them. An error is the server's message. The session is one this process used before for the
// same `dsn` when one is idle, else a new one: reset with DISCARD ALL after each call (no
// setting, role, temporary table or session lock carries over) and kept only outside any
// transaction. What is checked only at connection (login, CONNECT privilege, settings of the
// database or role) is therefore checked at the first call; a test about those connects itself.
absl::StatusOr<std::string> RunSql(absl::string_view dsn, absl::string_view sql);

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_PG_FIXTURE_H_

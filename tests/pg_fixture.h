// A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a fresh temp directory on a free
// port, as the `postgres` user when the test runs as root (initdb refuses root). Trust auth on
// 127.0.0.1 and a Unix socket inside the temp directory; fsync off (tests, not durability).
//
//   PgCluster& pg = SharedPgCluster();          // one per test binary, stopped at exit
//   std::string dsn = pg.CreateDatabase("writer_test").value();   // each test owns its database
//
// Binaries come from $ECOMSTREAM_PG_BINDIR, else PATH, else /usr/lib/postgresql/<N>/bin.
#ifndef ECOMSTREAM_TESTS_PG_FIXTURE_H_
#define ECOMSTREAM_TESTS_PG_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ecomstream::testing {

class PgCluster {
 public:
  // Creates and starts a cluster. kFailedPrecondition when PostgreSQL is not installed.
  static absl::StatusOr<std::unique_ptr<PgCluster>> Start();
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // libpq connection string for `dbname` (superuser).
  std::string Dsn(absl::string_view dbname = "postgres") const;
  // Creates a database with a unique name starting with `prefix`; returns its DSN.
  absl::StatusOr<std::string> CreateDatabase(absl::string_view prefix);
  // Runs SQL through psql as the superuser; returns stdout (unaligned, tuples only).
  absl::StatusOr<std::string> Psql(absl::string_view dbname, absl::string_view sql) const;

  // For fault tests: fast shutdown / start again on the same port and data.
  absl::Status Stop();
  absl::Status Restart();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& superuser() const { return superuser_; }

 private:
  PgCluster() = default;
  absl::Status RunAsOwner(const std::vector<std::string>& argv, std::string* output = nullptr) const;
  std::string Bin(absl::string_view tool) const;

  std::string dir_;
  std::string bindir_;
  std::string superuser_;
  bool as_postgres_ = false;
  bool running_ = false;
  int port_ = 0;
  int next_db_ = 0;
};

// The binary-wide cluster, started on first use and stopped at exit. Fails the calling test
// (not skips) if PostgreSQL cannot start.
PgCluster& SharedPgCluster();

// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
int FreePort();

// Runs a command, returns its exit code, captures stdout+stderr into *output if given.
int RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr);

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_PG_FIXTURE_H_

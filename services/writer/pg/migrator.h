// migrator: the numbered migrations in sql/ (NNN_name.sql), embedded into the binary at build
// time by embed_sql.cmake so a deployed writer needs no files besides itself, and the Migrator
// that applies those a database lacks, in version order, each in its own transaction, and
// records them in ecomstream.schema_migrations (version, name, SHA-256, time, role). A
// session-level advisory lock serializes writers that start at once: the second waits, then
// finds nothing left to do. Once the schema belongs to ecomstream_owner (sql/004_roles.sql),
// migrations run as that role.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_MIGRATOR_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_MIGRATOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ecomstream::writer {

struct SqlFile {
  const char* name;  // "001_core.sql"
  const char* sql;
};

// Every sql/*.sql file, sorted by name (generated code).
const std::vector<SqlFile>& EmbeddedSqlFiles();

struct Migration {
  int version = 0;        // 1 for 001_core.sql
  std::string name;       // "001_core.sql"
  std::string sql;
  std::string checksum;   // lower-case hex SHA-256 of `sql`
};

// Parses file names NNN_name.sql (NNN >= 1) and returns the migrations sorted by version.
// kInvalidArgument for a name that does not follow the pattern, or two files with one version.
absl::StatusOr<std::vector<Migration>> ParseMigrations(const std::vector<SqlFile>& files);

// ParseMigrations(EmbeddedSqlFiles()).
absl::StatusOr<std::vector<Migration>> EmbeddedMigrations();

struct MigrationReport {
  std::vector<std::string> applied;  // names applied by this run, in order
  int version = 0;                   // the schema's version afterwards
};

class Migrator {
 public:
  Migrator(std::string dsn, std::vector<Migration> migrations);

  // kUnavailable: the database is unreachable (retry). kFailedPrecondition: an applied
  // migration's checksum differs from this binary's (the file was edited after it shipped).
  // kInternal: a migration failed; the message names it and carries the server's error.
  absl::StatusOr<MigrationReport> Apply();
  // Apply(), retried with backoff while the database is unavailable, for up to `patience`
  // (a writer and its database often start together).
  absl::StatusOr<MigrationReport> ApplyWithRetry(absl::Duration patience);

  // The highest version of the embedded migrations (what a serving writer requires).
  int latest_version() const;

 private:
  std::string dsn_;
  std::vector<Migration> migrations_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_MIGRATOR_H_

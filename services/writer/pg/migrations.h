// The numbered migrations in sql/ (NNN_name.sql), embedded into the binary at build time by
// embed_sql.cmake, so a deployed writer needs no files besides itself.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_MIGRATIONS_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_MIGRATIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

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

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_MIGRATIONS_H_

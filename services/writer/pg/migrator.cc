#include "services/writer/pg/migrator.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/sha256.h"
#include "services/writer/pg/pg_connection.h"

namespace ecomstream::writer {
namespace {

// "ecom_mig" as an int64: the advisory lock key every writer's migrator takes.
constexpr char kLock[] = "SELECT pg_advisory_lock(7305805536068200807)";
constexpr char kUnlock[] = "SELECT pg_advisory_unlock(7305805536068200807)";

constexpr char kCreateTracking[] = R"sql(
CREATE SCHEMA IF NOT EXISTS ecomstream;
CREATE TABLE IF NOT EXISTS ecomstream.schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by text NOT NULL DEFAULT current_user
))sql";

constexpr char kApplied[] = "SELECT version, name, checksum FROM ecomstream.schema_migrations ORDER BY version";

// True once 004_roles.sql handed the schema to ecomstream_owner and this login may act as it.
constexpr char kActAsOwner[] = R"sql(
SELECT EXISTS (
  SELECT 1 FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
  WHERE n.nspname = 'ecomstream' AND r.rolname = 'ecomstream_owner'
    AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')))sql";

constexpr char kRecord[] = "INSERT INTO ecomstream.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";

}  // namespace

absl::StatusOr<std::vector<Migration>> ParseMigrations(const std::vector<SqlFile>& files) {
  std::vector<Migration> migrations;
  for (const SqlFile& file : files) {
    const absl::string_view name = file.name;
    const size_t underscore = name.find('_');
    int version = 0;
    if (underscore == absl::string_view::npos || underscore == 0 || !absl::EndsWith(name, ".sql") ||
        !std::all_of(name.begin(), name.begin() + underscore, absl::ascii_isdigit) ||
        !absl::SimpleAtoi(name.substr(0, underscore), &version) || version < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration file '", name, "' is not named NNN_description.sql with NNN >= 1"));
    }
    migrations.push_back(Migration{version, std::string(name), file.sql, Sha256Hex(file.sql)});
  }
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version == migrations[i - 1].version) {
      return absl::InvalidArgumentError(absl::StrCat("migrations '", migrations[i - 1].name, "' and '",
                                                     migrations[i].name, "' share version ",
                                                     migrations[i].version));
    }
  }
  return migrations;
}

absl::StatusOr<std::vector<Migration>> EmbeddedMigrations() { return ParseMigrations(EmbeddedSqlFiles()); }

Migrator::Migrator(std::string dsn, std::vector<Migration> migrations)
    : dsn_(std::move(dsn)), migrations_(std::move(migrations)) {}

int Migrator::latest_version() const { return migrations_.empty() ? 0 : migrations_.back().version; }

absl::StatusOr<MigrationReport> Migrator::Apply() {
  auto connection = PgConnection::Open(dsn_);
  if (!connection.ok()) return connection.status();
  PgConnection& db = **connection;
  MigrationReport report;
  const Migration* current = nullptr;
  try {
    pqxx::nontransaction session(db);
    session.exec(kLock);
    session.exec(kCreateTracking);
    std::map<int, std::pair<std::string, std::string>> applied;
    for (const pqxx::row& row : session.exec(kApplied)) {
      applied[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
    }
    session.commit();
    for (const Migration& migration : migrations_) {
      report.version = std::max(report.version, migration.version);
      const auto found = applied.find(migration.version);
      if (found != applied.end()) {
        if (found->second.second != migration.checksum) {
          return absl::FailedPreconditionError(absl::StrCat(
              "migration ", migration.name, " differs from the one applied as ", found->second.first,
              " (checksum ", found->second.second.substr(0, 12), " vs ", migration.checksum.substr(0, 12),
              "); applied migrations must never change - add a new one"));
        }
        continue;
      }
      current = &migration;
      pqxx::work txn(db);
      if (txn.exec1(kActAsOwner)[0].as<bool>()) txn.exec("SET LOCAL ROLE ecomstream_owner");
      txn.exec(migration.sql);
      txn.exec_params(kRecord, migration.version, migration.name, migration.checksum);
      txn.commit();
      report.applied.push_back(migration.name);
      current = nullptr;
    }
    if (!applied.empty()) report.version = std::max(report.version, applied.rbegin()->first);
    pqxx::nontransaction unlock(db);
    unlock.exec(kUnlock);
  } catch (const std::exception& e) {
    absl::Status status = StatusFromPgException(e);
    if (current == nullptr || status.code() == absl::StatusCode::kUnavailable) return status;
    return absl::InternalError(absl::StrCat("migration ", current->name, " failed: ", status.message()));
  }
  return report;
}

absl::StatusOr<MigrationReport> Migrator::ApplyWithRetry(absl::Duration patience) {
  const absl::Time deadline = absl::Now() + patience;
  absl::Duration backoff = absl::Milliseconds(200);
  while (true) {
    absl::StatusOr<MigrationReport> report = Apply();
    if (report.ok() || report.status().code() != absl::StatusCode::kUnavailable || absl::Now() + backoff > deadline) {
      return report;
    }
    LOG_INFO("Database not reachable yet; retrying migrations") << Kv("error", report.status().ToString())
                                                               << Kv("retry_in", absl::FormatDuration(backoff));
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

}  // namespace ecomstream::writer

// Helpers for the writer's PostgreSQL tests: a migrated database per test, login roles that hold
// only ecomstream_writer / ecomstream_analytics, and builders for events, dead letters and
// batches. Each test owns its database (tests/pg_fixture.h).
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_TESTING_WRITER_TESTING_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_TESTING_WRITER_TESTING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/metrics.h"
#include "common/tracer.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/writer/pg/file_ledger.h"
#include "services/writer/pg/pg_pool.h"
#include "services/writer/pg/pg_sink.h"
#include "services/writer/pg/writer_metrics.h"
#include "tests/pg_fixture.h"

namespace ecomstream::writer::testing {

// A new database with every embedded migration applied by the cluster's superuser (its owner): a
// copy of a template database the first call in the cluster migrates. Returns the superuser DSN
// ("" and a test failure on error).
std::string CreateMigratedDatabase(absl::string_view prefix);
// The database name in a fixture DSN ("... dbname=NAME").
std::string DatabaseName(const std::string& dsn);
// A DSN for a new login role, unique to the database, that is a member of `group_role` only.
std::string LoginDsn(const std::string& owner_dsn, absl::string_view group_role);
// Runs `sql` as the superuser on the DSN's database; the test fails if psql does.
std::string Sql(const std::string& dsn, absl::string_view sql);
// Runs `sql` through psql connected with `dsn` (any role); the error carries psql's output.
absl::StatusOr<std::string> SqlAs(const std::string& dsn, absl::string_view sql);
// The highest embedded migration version.
int LatestSchemaVersion();

// "sha256:" + the SHA-256 of `seed`.
std::string FileIdFor(absl::string_view seed);
// A v3 purchase event with everything set, derived from `n` (event id, user, times, money).
v1::Event MakeEvent(uint64_t n);
// A ClaimFileRequest for the file named `name` (file_id = FileIdFor(name)).
v1::ClaimFileRequest MakeClaimRequest(absl::string_view name, absl::string_view claimant, int64_t lease_ms = 60'000);
// A dead letter of `raw` with one or more reasons.
v1::DeadLetter MakeDeadLetter(absl::string_view raw, std::vector<v1::RejectReason> reasons, int64_t line = 2);

// A claimed file for building batches.
struct TestFile {
  std::string file_id;
  std::string name;
  std::string claim_token;
};

// A batch of `file` starting at `first_row`: events take the first rows (source_row set), then
// dead letters (row set), then `duplicate_rows`. reason_counts are filled from dead letters.
v1::Batch MakeBatch(const TestFile& file, int64_t first_row, std::vector<v1::Event> events,
                    std::vector<v1::DeadLetter> dead_letters = {}, int64_t duplicate_rows = 0,
                    bool last_batch = false);

// A migrated database, a pool logged in as a member of ecomstream_writer, and the writer's
// sink and ledger on it.
class WriterDbTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Claims a new file (fails the test unless CLAIMED).
  TestFile Claim(absl::string_view name, absl::string_view claimant = "test-processor", int64_t lease_ms = 60'000);
  // Runs `sql` as the superuser on this test's database.
  std::string Sql(absl::string_view sql) { return testing::Sql(owner_dsn_, sql); }
  // Rows of `event_stats_hourly`, `segment_users` and `segment_totals` that differ from a fresh
  // GROUP BY over events (both ways).
  std::string StatsDrift();

  std::string owner_dsn_;
  std::string writer_dsn_;
  metrics::Registry registry_;
  std::unique_ptr<tracing::Tracer> tracer_ = tracing::Tracer::Disabled();
  std::unique_ptr<WriterMetrics> metrics_;
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<PgSink> sink_;
  std::unique_ptr<FileLedger> ledger_;
};

}  // namespace ecomstream::writer::testing

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_TESTING_WRITER_TESTING_H_

// Migrations against a real PostgreSQL.
#include "services/writer/pg/migrator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "services/writer/pg/testing/writer_testing.h"
#include "tests/pg_fixture.h"

namespace ecomstream::writer {
namespace {

using ::ecomstream::testing::FreePort;
using ::ecomstream::testing::SharedPgCluster;
using ::testing::HasSubstr;
using testing::Sql;

std::vector<Migration> Embedded() {
  auto migrations = EmbeddedMigrations();
  EXPECT_TRUE(migrations.ok()) << migrations.status();
  return migrations.ok() ? *migrations : std::vector<Migration>{};
}

std::string NewDatabase(absl::string_view prefix) {
  auto dsn = SharedPgCluster().CreateDatabase(prefix);
  EXPECT_TRUE(dsn.ok()) << dsn.status();
  return dsn.ok() ? *dsn : "";
}

TEST(MigratorTest, AppliesEveryMigrationOnceAndRecordsIt) {
  const std::string dsn = NewDatabase("migrate_once");
  Migrator migrator(dsn, Embedded());
  auto first = migrator.Apply();
  ASSERT_TRUE(first.ok()) << first.status();
  // Every embedded file, in version order (the numbers may have gaps).
  std::vector<std::string> names;
  std::string recorded;
  for (const Migration& migration : Embedded()) {
    names.push_back(migration.name);
    absl::StrAppend(&recorded, recorded.empty() ? "" : ",", migration.version, ":", migration.name, ":64");
  }
  const int latest = Embedded().back().version;
  ASSERT_THAT(names, ::testing::IsSupersetOf({"001_core.sql", "002_event_stats.sql", "003_views.sql", "004_roles.sql",
                                              "005_writer_grants.sql", "006_writer_event_stats.sql", "007_cheap_trace_id_check.sql",
                                              "010_segment_users.sql", "011_health_retention.sql", "020_redrive.sql", "021_quality_views_by_source.sql",
                                              "022_event_sources.sql", "023_cheaper_aggregate_upkeep.sql",
                                              "024_generic_aggregate_plans.sql"}));
  EXPECT_EQ(first->applied, names);
  EXPECT_EQ(first->version, latest);
  auto second = migrator.Apply();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->version, latest);
  EXPECT_EQ(Sql(dsn, "SELECT string_agg(version || ':' || name || ':' || length(checksum), ',' ORDER BY version) "
                     "FROM ecomstream.schema_migrations"),
            recorded);
  // Every table is the owner's: the core six, segment_users and pipeline_settings at least.
  EXPECT_EQ(Sql(dsn, "SELECT count(*) FILTER (WHERE tableowner <> 'ecomstream_owner') || '|' || "
                     "count(*) FILTER (WHERE tablename IN ('segment_users', 'pipeline_settings')) "
                     "FROM pg_tables WHERE schemaname = 'ecomstream'"),
            "0|2");
}

TEST(MigratorTest, TwoWritersMigratingAtOnceBothSucceedAndApplyEachFileOnce) {
  const std::string dsn = NewDatabase("migrate_race");
  absl::StatusOr<MigrationReport> reports[2];
  std::thread a([&] { reports[0] = Migrator(dsn, Embedded()).Apply(); });
  std::thread b([&] { reports[1] = Migrator(dsn, Embedded()).Apply(); });
  a.join();
  b.join();
  ASSERT_TRUE(reports[0].ok()) << reports[0].status();
  ASSERT_TRUE(reports[1].ok()) << reports[1].status();
  EXPECT_EQ(reports[0]->applied.size() + reports[1]->applied.size(), Embedded().size());
  EXPECT_EQ(Sql(dsn, "SELECT count(*) FROM ecomstream.schema_migrations"), absl::StrCat(Embedded().size()));
}

TEST(MigratorTest, MigrationFilesAreIdempotentWhenRunAgainByHand) {
  const std::string dsn = NewDatabase("migrate_rerun");
  ASSERT_TRUE(Migrator(dsn, Embedded()).Apply().ok());
  for (const Migration& migration : Embedded()) {
    auto rerun = SharedPgCluster().Psql(testing::DatabaseName(dsn), migration.sql);
    EXPECT_TRUE(rerun.ok()) << migration.name << ": " << rerun.status();
  }
  EXPECT_EQ(Sql(dsn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'event_stats_on_%'"), "3");
}

TEST(MigratorTest, AnEditedAppliedMigrationIsRefused) {
  const std::string dsn = NewDatabase("migrate_edited");
  ASSERT_TRUE(Migrator(dsn, Embedded()).Apply().ok());
  std::vector<Migration> edited = Embedded();
  edited[1].sql += "\n-- sneaky edit\n";
  edited[1].checksum = std::string(64, 'a');
  auto report = Migrator(dsn, edited).Apply();
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(report.status().message()),
              HasSubstr("migration 002_event_stats.sql differs from the one applied"));
}

TEST(MigratorTest, AFailingMigrationIsNamedAndRolledBack) {
  const std::string dsn = NewDatabase("migrate_broken");
  std::vector<Migration> migrations = Embedded();
  migrations.push_back(Migration{900, "900_broken.sql",
                                 "CREATE TABLE ecomstream.half_done (id int); SELECT * FROM no_such_table;", "x"});
  auto report = Migrator(dsn, migrations).Apply();
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("migration 900_broken.sql failed"));
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("no_such_table"));
  EXPECT_EQ(Sql(dsn, "SELECT max(version) FROM ecomstream.schema_migrations"), absl::StrCat(Embedded().back().version));
  EXPECT_EQ(Sql(dsn, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'"), "0");
}

TEST(MigratorTest, LaterMigrationsRunAsTheOwnerRole) {
  const std::string dsn = NewDatabase("migrate_owner");
  std::vector<Migration> migrations = Embedded();
  migrations.push_back(Migration{900, "900_more.sql", "CREATE TABLE ecomstream.later (id int)", "y"});
  ASSERT_TRUE(Migrator(dsn, migrations).Apply().ok());
  EXPECT_EQ(Sql(dsn, "SELECT tableowner FROM pg_tables WHERE tablename = 'later'"), "ecomstream_owner");
}

TEST(MigratorTest, TraceIdMustBeThirtyTwoLowerCaseHexDigitsOrNull) {
  const std::string dsn = NewDatabase("migrate_trace_check");
  ASSERT_TRUE(Migrator(dsn, Embedded()).Apply().ok());
  const auto insert = [&](const std::string& trace_id) {
    return SharedPgCluster()
        .Psql(testing::DatabaseName(dsn),
              absl::StrCat("INSERT INTO ecomstream.event_sources (source_file, trace_id) VALUES ('f.csv', ", trace_id,
                           ")"))
        .status();
  };
  EXPECT_TRUE(insert("'4bf92f3577b34da6a3ce929d0e0e4736'").ok());
  EXPECT_TRUE(insert("NULL").ok());
  for (const char* bad : {"'4bf92f3577b34da6a3ce929d0e0e473'", "'4bf92f3577b34da6a3ce929d0e0e47366'",
                          "'4BF92F3577B34DA6A3CE929D0E0E4736'", "'4bf92f3577b34da6a3ce929d0e0e473g'",
                          "'4bf92f3577b34da6a3ce929d0e0e47\xc3\xa9'" /* 32 bytes, 31 characters */, "''"}) {
    const absl::Status status = insert(bad);
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr("event_sources_trace_id_check")) << bad;
  }
  EXPECT_EQ(Sql(dsn, "SELECT count(*) FROM ecomstream.event_sources"), "2");
}

// Events stored before 022 carried their file name and trace id in every row: after it, each
// distinct pair is one event_sources row, v_events and purchases answer as events did, and the
// aggregates the update triggers keep are untouched.
TEST(MigratorTest, EventSourcesMigrationCarriesTheSourcesOfStoredEvents) {
  const std::string dsn = NewDatabase("migrate_sources");
  std::vector<Migration> before;
  for (const Migration& migration : Embedded()) {
    if (migration.version < 22) before.push_back(migration);
  }
  ASSERT_TRUE(Migrator(dsn, before).Apply().ok());
  // Rows 1-6 as the writer stored them (two files, two traces), then by hand: a file without a
  // trace, a trace without a file, neither, and an empty file name (not NULL).
  Sql(dsn, R"sql(
INSERT INTO ecomstream.events (event_id, user_id, event_type, category, price, quantity, total_amount, event_time,
                               user_segment, schema_version, source_file, trace_id)
SELECT md5('event' || i)::uuid, i, CASE WHEN i % 2 = 0 THEN 'purchase' ELSE 'view' END, 'books', 2.50, 2,
       CASE WHEN i % 2 = 0 THEN 5.00 END, timestamptz '2026-01-01 00:00:00+00' + i * interval '20 minutes',
       'new', 3,
       CASE WHEN i <= 4 THEN 'a.csv' WHEN i <= 6 THEN 'b.csv' WHEN i = 7 THEN 'c.csv' WHEN i = 10 THEN '' END,
       CASE WHEN i <= 2 OR i IN (5, 6) THEN '4bf92f3577b34da6a3ce929d0e0e4736'
            WHEN i <= 4 OR i = 8 THEN '0af7651916cd43dd8448eb211c80319c' END
FROM generate_series(1, 10) AS i)sql");
  constexpr char kFacts[] =
      "SELECT string_agg(event_id || ':' || coalesce(source_file, '~') || ':' || coalesce(trace_id, '~'), ',' "
      "ORDER BY event_id) FROM ecomstream.";
  constexpr char kPurchases[] =
      "SELECT string_agg(event_id || ':' || coalesce(source_file, '~'), ',' ORDER BY event_id) FROM ecomstream.purchases";
  constexpr char kAggregates[] =
      "SELECT (SELECT string_agg(hour || event_type || category || events || quantity || revenue, ',' "
      "ORDER BY hour, event_type) FROM ecomstream.event_stats_hourly) || '/' || "
      "(SELECT string_agg(s::text, ',' ORDER BY s::text) FROM ecomstream.segment_users s)";
  const std::string facts = Sql(dsn, absl::StrCat(kFacts, "events"));
  const std::string purchases = Sql(dsn, kPurchases);
  const std::string aggregates = Sql(dsn, kAggregates);
  ASSERT_THAT(facts, HasSubstr(":a.csv:4bf92f3577b34da6a3ce929d0e0e4736"));
  ASSERT_THAT(purchases, HasSubstr(":b.csv"));

  auto report = Migrator(dsn, Embedded()).Apply();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->version, Embedded().back().version);
  EXPECT_EQ(Sql(dsn, absl::StrCat(kFacts, "v_events")), facts);
  EXPECT_EQ(Sql(dsn, kPurchases), purchases);
  EXPECT_EQ(Sql(dsn, kAggregates), aggregates);
  // One row per distinct (file, trace) pair; the row with neither has no source.
  EXPECT_EQ(Sql(dsn, "SELECT string_agg(coalesce(source_file, '~') || ':' || coalesce(left(trace_id, 4), '~'), ',' "
                     "ORDER BY source_file NULLS LAST, trace_id) FROM ecomstream.event_sources"),
            ":~,a.csv:0af7,a.csv:4bf9,b.csv:4bf9,c.csv:~,~:0af7");
  EXPECT_EQ(Sql(dsn, "SELECT count(*) FILTER (WHERE source_id IS NULL), count(DISTINCT source_id), "
                     "count(*) FILTER (WHERE source_file IS NOT NULL OR trace_id IS NOT NULL) FROM ecomstream.events"),
            "1|6|0");
  // The update triggers run again after the carry.
  EXPECT_EQ(Sql(dsn, "SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger "
                     "WHERE tgrelid = 'ecomstream.events'::regclass AND tgname LIKE '%on_update'"),
            "event_stats_on_update:O,segment_users_on_update:O");
  // Run again (by hand), it finds nothing left to carry.
  for (const Migration& migration : Embedded()) {
    if (migration.version == 22) ASSERT_TRUE(SharedPgCluster().Psql(testing::DatabaseName(dsn), migration.sql).ok());
  }
  EXPECT_EQ(Sql(dsn, "SELECT count(*) FROM ecomstream.event_sources"), "6");
  EXPECT_EQ(Sql(dsn, absl::StrCat(kFacts, "v_events")), facts);
}

TEST(MigratorTest, UnreachableDatabaseIsUnavailable) {
  auto report = Migrator(absl::StrCat("host=127.0.0.1 port=", FreePort(), " dbname=x connect_timeout=2"), Embedded())
                    .Apply();
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable) << report.status();
}

TEST(MigratorTest, GarbageDsnIsUnavailableNotACrash) {
  auto report = Migrator("host='unterminated", Embedded()).Apply();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable) << report.status();
}

}  // namespace
}  // namespace ecomstream::writer

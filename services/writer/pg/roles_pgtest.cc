// The roles of sql/004_roles.sql: the writer can upsert and nothing more; analytics can read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/writer/pg/testing/writer_testing.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;
using testing::LoginDsn;
using testing::SqlAs;
using testing::TestFile;

class RolesTest : public testing::WriterDbTest {
 protected:
  void ExpectDenied(const std::string& dsn, absl::string_view sql, absl::string_view error = "permission denied") {
    auto result = SqlAs(dsn, sql);
    EXPECT_FALSE(result.ok()) << sql << " succeeded";
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(std::string(error))) << sql;
  }
};

TEST_F(RolesTest, WriterRoleCannotDeleteTruncateOrChangeTheSchema) {
  const TestFile file = Claim("roles.csv");
  ASSERT_TRUE(sink_->Write(testing::MakeBatch(file, 1, {testing::MakeEvent(1)})).ok());
  ExpectDenied(writer_dsn_, "DELETE FROM ecomstream.events");
  ExpectDenied(writer_dsn_, "TRUNCATE ecomstream.events");
  ExpectDenied(writer_dsn_, "DELETE FROM ecomstream.dead_letter_events");
  ExpectDenied(writer_dsn_, "TRUNCATE ecomstream.ingest_batches");
  ExpectDenied(writer_dsn_, "DELETE FROM ecomstream.ingest_files");
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.event_stats_hourly SET events = 0");
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.events SET ingested_at = now(), event_id = gen_random_uuid()");
  // Redrive may update a dead letter's reasons and marks, never its stored bytes or origin.
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.dead_letter_events SET raw = 'x'");
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.dead_letter_events SET file_id = 'x', row_number = 0");
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.ingest_batches SET inserted = 0");
  // An event's source is written once per batch into event_sources; the retired columns of
  // events are closed to the writer, and a recorded source cannot be read, changed or removed.
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.events SET source_file = 'x'");
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.events SET trace_id = NULL");
  ExpectDenied(writer_dsn_,
               "INSERT INTO ecomstream.events (event_id, user_id, event_type, event_time, schema_version, source_file) "
               "VALUES (gen_random_uuid(), 1, 'view', now(), 3, 'x.csv')");
  ExpectDenied(writer_dsn_, "SELECT source_file FROM ecomstream.event_sources");
  ExpectDenied(writer_dsn_, "UPDATE ecomstream.event_sources SET source_file = 'x'");
  ExpectDenied(writer_dsn_, "DELETE FROM ecomstream.event_sources");
  ExpectDenied(writer_dsn_, "INSERT INTO ecomstream.schema_migrations VALUES (99, 'x', 'y')");
  ExpectDenied(writer_dsn_, "CREATE TABLE ecomstream.evil (id int)");
  ExpectDenied(writer_dsn_, "DROP TABLE ecomstream.events", "must be owner");
  ExpectDenied(writer_dsn_, "ALTER TABLE ecomstream.events DROP CONSTRAINT events_price_check", "must be owner");
  ExpectDenied(writer_dsn_, "DROP TRIGGER event_stats_on_insert ON ecomstream.events", "must be owner");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "1");
  EXPECT_EQ(Sql("SELECT source_file FROM ecomstream.v_events"), "roles.csv");
}

TEST_F(RolesTest, WriterRoleHoldsNoTableWidePrivilegeBeyondTheLedgers) {
  EXPECT_EQ(Sql("SELECT count(*) FROM information_schema.table_privileges WHERE grantee = 'ecomstream_writer' "
                "AND privilege_type IN ('DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')"),
            "0");
  EXPECT_EQ(Sql("SELECT string_agg(table_name || ':' || privilege_type, ',' ORDER BY table_name, privilege_type) "
                "FROM information_schema.table_privileges WHERE grantee = 'ecomstream_writer'"),
            // dead_letter_events: redrive lists the stored dead letters (sql/020_redrive.sql).
            "dead_letter_events:SELECT,ingest_batches:INSERT,ingest_batches:SELECT,ingest_files:SELECT");
  // Events: no UPDATE of the key or of ingested_at's default path beyond what the upsert sets.
  EXPECT_EQ(Sql("SELECT count(*) FROM information_schema.column_privileges WHERE grantee = 'ecomstream_writer' "
                "AND table_name = 'events' AND privilege_type = 'UPDATE' AND column_name = 'event_id'"),
            "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM information_schema.column_privileges WHERE grantee = 'ecomstream_writer' "
                "AND table_name = 'event_stats_hourly'"),
            "0");
}

TEST_F(RolesTest, AnalyticsRoleReadsEverythingAndWritesNothing) {
  const std::string analytics = LoginDsn(owner_dsn_, "ecomstream_analytics");
  for (const char* relation : {"events", "dead_letter_events", "ingest_files", "ingest_batches", "event_stats_hourly",
                               "event_sources", "v_events", "purchases", "v_hourly_event_summary", "v_category_performance",
                               "v_user_segment_analysis", "v_data_quality_dashboard", "v_pipeline_latency"}) {
    auto rows = SqlAs(analytics, absl::StrCat("SELECT count(*) FROM ecomstream.", relation));
    EXPECT_TRUE(rows.ok()) << relation << ": " << rows.status();
  }
  ExpectDenied(analytics, "INSERT INTO ecomstream.ingest_files (file_id) VALUES ('x')");
  ExpectDenied(analytics, "DELETE FROM ecomstream.events");
  ExpectDenied(analytics, "INSERT INTO ecomstream.event_sources (source_file) VALUES ('x')");
  ExpectDenied(analytics, "UPDATE ecomstream.event_stats_hourly SET events = 1");
}

TEST_F(RolesTest, ALoginWithoutTheWriterRoleCannotWrite) {
  const std::string nobody = absl::StrCat(testing::DatabaseName(owner_dsn_), "_nobody");
  Sql(absl::StrCat("CREATE ROLE \"", nobody, "\" LOGIN"));
  std::string dsn = owner_dsn_;
  dsn.replace(dsn.find("user="), dsn.find(' ', dsn.find("user=")) - dsn.find("user="), "user=" + nobody);
  ExpectDenied(dsn, "SELECT count(*) FROM ecomstream.events");
}

}  // namespace
}  // namespace ecomstream::writer

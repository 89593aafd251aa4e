// The operations SQL (sql/011_health_retention.sql) against a real PostgreSQL, with ledger rows
// written by the writer's own sink and ledger: v_pipeline_health in each state, the settings
// that hold its thresholds, and apply_retention, including a file re-dropped after expiry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/writer/pg/testing/writer_testing.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;
using testing::MakeBatch;
using testing::MakeClaimRequest;
using testing::MakeDeadLetter;
using testing::MakeEvent;
using testing::TestFile;

constexpr char kVerdict[] = "SELECT verdict || '|' || array_to_string(reasons, ';') FROM ecomstream.v_pipeline_health";

class OperationsTest : public testing::WriterDbTest {
 protected:
  // A batch of `events` new events and `dead` BAD_PRICE dead letters, dropped `latency` ago.
  v1::Ack Write(const TestFile& file, int64_t first_row, int events, int dead, absl::Duration latency,
                bool last = false, uint64_t first_event = 1) {
    std::vector<v1::Event> rows;
    for (int i = 0; i < events; ++i) rows.push_back(MakeEvent(first_event + static_cast<uint64_t>(i)));
    std::vector<v1::DeadLetter> dead_letters;
    for (int i = 0; i < dead; ++i) dead_letters.push_back(MakeDeadLetter("bad,row", {v1::REJECT_REASON_BAD_PRICE}));
    v1::Batch batch = MakeBatch(file, first_row, rows, dead_letters, 0, last);
    batch.set_file_drop_time_us(absl::ToUnixMicros(absl::Now() - latency));
    auto ack = sink_->Write(batch);
    EXPECT_TRUE(ack.ok()) << ack.status();
    return ack.ok() ? *ack : v1::Ack();
  }
};

TEST_F(OperationsTest, NoBatchAndNoUnfinishedFileIsNoData) {
  EXPECT_EQ(Sql(kVerdict), "NO_DATA|no batch committed in the last 15 minutes and no file unfinished");
  EXPECT_EQ(Sql("SELECT batches, rows, dead_letter_rate IS NULL, unfinished_files FROM ecomstream.v_pipeline_health"),
            "0|0|t|0");
}

TEST_F(OperationsTest, CleanRecentBatchesAreHealthyWithTheirFigures) {
  const TestFile file = Claim("clean.csv");
  Write(file, 1, 20, 0, absl::Milliseconds(200), true);
  EXPECT_EQ(Sql(kVerdict), "HEALTHY|");
  EXPECT_EQ(Sql("SELECT batches, rows, dead_lettered, dead_letter_rate, top_reason IS NULL, unfinished_files, "
                "p99_latency_seconds < 5 FROM ecomstream.v_pipeline_health"),
            "1|20|0|0.0000|t|0|t");
}

TEST_F(OperationsTest, ThirtyPercentBadRowsAreDegradedByTheDeadLetterRateAndTheirReason) {
  const TestFile file = Claim("bad.csv");
  Write(file, 1, 7, 3, absl::Milliseconds(200), true);
  EXPECT_EQ(Sql(kVerdict),
            "DEGRADED|dead-letter rate 0.3000 above 0.05;reason bad_price at 0.3000 of rows, above 0.10");
  EXPECT_EQ(Sql("SELECT rows, dead_lettered, top_reason, top_reason_rate FROM ecomstream.v_pipeline_health"),
            "10|3|bad_price|0.3000");
}

TEST_F(OperationsTest, ThresholdsComeFromThePipelineSettingsTable) {
  const TestFile file = Claim("tolerated.csv");
  Write(file, 1, 7, 3, absl::Milliseconds(200), true);
  Sql("UPDATE ecomstream.pipeline_settings SET value = 0.5 WHERE name IN ('max_dead_letter_rate', 'max_reason_rate')");
  EXPECT_EQ(Sql(kVerdict), "HEALTHY|");
  EXPECT_EQ(Sql("SELECT max_dead_letter_rate, max_reason_rate FROM ecomstream.v_pipeline_health"), "0.5|0.5");
  auto unknown = testing::SqlAs(owner_dsn_, "SELECT ecomstream.setting('no_such_setting')");
  EXPECT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().ToString(), HasSubstr("unknown pipeline setting \"no_such_setting\""));
  auto negative = testing::SqlAs(owner_dsn_, "UPDATE ecomstream.pipeline_settings SET value = -1");
  EXPECT_FALSE(negative.ok());
  EXPECT_THAT(negative.status().ToString(), HasSubstr("pipeline_settings_value_check"));
}

TEST_F(OperationsTest, RedriveTransactionsAreLeftOutOfTheVerdictAndTheQualityDashboard) {
  const TestFile file = Claim("clean.csv");
  Write(file, 1, 20, 0, absl::Milliseconds(200), true);
  // A redrive run's transaction in the batch ledger: 10 dead letters read again, 7 loaded, 3 still
  // failing. They were counted once already, with their file.
  Sql("INSERT INTO ecomstream.ingest_batches (file_id, first_row, last_row, file_name, last_batch, rows, inserted, "
      "updated, unchanged, duplicates, dead_lettered, reason_counts, received_at, committed_at, source) VALUES "
      "('redrive:0192d6a0-0000-7000-8000-000000000001', 1, 10, 'redrive', true, 10, 7, 0, 0, 0, 3, "
      "'{\"bad_price\": 3}', now(), now(), 'redrive')");
  EXPECT_EQ(Sql(kVerdict), "HEALTHY|");
  EXPECT_EQ(Sql("SELECT batches, rows, dead_lettered, last_commit_at IS NOT NULL FROM ecomstream.v_pipeline_health"),
            "1|20|0|t");
  EXPECT_EQ(Sql("SELECT sum(files), sum(batches), sum(rows), sum(dead_lettered) FROM ecomstream.v_data_quality_dashboard"),
            "1|1|20|0");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.v_redrive_runs"), "1");
}

TEST_F(OperationsTest, SlowBatchesAreDegradedByTheirP99Latency) {
  const TestFile file = Claim("slow.csv");
  Write(file, 1, 5, 0, absl::Seconds(60), true);
  const std::string verdict = Sql(kVerdict);
  EXPECT_THAT(verdict, HasSubstr("DEGRADED|p99 latency 60.")) << verdict;
  EXPECT_THAT(verdict, HasSubstr(" s above 5 s")) << verdict;
}

TEST_F(OperationsTest, AnUnfinishedFileWithoutCommitsIsStalledNotNoData) {
  const TestFile file = Claim("stuck.csv");
  // Just claimed: work in progress, not stalled yet.
  EXPECT_EQ(Sql(kVerdict), "HEALTHY|");
  Sql("UPDATE ecomstream.ingest_files SET claimed_at = now() - interval '10 minutes'");
  EXPECT_EQ(Sql(kVerdict), "DEGRADED|stalled: 1 unfinished files and no commit for 120 s");
  // A batch of it committed long ago does not count as progress either.
  Write(file, 1, 3, 0, absl::Milliseconds(100));
  Sql("UPDATE ecomstream.ingest_batches SET committed_at = now() - interval '20 minutes'");
  EXPECT_EQ(Sql(kVerdict), "DEGRADED|stalled: 1 unfinished files and no commit for 120 s");
  EXPECT_EQ(Sql("SELECT batches, unfinished_files FROM ecomstream.v_pipeline_health"), "0|1");
}

TEST_F(OperationsTest, BatchesOlderThanTheWindowLeaveNoData) {
  const TestFile file = Claim("old.csv");
  Write(file, 1, 7, 3, absl::Milliseconds(100), true);
  Sql("UPDATE ecomstream.ingest_batches SET committed_at = now() - interval '16 minutes'");
  EXPECT_EQ(Sql(kVerdict), "NO_DATA|no batch committed in the last 15 minutes and no file unfinished");
}

TEST_F(OperationsTest, DashboardsReadOnlyTheirWindowOfBatches) {
  const TestFile file = Claim("dashboards.csv");
  Write(file, 1, 4, 1, absl::Milliseconds(100));
  Write(file, 6, 2, 0, absl::Milliseconds(100), true, 100);
  Sql("UPDATE ecomstream.ingest_batches SET committed_at = now() - interval '169 hours' WHERE first_row = 1");
  EXPECT_EQ(Sql("SELECT sum(batches), sum(rows), sum(dead_lettered) FROM ecomstream.v_data_quality_dashboard"), "1|2|0");
  EXPECT_EQ(Sql("SELECT sum(batches), sum(rows) FROM ecomstream.v_pipeline_latency"), "1|2");
}

class RetentionTest : public OperationsTest {
 protected:
  // Ages every ledger row and dead letter by `days`.
  void Age(int days) {
    Sql(absl::StrCat("UPDATE ecomstream.ingest_batches SET committed_at = committed_at - interval '", days,
                     " days'; UPDATE ecomstream.ingest_files SET committed_at = committed_at - interval '", days,
                     " days', claimed_at = claimed_at - interval '", days,
                     " days'; UPDATE ecomstream.dead_letter_events SET created_at = created_at - interval '", days,
                     " days'"));
  }
  std::string Retention() {
    return Sql("SELECT string_agg(table_name || '=' || deleted, ',') FROM ecomstream.apply_retention()");
  }
  std::string Counts() {
    return Sql("SELECT (SELECT count(*) FROM ecomstream.ingest_files) || '|' || "
               "(SELECT count(*) FROM ecomstream.ingest_batches) || '|' || "
               "(SELECT count(*) FROM ecomstream.dead_letter_events) || '|' || "
               "(SELECT count(*) FROM ecomstream.events)");
  }
};

TEST_F(RetentionTest, NothingYoungerThanItsRetentionIsDeleted) {
  const TestFile file = Claim("young.csv");
  Write(file, 1, 3, 1, absl::Milliseconds(100), true);
  Age(13);
  EXPECT_EQ(Retention(), "ingest_batches=0,dead_letter_events=0,ingest_files=0");
  EXPECT_EQ(Counts(), "1|1|1|3");
}

TEST_F(RetentionTest, ExpiresBatchesThenDeadLettersThenTheFileRowButNeverAnUnfinishedFile) {
  const TestFile done = Claim("done.csv");
  Write(done, 1, 3, 1, absl::Milliseconds(100), true);
  const TestFile unfinished = Claim("unfinished.csv");
  Write(unfinished, 1, 2, 1, absl::Milliseconds(100), false, 50);
  Age(15);  // batches expire (14 days); the unfinished file's batch stays
  EXPECT_EQ(Retention(), "ingest_batches=1,dead_letter_events=0,ingest_files=0");
  EXPECT_EQ(Counts(), "2|1|2|5");
  Age(16);  // dead letters expire (30 days), the unfinished file's stays
  EXPECT_EQ(Retention(), "ingest_batches=0,dead_letter_events=1,ingest_files=0");
  Age(60);  // the committed file's row expires (90 days), nothing of it left
  EXPECT_EQ(Retention(), "ingest_batches=0,dead_letter_events=0,ingest_files=1");
  EXPECT_EQ(Counts(), "1|1|1|5");
  EXPECT_EQ(Sql("SELECT file_name, state, committed_through FROM ecomstream.ingest_files"), "unfinished.csv|claimed|3");
  // Its claimant dies: the next one resumes after the rows committed before retention ran.
  Sql("UPDATE ecomstream.ingest_files SET lease_expires_at = now() - interval '1 second'");
  auto resumed = ledger_->Claim(MakeClaimRequest("unfinished.csv", "other-processor", 60'000));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->outcome(), v1::ClaimFileResponse::OUTCOME_RESUME);
  EXPECT_EQ(resumed->resume_after_row(), 3);
  // The events stay: retention is about the pipeline's bookkeeping, not the data.
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "5");
}

TEST_F(RetentionTest, AFileReDroppedAfterItsBatchesExpiredIsStillAlreadyCommitted) {
  const TestFile file = Claim("again.csv");
  Write(file, 1, 3, 1, absl::Milliseconds(100), true);
  Age(20);
  EXPECT_EQ(Retention(), "ingest_batches=1,dead_letter_events=0,ingest_files=0");
  auto claim = ledger_->Claim(MakeClaimRequest("again.csv", "test-processor"));
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(claim->outcome(), v1::ClaimFileResponse::OUTCOME_ALREADY_COMMITTED);
}

TEST_F(RetentionTest, AFileReDroppedAfterItsLedgerRowExpiredIsReadAgainAsANewFile) {
  const TestFile file = Claim("expired.csv");
  Write(file, 1, 3, 1, absl::Milliseconds(100), true);
  Age(91);
  EXPECT_EQ(Retention(), "ingest_batches=1,dead_letter_events=1,ingest_files=1");
  EXPECT_EQ(Counts(), "0|0|0|3");
  // Claimed as new; its events are stored already (unchanged), its dead letter is stored again.
  const TestFile again = Claim("expired.csv");
  const v1::Ack ack = Write(again, 1, 3, 1, absl::Milliseconds(100), true);
  EXPECT_EQ(ack.inserted(), 0);
  EXPECT_EQ(ack.unchanged(), 3);
  EXPECT_EQ(ack.dead_lettered(), 1);
  EXPECT_FALSE(ack.already_committed());
  EXPECT_EQ(Counts(), "1|1|1|3");
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(RetentionTest, OnlyTheOwnerRunsIt) {
  auto as_writer = testing::SqlAs(writer_dsn_, "SELECT * FROM ecomstream.apply_retention()");
  EXPECT_FALSE(as_writer.ok());
  EXPECT_THAT(as_writer.status().ToString(), HasSubstr("permission denied"));
}

}  // namespace
}  // namespace ecomstream::writer

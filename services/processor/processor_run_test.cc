// The whole processor on temporary directories against the in-process fake writer (real gRPC on
// 127.0.0.1): discovery, claims, batching, backpressure, archive only after the ack, quarantine,
// and the file.process / batch.send spans as a test collector receives them.
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/metrics.h"
#include "common/sha256.h"
#include "common/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/processor.h"
#include "services/processor/testing/fake_writer.h"
#include "services/processor/testing/test_files.h"
#include "tests/e2e/e2e_util.h"
#include "tests/otel/test_collector.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::CollectedSpan;
using ::ecomstream::testing::ListFiles;
using ::ecomstream::testing::ReadFileToString;
using ::ecomstream::testing::TempDir;
using ::ecomstream::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::DropFile;
using testing::FakeWriter;
using testing::ManifestJson;
using testing::V3File;

constexpr absl::Duration kWait = absl::Seconds(20);
constexpr absl::Duration kPoll = absl::Milliseconds(2);

using OtlpSpan = opentelemetry::proto::trace::v1::Span;
using OtlpStatus = opentelemetry::proto::trace::v1::Status;

// The span's context as a sampled traceparent (what the processor propagates).
std::string Traceparent(const CollectedSpan& span) {
  return absl::StrCat("00-", span.trace_id_hex(), "-", span.span_id_hex(), "-01");
}
int64_t IntAttribute(const CollectedSpan& span, absl::string_view key) {
  auto value = span.Attribute(key);
  return value.has_value() && value->has_int_value() ? value->int_value() : -1;
}
std::string StringAttribute(const CollectedSpan& span, absl::string_view key) {
  auto value = span.Attribute(key);
  return value.has_value() ? value->string_value() : "(absent)";
}

class ProcessorRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_.Start();
    options_.input_dir = inbox_;
    options_.archive_dir = archive_;
    options_.quarantine_dir = quarantine_;
    options_.instance_id = "test-host:1:abcd";
    options_.rescan_interval = absl::Milliseconds(100);
    options_.failed_file_retry = absl::Milliseconds(20);
    options_.drain_timeout = absl::Seconds(5);
    options_.job.batch = BatcherOptions{10, 1 << 20, absl::Hours(1)};
    options_.writer.backoff = BackoffOptions{absl::Milliseconds(5), absl::Milliseconds(50), 2.0};
    options_.writer.breaker = CircuitBreakerOptions{3, absl::Milliseconds(200)};
  }
  void TearDown() override {
    StopBackground().IgnoreError();  // cleanup; tests that care check the result themselves
    fake_.Stop();
  }

  Processor& Make() {
    EXPECT_TRUE(options_.Validate().ok()) << options_.Validate();
    processor_ = std::make_unique<Processor>(options_, fake_.NewChannel(), &metrics_, tracer_.get());
    return *processor_;
  }
  // Runs the processor on a thread until StopBackground().
  void StartBackground() {
    Make();
    thread_ = std::thread([this] { result_ = processor_->Run(); });
  }
  absl::Status StopBackground() {
    if (!thread_.joinable()) return result_;
    processor_->Stop();
    thread_.join();
    return result_;
  }
  absl::Status RunOnce() {
    options_.once = true;
    return Make().Run();
  }
  // The processor made next exports its spans to a test collector.
  void TraceToCollector() {
    absl::StatusOr<std::unique_ptr<::ecomstream::testing::TestCollector>> collector =
        ::ecomstream::testing::TestCollector::Start();
    ASSERT_TRUE(collector.ok()) << collector.status();
    collector_ = std::move(*collector);
    absl::StatusOr<std::unique_ptr<tracing::Tracer>> tracer = collector_->NewTracer("ecomstream-processor");
    ASSERT_TRUE(tracer.ok()) << tracer.status();
    tracer_ = std::move(*tracer);
  }
  // Every span named `name` the collector received, after flushing the tracer.
  std::vector<CollectedSpan> Exported(absl::string_view name) {
    EXPECT_TRUE(tracer_->ForceFlush(absl::Seconds(10)).ok());
    std::vector<CollectedSpan> spans;
    for (CollectedSpan& span : collector_->Spans()) {
      if (span.span.name() == name) spans.push_back(std::move(span));
    }
    return spans;
  }
  std::vector<std::pair<int64_t, int64_t>> ReceivedRanges(const std::string& name) {
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (const FakeWriter::Received& r : fake_.received()) {
      if (r.batch.file_name() == name) ranges.emplace_back(r.batch.first_row(), r.batch.last_row());
    }
    return ranges;
  }

  TempDir dir_;
  std::string inbox_ = dir_.Subdir("inbox");
  std::string archive_ = dir_.path() + "/archive";
  std::string quarantine_ = dir_.path() + "/quarantine";
  FakeWriter fake_;
  metrics::Registry registry_;
  ProcessorMetrics metrics_{registry_};
  ProcessorConfig options_;
  std::unique_ptr<::ecomstream::testing::TestCollector> collector_;  // with TraceToCollector
  std::unique_ptr<tracing::Tracer> tracer_;                         // null: the processor's own
  std::unique_ptr<Processor> processor_;
  std::thread thread_;
  absl::Status result_;
};

TEST_F(ProcessorRunTest, AFileIsArchivedOnlyAfterTheAckOfItsLastBatch) {
  const std::string content = V3File(1, 25);
  DropFile(inbox_, "a.csv.manifest.json", ManifestJson("a.csv", content, 25));
  DropFile(inbox_, "a.csv", content);
  fake_.HoldAcks(true);
  StartBackground();
  ASSERT_TRUE(fake_.WaitForReceived(3, kWait));
  const std::vector<FakeWriter::Received> received = fake_.received();
  ASSERT_TRUE(received.back().batch.last_batch());
  // Every batch is out, none acknowledged: the file must still be in the inbox.
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("a.csv", "a.csv.manifest.json"));
  EXPECT_THAT(ListFiles(archive_), IsEmpty());
  fake_.HoldAcks(false);
  ASSERT_TRUE(WaitUntil([&] { return ListFiles(archive_).size() == 2; }, kWait, kPoll));
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv", "a.csv.manifest.json"));
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
  EXPECT_THAT(ReceivedRanges("a.csv"), ElementsAre(std::pair<int64_t, int64_t>{1, 10},
                                                   std::pair<int64_t, int64_t>{11, 20},
                                                   std::pair<int64_t, int64_t>{21, 25}));
  EXPECT_EQ(received[2].batch.total_file_rows(), 25);
  EXPECT_TRUE(StopBackground().ok());
  EXPECT_EQ(metrics_.files_committed.Value(), 1);
  EXPECT_EQ(metrics_.rows_event.Value(), 25);
}

TEST_F(ProcessorRunTest, ArchivedFilesOlderThanTheRetentionGoWhileTheInboxAndQuarantineStay) {
  std::filesystem::create_directories(archive_);
  std::filesystem::create_directories(quarantine_);
  DropFile(archive_, "expired.csv", V3File(1, 2));
  DropFile(quarantine_, "bad.csv", "not a header\n");
  absl::SleepFor(absl::Milliseconds(1100));  // the files above are now older than the retention
  options_.archive_retention = absl::Seconds(1);
  fake_.HoldAcks(true);
  DropFile(inbox_, "a.csv", V3File(1, 5));
  StartBackground();
  ASSERT_TRUE(fake_.WaitForReceived(1, kWait));
  // The first sweep ran at start: the expired file is gone, the unfinished one still waits.
  ASSERT_TRUE(WaitUntil([&] { return ListFiles(archive_).empty(); }, kWait, kPoll));
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("a.csv"));
  EXPECT_THAT(ListFiles(quarantine_), ElementsAre("bad.csv"));
  EXPECT_EQ(metrics_.backlog_files.Value(), 1);
  fake_.HoldAcks(false);
  ASSERT_TRUE(WaitUntil([&] { return ListFiles(archive_).size() == 1; }, kWait, kPoll));
  // Archived now; the next sweep is a minute away.
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv"));
  ASSERT_TRUE(WaitUntil([&] { return metrics_.backlog_files.Value() == 0; }, kWait, kPoll));
  EXPECT_TRUE(StopBackground().ok());
}

TEST_F(ProcessorRunTest, OnceLoadsEveryFilePresentOldestNameFirstAndReturnsWhenAllAreCommitted) {
  DropFile(inbox_, "events-3.csv", V3File(201, 230));
  DropFile(inbox_, "events-1.csv", V3File(1, 12));
  DropFile(inbox_, "events-2.csv", V3File(101, 101));
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_THAT(ListFiles(archive_), ElementsAre("events-1.csv", "events-2.csv", "events-3.csv"));
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
  std::vector<std::string> claimed;
  for (const v1::ClaimFileRequest& claim : fake_.claims()) claimed.push_back(claim.file_name());
  EXPECT_THAT(claimed, ElementsAre("events-1.csv", "events-2.csv", "events-3.csv"));
  EXPECT_EQ(fake_.committed_files(), (std::set<std::string>{"events-1.csv", "events-2.csv", "events-3.csv"}));
  int64_t events = 0;
  for (const FakeWriter::Received& r : fake_.received()) events += r.batch.events_size();
  EXPECT_EQ(events, 12 + 1 + 30);
}

TEST_F(ProcessorRunTest, ClaimFileCarriesTheFingerprintTheInstanceAndTheManifestsTrace) {
  const std::string content = V3File(1, 3);
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  DropFile(inbox_, "a.csv.manifest.json", ManifestJson("a.csv", content, 3, NowMicros(), traceparent));
  DropFile(inbox_, "a.csv", content);
  ASSERT_TRUE(RunOnce().ok());
  ASSERT_EQ(fake_.claims().size(), 1u);
  const v1::ClaimFileRequest claim = fake_.claims()[0];
  EXPECT_EQ(claim.file_id(), "sha256:" + Sha256Hex(content));
  EXPECT_EQ(claim.claimant(), "test-host:1:abcd");
  EXPECT_EQ(claim.expected_rows(), 3);
  EXPECT_EQ(claim.schema_version(), 3);
  EXPECT_EQ(claim.size_bytes(), static_cast<int64_t>(content.size()));
  EXPECT_EQ(claim.lease_ms(), 60000);
  // The file span continues the manifest's trace with a new span id; batches are its children.
  const std::string claim_tp = fake_.claim_traceparents()[0];
  EXPECT_THAT(claim_tp, HasSubstr("4bf92f3577b34da6a3ce929d0e0e4736"));
  EXPECT_NE(claim_tp, traceparent);
  const v1::Batch batch = fake_.received()[0].batch;
  EXPECT_THAT(batch.traceparent(), HasSubstr("4bf92f3577b34da6a3ce929d0e0e4736"));
  EXPECT_NE(batch.traceparent(), claim_tp);
  EXPECT_GT(batch.file_drop_time_us(), 0);
  EXPECT_GE(batch.read_time_us(), batch.file_drop_time_us());
  EXPECT_GE(batch.sent_time_us(), batch.read_time_us());
}

TEST_F(ProcessorRunTest, AnUnknownHeaderQuarantinesTheFileWithItsManifestAndNothingIsClaimed) {
  const std::string content = "event_id,colour\n1,red\n";
  DropFile(inbox_, "odd.csv.manifest.json", ManifestJson("odd.csv", content, 1));
  DropFile(inbox_, "odd.csv", content);
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_THAT(ListFiles(quarantine_), ElementsAre("odd.csv", "odd.csv.manifest.json", "odd.csv.reason"));
  EXPECT_THAT(*ReadFileToString(quarantine_ + "/odd.csv.reason"), HasSubstr("unknown columns: colour"));
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
  EXPECT_THAT(fake_.claims(), IsEmpty());
  EXPECT_EQ(metrics_.files_quarantined.Value(), 1);
}

TEST_F(ProcessorRunTest, ATruncatedFileIsQuarantinedByItsManifestBeforeAnythingIsSent) {
  const std::string content = V3File(1, 50);
  DropFile(inbox_, "cut.csv.manifest.json", ManifestJson("cut.csv", content, 50));
  DropFile(inbox_, "cut.csv", content.substr(0, content.size() / 2));
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_THAT(ListFiles(quarantine_), ElementsAre("cut.csv", "cut.csv.manifest.json", "cut.csv.reason"));
  const std::string reason = *ReadFileToString(quarantine_ + "/cut.csv.reason");
  EXPECT_THAT(reason, HasSubstr("does not match its manifest"));
  EXPECT_THAT(reason, HasSubstr("manifest says 50"));
  EXPECT_THAT(fake_.claims(), IsEmpty());
  EXPECT_THAT(fake_.received(), IsEmpty());
}

TEST_F(ProcessorRunTest, AnAlreadyCommittedFileIsArchivedWithoutSendingIt) {
  v1::ClaimFileResponse committed;
  committed.set_outcome(v1::ClaimFileResponse::OUTCOME_ALREADY_COMMITTED);
  fake_.SetClaimResponse("old.csv", committed);
  DropFile(inbox_, "old.csv", V3File(1, 5));
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_THAT(ListFiles(archive_), ElementsAre("old.csv"));
  EXPECT_THAT(fake_.received(), IsEmpty());
  EXPECT_EQ(metrics_.files_already_committed.Value(), 1);
}

TEST_F(ProcessorRunTest, AFileHeldByAnotherProcessorIsClaimedAgainUntilItIsFree) {
  v1::ClaimFileResponse held;
  held.set_outcome(v1::ClaimFileResponse::OUTCOME_HELD_BY_OTHER);
  held.set_holder("other:2:ffff");
  held.set_lease_expires_us(NowMicros() + 50000);
  fake_.SetClaimResponse("a.csv", held, /*times=*/2);
  DropFile(inbox_, "a.csv", V3File(1, 5));
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_EQ(fake_.claims().size(), 3u);
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv"));
  EXPECT_EQ(metrics_.files_held_by_other.Value(), 2);
  // What was read while each refused claim travelled was dropped: every row went once, with the
  // third claim's token.
  EXPECT_THAT(ReceivedRanges("a.csv"), ElementsAre(std::pair<int64_t, int64_t>{1, 5}));
  EXPECT_EQ(fake_.received()[0].batch.claim_token(), "token-1");
}

TEST_F(ProcessorRunTest, AResumedFileSendsOnlyTheRowsAfterTheResumePoint) {
  v1::ClaimFileResponse resume;
  resume.set_outcome(v1::ClaimFileResponse::OUTCOME_RESUME);
  resume.set_resume_after_row(20);
  resume.set_claim_token("t-2");
  fake_.SetClaimResponse("a.csv", resume);
  DropFile(inbox_, "a.csv", V3File(1, 35));
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_THAT(ReceivedRanges("a.csv"),
              ElementsAre(std::pair<int64_t, int64_t>{21, 30}, std::pair<int64_t, int64_t>{31, 35}));
  EXPECT_EQ(fake_.received()[0].batch.claim_token(), "t-2");
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv"));
}

TEST_F(ProcessorRunTest, TheFileIsReadWhileItsClaimTravelsAndNoBatchLeavesBeforeTheAnswer) {
  fake_.SetClaimDelay(absl::Milliseconds(500));
  DropFile(inbox_, "a.csv", V3File(1, 25));
  ASSERT_TRUE(RunOnce().ok());
  ASSERT_EQ(fake_.claim_answer_times_us().size(), 1u);
  const int64_t answered_us = fake_.claim_answer_times_us()[0];
  const std::vector<FakeWriter::Received> received = fake_.received();
  ASSERT_EQ(received.size(), 3u);
  // The job began reading before the answer; no batch reached the writer before it.
  EXPECT_LT(received[0].batch.read_time_us(), answered_us);
  for (const FakeWriter::Received& r : received) {
    EXPECT_GE(r.received_us, answered_us);
    EXPECT_EQ(r.batch.claim_token(), "token-1");
  }
  EXPECT_THAT(ReceivedRanges("a.csv"), ElementsAre(std::pair<int64_t, int64_t>{1, 10},
                                                   std::pair<int64_t, int64_t>{11, 20},
                                                   std::pair<int64_t, int64_t>{21, 25}));
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv"));
  EXPECT_EQ(metrics_.files_committed.Value(), 1);
}

TEST_F(ProcessorRunTest, AResumeFromRowZeroKeepsWhatWasReadAndSendsItWithTheNewToken) {
  v1::ClaimFileResponse resume;
  resume.set_outcome(v1::ClaimFileResponse::OUTCOME_RESUME);
  resume.set_resume_after_row(0);
  resume.set_claim_token("t-7");
  fake_.SetClaimResponse("a.csv", resume);
  DropFile(inbox_, "a.csv", V3File(1, 25));
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_EQ(fake_.claims().size(), 1u);
  EXPECT_THAT(ReceivedRanges("a.csv"), ElementsAre(std::pair<int64_t, int64_t>{1, 10},
                                                   std::pair<int64_t, int64_t>{11, 20},
                                                   std::pair<int64_t, int64_t>{21, 25}));
  for (const FakeWriter::Received& r : fake_.received()) EXPECT_EQ(r.batch.claim_token(), "t-7");
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv"));
}

TEST_F(ProcessorRunTest, ResumePastTheEndOfTheFileIsRefused) {
  v1::ClaimFileResponse resume;
  resume.set_outcome(v1::ClaimFileResponse::OUTCOME_RESUME);
  resume.set_resume_after_row(99);
  fake_.SetClaimResponse("a.csv", resume);
  DropFile(inbox_, "a.csv", V3File(1, 5));
  options_.once_max_attempts = 2;
  absl::Status status = RunOnce();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("a.csv"));
  EXPECT_THAT(fake_.received(), IsEmpty());
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("a.csv"));
}

TEST_F(ProcessorRunTest, BackpressureKeepsTheReaderWithinTheWindow) {
  DropFile(inbox_, "big.csv", V3File(1, 2000));  // 200 batches of 10 rows
  options_.writer.max_in_flight = 2;
  fake_.HoldAcks(true);
  StartBackground();
  ASSERT_TRUE(fake_.WaitForReceived(2, kWait));
  // With the writer silent, the reader stops: at most the window plus the batch blocked in Send.
  EXPECT_FALSE(fake_.WaitForReceived(3, absl::Milliseconds(300)));
  EXPECT_EQ(processor_->writer_client().stats().in_flight, 2);
  EXPECT_LE(metrics_.batcher.sent.Value(), 3);
  EXPECT_THAT(ListFiles(archive_), IsEmpty());
  fake_.HoldAcks(false);
  ASSERT_TRUE(WaitUntil([&] { return ListFiles(archive_).size() == 1; }, kWait, kPoll));
  EXPECT_LE(fake_.max_unacked(), 2);
  EXPECT_EQ(processor_->writer_client().stats().max_in_flight_seen, 2);
  EXPECT_EQ(fake_.received().size(), 200u);
}

TEST_F(ProcessorRunTest, ADroppedFileIsPickedUpWithinMillisecondsWithoutWaitingForARescan) {
  options_.rescan_interval = absl::Hours(1);
  StartBackground();
  ASSERT_TRUE(WaitUntil([&] { return processor_->Ready(); }, kWait, kPoll));
  const absl::Time dropped = absl::Now();
  DropFile(inbox_, "fresh.csv", V3File(1, 2));
  ASSERT_TRUE(WaitUntil([&] { return !fake_.claims().empty(); }, kWait, absl::Milliseconds(1)));
  EXPECT_LT(absl::Now() - dropped, absl::Milliseconds(500));
  ASSERT_TRUE(WaitUntil([&] { return ListFiles(archive_).size() == 1; }, kWait, kPoll));
  EXPECT_EQ(metrics_.file_discovery_delay_seconds.Count(), 1u);
}

TEST_F(ProcessorRunTest, StopFinishesTheInFlightBatchesBeforeReturning) {
  DropFile(inbox_, "a.csv", V3File(1, 30));
  fake_.HoldAcks(true);
  StartBackground();
  ASSERT_TRUE(fake_.WaitForReceived(3, kWait));
  std::thread release([this] {
    absl::SleepFor(absl::Milliseconds(50));  // Stop() has begun draining by then
    fake_.HoldAcks(false);
  });
  EXPECT_TRUE(StopBackground().ok());
  release.join();
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv"));  // committed during the drain
}

TEST_F(ProcessorRunTest, StopLeavesAFileWhoseAcksDoNotComeInTheInbox) {
  DropFile(inbox_, "a.csv", V3File(1, 30));
  options_.drain_timeout = absl::Milliseconds(100);
  fake_.HoldAcks(true);
  StartBackground();
  ASSERT_TRUE(fake_.WaitForReceived(3, kWait));
  EXPECT_TRUE(StopBackground().ok());
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("a.csv"));
  EXPECT_THAT(ListFiles(archive_), IsEmpty());
}

TEST_F(ProcessorRunTest, AWriterThatIsDownAtFirstIsWaitedForWithBackoff) {
  fake_.SetClaimStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting"));
  DropFile(inbox_, "a.csv", V3File(1, 5));
  options_.once = true;
  Make();
  std::thread run([this] { result_ = processor_->Run(); });
  ASSERT_TRUE(WaitUntil([&] { return fake_.claims().size() >= 3; }, kWait, kPoll));
  EXPECT_THAT(fake_.received(), IsEmpty());  // nothing read ahead of a failed claim is sent
  fake_.SetClaimStatus(grpc::Status::OK);
  run.join();
  EXPECT_TRUE(result_.ok()) << result_;
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv"));
  EXPECT_GE(metrics_.claim_retries.Value(), 3);
  EXPECT_THAT(ReceivedRanges("a.csv"), ElementsAre(std::pair<int64_t, int64_t>{1, 5}));
}

TEST_F(ProcessorRunTest, AFileTheWriterRefusesIsRetriedThenGivenUpAndOnceFails) {
  fake_.RejectFile("bad.csv");
  DropFile(inbox_, "bad.csv", V3File(1, 5));
  DropFile(inbox_, "good.csv", V3File(101, 105));
  options_.once_max_attempts = 2;
  absl::Status status = RunOnce();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("1 file(s) could not be committed: bad.csv"));
  EXPECT_THAT(ListFiles(archive_), ElementsAre("good.csv"));
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("bad.csv"));
  EXPECT_EQ(metrics_.files_failed.Value(), 2);
}

TEST_F(ProcessorRunTest, AHeaderOnlyFileIsCommittedAsOneEmptyBatch) {
  DropFile(inbox_, "empty.csv", testing::V3Header());
  ASSERT_TRUE(RunOnce().ok());
  ASSERT_EQ(fake_.received().size(), 1u);
  const v1::Batch b = fake_.received()[0].batch;
  EXPECT_EQ(b.first_row(), 1);
  EXPECT_EQ(b.last_row(), 0);
  EXPECT_TRUE(b.last_batch());
  EXPECT_EQ(b.total_file_rows(), 0);
  EXPECT_THAT(ListFiles(archive_), ElementsAre("empty.csv"));
}

TEST_F(ProcessorRunTest, RowsAreCountedByOutcomeAndReason) {
  std::string content = V3File(1, 8);
  content += testing::V3Row(2);       // exact duplicate
  content += "x,y\n";                 // wrong column count
  std::string bad_price = testing::V3Row(50);
  bad_price.replace(bad_price.find("19.99"), 5, "-1");
  content += bad_price;
  DropFile(inbox_, "a.csv", content);
  ASSERT_TRUE(RunOnce().ok());
  EXPECT_EQ(metrics_.rows_event.Value(), 8);
  EXPECT_EQ(metrics_.rows_duplicate.Value(), 1);
  EXPECT_EQ(metrics_.rows_dead_letter[v1::REJECT_REASON_WRONG_COLUMN_COUNT]->Value(), 1);
  EXPECT_EQ(metrics_.rows_dead_letter[v1::REJECT_REASON_BAD_PRICE]->Value(), 1);
  EXPECT_EQ(metrics_.acked_inserted.Value(), 8);
  EXPECT_EQ(metrics_.acked_dead_lettered.Value(), 2);
  EXPECT_EQ(metrics_.batches_acked.Value(), 2);
  EXPECT_THAT(registry_.ExportText(),
              HasSubstr("ecomstream_processor_rows_total{outcome=\"dead_letter\",reason=\"bad_price\"} 1"));
}

TEST(ProcessorConfigTest, ValidateNamesTheFirstBadFlag) {
  TempDir dir;
  ProcessorConfig options;
  options.input_dir = dir.path();
  options.archive_dir = dir.path() + "/a";
  options.quarantine_dir = dir.path() + "/q";
  options.instance_id = "x";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  auto expect_invalid = [&](const std::function<void(ProcessorConfig&)>& change, absl::string_view flag) {
    ProcessorConfig o = options;
    change(o);
    const absl::Status status = o.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << flag;
    EXPECT_THAT(status.message(), HasSubstr(flag));
  };
  expect_invalid([](ProcessorConfig& o) { o.input_dir = "/etc/hostname"; },
                 "--input_dir /etc/hostname exists and is not a directory");
  ProcessorConfig missing_inbox = options;
  missing_inbox.input_dir = dir.path() + "/not/yet";  // created by Run
  EXPECT_TRUE(missing_inbox.Validate().ok()) << missing_inbox.Validate();
  expect_invalid([](ProcessorConfig& o) { o.archive_dir = ""; }, "--archive_dir");
  expect_invalid([&](ProcessorConfig& o) { o.quarantine_dir = o.input_dir; }, "--quarantine_dir");
  expect_invalid([](ProcessorConfig& o) { o.job.batch.max_rows = 0; }, "--batch_rows");
  expect_invalid([](ProcessorConfig& o) { o.job.batch.max_bytes = 5 << 20; }, "--batch_bytes");
  expect_invalid([](ProcessorConfig& o) { o.job.csv.max_row_bytes = 1 << 20; }, "--batch_bytes");
  expect_invalid([](ProcessorConfig& o) { o.job.csv.max_row_bytes = 10; }, "--max_row_bytes");
  expect_invalid([](ProcessorConfig& o) { o.writer.max_in_flight = 0; }, "--max_in_flight");
  expect_invalid([](ProcessorConfig& o) { o.rescan_interval = absl::ZeroDuration(); }, "--rescan_interval");
  expect_invalid([](ProcessorConfig& o) { o.archive_retention = absl::Seconds(-1); }, "--archive_retention");
  expect_invalid([](ProcessorConfig& o) { o.job.late_after_us = -1; }, "--late_after");
  expect_invalid([](ProcessorConfig& o) { o.writer_address = "nowhere"; }, "--writer_address");
  expect_invalid([](ProcessorConfig& o) { o.tls.cert = "/etc/hostname"; }, "--tls_key");
  expect_invalid([](ProcessorConfig& o) { o.tls.ca = "/nonexistent.pem"; }, "not readable");
  ProcessorConfig deleting = options;
  deleting.archive_dir = "";
  deleting.delete_after_commit = true;
  EXPECT_TRUE(deleting.Validate().ok());
}

// --- Tracing ---

// One trace per file: file.process continues the manifest's trace (a new root without a
// manifest) and each batch is one batch.send span under it, whose context the batch carries.
TEST_F(ProcessorRunTest, EachFileIsOneFileProcessSpanWithOneBatchSendChildPerBatch) {
  TraceToCollector();
  const std::string manifest_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  // Rows 1..23, row 24 repeats row 3, row 25 is a dead letter: batches 1-10, 11-20, 21-25.
  const std::string a = V3File(1, 23) + testing::V3Row(3) + "garbage\n";
  DropFile(inbox_, "a.csv.manifest.json", ManifestJson("a.csv", a, 25, NowMicros(), manifest_tp));
  DropFile(inbox_, "a.csv", a);
  const std::string b = V3File(101, 112);  // no manifest: batches 1-10, 11-12
  DropFile(inbox_, "b.csv", b);
  ASSERT_TRUE(RunOnce().ok());

  const std::vector<CollectedSpan> files = Exported("file.process");
  const std::vector<CollectedSpan> batches = Exported("batch.send");
  ASSERT_EQ(files.size(), 2u);
  ASSERT_EQ(batches.size(), 5u);
  ASSERT_EQ(collector_->Spans().size(), 7u);  // nothing else
  const CollectedSpan& file_a = StringAttribute(files[0], "file.name") == "a.csv" ? files[0] : files[1];
  const CollectedSpan& file_b = StringAttribute(files[0], "file.name") == "a.csv" ? files[1] : files[0];

  EXPECT_EQ(file_a.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(file_a.parent_span_id_hex(), "00f067aa0ba902b7");
  EXPECT_EQ(file_a.span.kind(), OtlpSpan::SPAN_KIND_CONSUMER);
  EXPECT_EQ(file_a.span.status().code(), OtlpStatus::STATUS_CODE_OK);
  EXPECT_EQ(file_a.ResourceAttribute("service.name"), "ecomstream-processor");
  EXPECT_EQ(StringAttribute(file_a, "file.id"), "sha256:" + Sha256Hex(a));
  EXPECT_EQ(StringAttribute(file_a, "schema_version"), "v3");
  EXPECT_EQ(IntAttribute(file_a, "rows"), 25);
  EXPECT_EQ(IntAttribute(file_a, "events"), 23);
  EXPECT_EQ(IntAttribute(file_a, "dead_letters"), 1);
  EXPECT_EQ(IntAttribute(file_a, "duplicates"), 1);
  EXPECT_EQ(IntAttribute(file_a, "batches"), 3);
  // No manifest: the root of a new trace.
  EXPECT_EQ(file_b.parent_span_id_hex(), "");
  EXPECT_NE(file_b.trace_id_hex(), file_a.trace_id_hex());
  EXPECT_EQ(file_b.span.kind(), OtlpSpan::SPAN_KIND_CONSUMER);
  EXPECT_EQ(file_b.span.status().code(), OtlpStatus::STATUS_CODE_OK);
  EXPECT_EQ(IntAttribute(file_b, "rows"), 12);
  // ClaimFile carried each file.process context, in claim order (a, then b).
  EXPECT_THAT(fake_.claim_traceparents(), ElementsAre(Traceparent(file_a), Traceparent(file_b)));

  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> ranges_by_file;
  std::map<std::string, const CollectedSpan*> batch_by_traceparent;
  for (const CollectedSpan& batch : batches) {
    const CollectedSpan& file = StringAttribute(batch, "file.name") == "a.csv" ? file_a : file_b;
    EXPECT_EQ(batch.trace_id_hex(), file.trace_id_hex());
    EXPECT_EQ(batch.parent_span_id_hex(), file.span_id_hex());
    EXPECT_EQ(batch.span.kind(), OtlpSpan::SPAN_KIND_CLIENT);
    EXPECT_EQ(batch.span.status().code(), OtlpStatus::STATUS_CODE_UNSET);
    EXPECT_EQ(StringAttribute(batch, "file.id"), StringAttribute(file, "file.id"));
    // Inside its file's span: sent after the file was picked up, acked before it was archived.
    EXPECT_GE(batch.span.start_time_unix_nano(), file.span.start_time_unix_nano());
    EXPECT_LE(batch.span.end_time_unix_nano(), file.span.end_time_unix_nano());
    ranges_by_file[StringAttribute(batch, "file.name")].emplace_back(IntAttribute(batch, "batch.first_row"),
                                                                     IntAttribute(batch, "batch.last_row"));
    batch_by_traceparent[Traceparent(batch)] = &batch;
  }
  using Range = std::pair<int64_t, int64_t>;
  EXPECT_THAT(ranges_by_file["a.csv"], ::testing::UnorderedElementsAre(Range{1, 10}, Range{11, 20}, Range{21, 25}));
  EXPECT_THAT(ranges_by_file["b.csv"], ::testing::UnorderedElementsAre(Range{1, 10}, Range{11, 12}));

  // Each batch on the wire carries its own batch.send context (what the writer's batch.write
  // continues), and the counts of its rows.
  const std::vector<FakeWriter::Received> received = fake_.received();
  ASSERT_EQ(received.size(), 5u);
  for (const FakeWriter::Received& r : received) {
    auto it = batch_by_traceparent.find(r.batch.traceparent());
    ASSERT_NE(it, batch_by_traceparent.end()) << r.batch.traceparent();
    const CollectedSpan& span = *it->second;
    EXPECT_EQ(IntAttribute(span, "batch.first_row"), r.batch.first_row());
    EXPECT_EQ(IntAttribute(span, "rows"), r.batch.last_row() - r.batch.first_row() + 1);
    EXPECT_EQ(IntAttribute(span, "events"), r.batch.events_size());
    EXPECT_EQ(IntAttribute(span, "dead_letters"), r.batch.dead_letters_size());
    EXPECT_EQ(IntAttribute(span, "duplicates"), r.batch.duplicate_rows());
    EXPECT_EQ(IntAttribute(span, "rows.inserted"), r.batch.events_size());  // from its ack
  }
  EXPECT_EQ(IntAttribute(*batch_by_traceparent[received[2].batch.traceparent()], "dead_letters"), 1);
  // The one Write stream, opened at start before any batch: no batch's context in its metadata.
  EXPECT_THAT(fake_.write_traceparents(), ElementsAre(""));
}

TEST_F(ProcessorRunTest, AQuarantinedFileIsOneFileProcessSpanWithAnErrorAndNoBatches) {
  TraceToCollector();
  const std::string content = "event_id,colour\n1,red\n";
  DropFile(inbox_, "odd.csv", content);
  ASSERT_TRUE(RunOnce().ok());
  const std::vector<CollectedSpan> files = Exported("file.process");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(Exported("batch.send").size(), 0u);
  EXPECT_EQ(files[0].parent_span_id_hex(), "");
  EXPECT_EQ(files[0].span.status().code(), OtlpStatus::STATUS_CODE_ERROR);
  EXPECT_THAT(files[0].span.status().message(), HasSubstr("quarantined"));
  EXPECT_EQ(StringAttribute(files[0], "file.name"), "odd.csv");
  EXPECT_THAT(fake_.claims(), IsEmpty());
}

// Each attempt at a refused file is its own file.process span in the file's trace, ended with
// the writer's refusal, as is the batch.send of the refused batch.
TEST_F(ProcessorRunTest, EveryAttemptAtARefusedFileEndsItsSpansWithTheRefusal) {
  TraceToCollector();
  fake_.RejectFile("bad.csv");
  options_.once_max_attempts = 3;
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::string content = V3File(1, 3);
  DropFile(inbox_, "bad.csv.manifest.json", ManifestJson("bad.csv", content, 3, NowMicros(), tp));
  DropFile(inbox_, "bad.csv", content);
  EXPECT_TRUE(absl::IsAborted(RunOnce()));
  const std::vector<CollectedSpan> files = Exported("file.process");
  const std::vector<CollectedSpan> batches = Exported("batch.send");
  ASSERT_EQ(files.size(), 3u);
  ASSERT_EQ(batches.size(), 3u);
  std::set<std::string> file_span_ids;
  for (const CollectedSpan& file : files) {
    EXPECT_EQ(file.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
    EXPECT_EQ(file.parent_span_id_hex(), "b7ad6b7169203331");
    EXPECT_EQ(file.span.status().code(), OtlpStatus::STATUS_CODE_ERROR);
    EXPECT_THAT(file.span.status().message(), HasSubstr("INVALID_ARGUMENT"));
    file_span_ids.insert(file.span_id_hex());
  }
  std::set<std::string> batch_parents;
  for (const CollectedSpan& batch : batches) {
    EXPECT_EQ(batch.span.status().code(), OtlpStatus::STATUS_CODE_ERROR);
    batch_parents.insert(batch.parent_span_id_hex());
  }
  EXPECT_EQ(file_span_ids.size(), 3u);
  EXPECT_EQ(batch_parents, file_span_ids);  // one batch per attempt
}

// Stopped with acks outstanding: the file stays in the inbox and its spans end as cancelled
// (before Run returns, so the tracer's flush at exit sends them).
TEST_F(ProcessorRunTest, StopEndsTheSpansOfAFileWhoseAcksDoNotCome) {
  TraceToCollector();
  options_.drain_timeout = absl::Milliseconds(50);
  DropFile(inbox_, "a.csv", V3File(1, 25));
  fake_.HoldAcks(true);
  StartBackground();
  ASSERT_TRUE(fake_.WaitForReceived(3, kWait));
  EXPECT_TRUE(StopBackground().ok());
  const std::vector<CollectedSpan> files = Exported("file.process");
  const std::vector<CollectedSpan> batches = Exported("batch.send");
  ASSERT_EQ(files.size(), 1u);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(files[0].span.status().code(), OtlpStatus::STATUS_CODE_ERROR);
  EXPECT_THAT(files[0].span.status().message(), HasSubstr("CANCELLED"));
  for (const CollectedSpan& batch : batches) {
    EXPECT_EQ(batch.parent_span_id_hex(), files[0].span_id_hex());
    EXPECT_EQ(batch.span.status().code(), OtlpStatus::STATUS_CODE_ERROR);
    EXPECT_THAT(batch.span.status().message(), HasSubstr("CANCELLED"));
  }
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("a.csv"));
}

}  // namespace
}  // namespace ecomstream::processor

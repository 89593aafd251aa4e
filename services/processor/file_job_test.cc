#include "services/processor/file_job.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/testing/test_files.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::TempDir;
using ::testing::ElementsAre;

class CapturingSink : public BatchSink {
 public:
  absl::Status Send(std::unique_ptr<OwnedBatch> batch) override {
    ++sends;
    if (!fail_with.ok()) return fail_with;
    batches.push_back(std::move(batch));
    return absl::OkStatus();
  }
  std::vector<std::unique_ptr<OwnedBatch>> batches;
  absl::Status fail_with;
  int sends = 0;
};

class FileJobTest : public ::testing::Test {
 protected:
  FileFacts Inspect(const std::string& content) {
    testing::DropFile(dir_.path(), "f.csv", content);
    absl::StatusOr<FileFacts> facts = InspectFile(dir_.path(), "f.csv", options_.csv);
    EXPECT_TRUE(facts.ok() && facts->quarantine_reason.empty());
    return *facts;
  }
  absl::StatusOr<FileJobResult> Run(const FileFacts& facts, int64_t resume_after_row = 0,
                                    std::function<bool()> cancelled = nullptr, ProcessorMetrics* metrics = nullptr) {
    const FileClaim claim{"token", resume_after_row, 5,
                          tracing::TraceContext(tracing::NewTraceId(), tracing::NewSpanId(), 1)};
    return RunFileJob(facts, claim, options_, tracer_.get(), &sink_, cancelled, metrics);
  }
  std::vector<std::pair<int64_t, int64_t>> Ranges() const {
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (const auto& b : sink_.batches) ranges.emplace_back(b->batch().first_row(), b->batch().last_row());
    return ranges;
  }

  TempDir dir_;
  FileJobOptions options_{CsvReaderOptions{}, BatcherOptions{10, 1 << 20, absl::Hours(1)}};
  std::unique_ptr<tracing::Tracer> tracer_ = tracing::Tracer::Disabled();
  CapturingSink sink_;  // after tracer_: its batches' spans end first
};

TEST_F(FileJobTest, EveryRowIsSentOnceInContiguousBatchesEndingWithTheLastBatch) {
  std::string content = testing::V3File(1, 20);
  content += testing::V3Row(3);     // row 21: exact duplicate of row 3
  content += "garbage\n";           // row 22: wrong column count
  content += testing::V3Row(23);    // row 23
  const FileFacts facts = Inspect(content);
  absl::StatusOr<FileJobResult> result = Run(facts);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(Ranges(), ElementsAre(std::pair<int64_t, int64_t>{1, 10}, std::pair<int64_t, int64_t>{11, 20},
                                    std::pair<int64_t, int64_t>{21, 23}));
  const v1::Batch& last = sink_.batches.back()->batch();
  EXPECT_TRUE(last.last_batch());
  EXPECT_EQ(last.total_file_rows(), 23);
  EXPECT_EQ(last.duplicate_rows(), 1);
  ASSERT_EQ(last.dead_letters_size(), 1);
  EXPECT_EQ(last.dead_letters(0).row(), 22);
  EXPECT_EQ(last.dead_letters(0).line(), 23);
  EXPECT_EQ(last.claim_token(), "token");
  EXPECT_EQ(last.file_drop_time_us(), 5);
  EXPECT_EQ(last.file_id(), facts.file_id);
  EXPECT_EQ(result->rows, 23);
  EXPECT_EQ(result->batches, 3);
  EXPECT_EQ(result->file_counts.events, 21);
  int64_t accounted = 0;
  for (const auto& b : sink_.batches) {
    accounted += b->batch().events_size() + b->batch().dead_letters_size() + b->batch().duplicate_rows();
  }
  EXPECT_EQ(accounted, 23);
}

TEST_F(FileJobTest, ResumeSendsOnlyLaterRowsButJudgesDuplicatesAgainstTheWholeFile) {
  std::string content = testing::V3File(1, 12);
  content += testing::V3Row(2);  // row 13: exact repeat of row 2 (before the resume point)
  std::string conflicting = testing::V3Row(1);
  conflicting.replace(conflicting.find("19.99"), 5, "29.99");
  content += conflicting;        // row 14: same id as row 1, other content
  const FileFacts facts = Inspect(content);
  ASSERT_TRUE(Run(facts, /*resume_after_row=*/10).ok());
  EXPECT_THAT(Ranges(), ElementsAre(std::pair<int64_t, int64_t>{11, 14}));
  const v1::Batch& b = sink_.batches[0]->batch();
  EXPECT_EQ(b.events_size(), 2);
  EXPECT_EQ(b.duplicate_rows(), 1);
  ASSERT_EQ(b.dead_letters_size(), 1);
  EXPECT_EQ(b.dead_letters(0).row(), 14);
  EXPECT_EQ(b.dead_letters(0).reasons(0), v1::REJECT_REASON_CONFLICTING_DUPLICATE);
  EXPECT_TRUE(b.last_batch());
  EXPECT_EQ(b.total_file_rows(), 14);
}

TEST_F(FileJobTest, EachComponentCountsWhatPassesThroughItAndResumedRowsOnlyOnceRead) {
  std::string content = testing::V3File(1, 12);
  content += testing::V3Row(2);  // row 13: exact duplicate
  content += "x,\"y\"z\n";       // row 14: malformed quoting
  content += testing::V3Row(14);
  const FileFacts facts = Inspect(content);
  metrics::Registry registry;
  ProcessorMetrics metrics(registry);
  ASSERT_TRUE(Run(facts, /*resume_after_row=*/10, nullptr, &metrics).ok());
  // The reader reads the header and every row, those before the resume point included.
  EXPECT_EQ(metrics.csv_reader.received.Value(), 16);
  EXPECT_EQ(metrics.csv_reader.sent.Value(), 16);
  EXPECT_EQ(metrics.csv_reader.failed.Value(), 1);
  // The validator and the batcher count rows 11..15 only: the earlier claimant counted the rest.
  EXPECT_EQ(metrics.row_validator.received.Value(), 5);
  EXPECT_EQ(metrics.row_validator.sent.Value(), 3);
  EXPECT_EQ(metrics.row_validator.dropped.Value(), 1);
  EXPECT_EQ(metrics.row_validator.failed.Value(), 1);
  EXPECT_EQ(metrics.batcher.received.Value(), 5);
  EXPECT_EQ(metrics.batcher.sent.Value(), 1);
  EXPECT_EQ(metrics.rows_event.Value(), 3);
  EXPECT_EQ(metrics.rows_duplicate.Value(), 1);
  EXPECT_EQ(metrics.rows_dead_letter[v1::REJECT_REASON_MALFORMED_QUOTING]->Value(), 1);
}

TEST_F(FileJobTest, ResumeAfterTheLastRowSendsOnlyAnEmptyLastBatch) {
  const FileFacts facts = Inspect(testing::V3File(1, 4));
  ASSERT_TRUE(Run(facts, 4).ok());
  EXPECT_THAT(Ranges(), ElementsAre(std::pair<int64_t, int64_t>{5, 4}));
  EXPECT_TRUE(sink_.batches[0]->batch().last_batch());
}

TEST_F(FileJobTest, ResumeBeyondTheLastRowIsAnErrorAndSendsNothing) {
  const FileFacts facts = Inspect(testing::V3File(1, 4));  // no manifest: the job counts the rows
  ASSERT_EQ(facts.rows, kRowsUnknown);
  absl::StatusOr<FileJobResult> result = Run(facts, 5);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr("resume after row 5 of 4"));
  EXPECT_TRUE(sink_.batches.empty());
}

TEST_F(FileJobTest, HeaderOnlyFileIsOneEmptyLastBatch) {
  const FileFacts facts = Inspect(testing::V3Header());
  ASSERT_TRUE(Run(facts).ok());
  ASSERT_EQ(sink_.batches.size(), 1u);
  const v1::Batch& b = sink_.batches[0]->batch();
  EXPECT_EQ(b.first_row(), 1);
  EXPECT_EQ(b.last_row(), 0);
  EXPECT_TRUE(b.last_batch());
  EXPECT_EQ(b.total_file_rows(), 0);
}

TEST_F(FileJobTest, CancelledJobStopsBetweenBatchesAndNeverSendsTheLastOne) {
  const FileFacts facts = Inspect(testing::V3File(1, 35));
  int checks = 0;
  absl::StatusOr<FileJobResult> result = Run(facts, 0, [&checks] { return ++checks > 2; });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  ASSERT_EQ(sink_.batches.size(), 2u);
  for (const auto& b : sink_.batches) EXPECT_FALSE(b->batch().last_batch());
}

TEST_F(FileJobTest, AFileChangedAfterInspectionIsDataLossAndItsLastBatchIsNotSent) {
  const FileFacts facts = Inspect(testing::V3File(1, 5));
  testing::DropFile(dir_.path(), "f.csv", testing::V3File(1, 6));
  EXPECT_EQ(Run(facts).status().code(), absl::StatusCode::kDataLoss);
  for (const auto& b : sink_.batches) EXPECT_FALSE(b->batch().last_batch());
  testing::DropFile(dir_.path(), "f.csv", "colour\nred\n");
  EXPECT_EQ(Run(facts).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(FileJobTest, TheSinksErrorStopsTheJob) {
  const FileFacts facts = Inspect(testing::V3File(1, 30));
  // Not kCancelled: that is what a cancelled job returns, so it could not tell the two apart.
  sink_.fail_with = absl::UnavailableError("writer down");
  EXPECT_EQ(Run(facts).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sink_.sends, 1);  // the first failed Send ends the job
  EXPECT_TRUE(sink_.batches.empty());
}

}  // namespace
}  // namespace ecomstream::processor

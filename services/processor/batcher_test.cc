#include "services/processor/batcher.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/csv_reader.h"
#include "services/processor/file_job.h"

namespace ecomstream::processor {
namespace {

constexpr int64_t k2024 = 1704067200LL * 1000000;

// Rows of a v1 file: valid purchases with distinct ids, except where a test makes them bad.
std::string V1Row(int i, absl::string_view price = "9.99") {
  return absl::StrCat("018f3a6e-1b2c-7d3e-8f40-", absl::Dec(i, absl::kZeroPad12), ",7,purchase,100001,", price,
                      ",2024-01-01T00:00:00Z\n");
}

class BatcherTest : public ::testing::Test {
 protected:
  // Feeds `body` through reader and validator into `batcher` the way a file job does: a full
  // batch is cut when the next row arrives; the rest is the last batch.
  std::vector<std::unique_ptr<OwnedBatch>> Feed(Batcher& batcher, const std::string& body) {
    text_ = "event_id,user_id,event_type,product_id,price,event_time\n" + body;
    source_ = std::make_unique<StringByteSource>(text_);
    reader_ = std::make_unique<CsvReader>(source_.get(), CsvReaderOptions{});
    CsvRecord record;
    EXPECT_TRUE(*reader_->Next(&record));
    validator_ = std::make_unique<RowValidator>(*SchemaRegistry::Detect(record.fields),
                                                RowValidatorOptions{k2024, 3600000000LL, 3600000000LL});
    std::vector<std::unique_ptr<OwnedBatch>> out;
    int64_t row = 0;
    while (*reader_->Next(&record)) {
      const RowOutcome outcome = validator_->Validate(record, ++row);
      if (batcher.Full()) out.push_back(batcher.Cut(false));
      AddValidatedRow(*validator_, outcome, record.raw.size(), &batcher);
    }
    out.push_back(batcher.Cut(true, row));
    return out;
  }

  FileBatchInfo Info() {
    return FileBatchInfo{"sha256:abc", "events-1.csv", "token-1", trace_, 111, 222};
  }

  tracing::TraceContext trace_{tracing::NewTraceId(), tracing::NewSpanId(), tracing::kTraceFlagSampled};
  // Sampled spans that go nowhere: batches still carry their batch.send span's traceparent.
  std::unique_ptr<tracing::Tracer> tracer_ = std::make_unique<tracing::Tracer>(tracing::TracerOptions(), nullptr);
  std::string text_;
  std::unique_ptr<StringByteSource> source_;
  std::unique_ptr<CsvReader> reader_;
  std::unique_ptr<RowValidator> validator_;
};

TEST_F(BatcherTest, RowBoundCutsContiguousRangesAndFlagsTheLastBatch) {
  Batcher batcher(BatcherOptions{3, 1 << 20, absl::Hours(1)}, Info(), 1, tracer_.get());
  std::string body;
  for (int i = 1; i <= 7; ++i) body += V1Row(i);
  auto batches = Feed(batcher, body);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0]->batch().first_row(), 1);
  EXPECT_EQ(batches[0]->batch().last_row(), 3);
  EXPECT_EQ(batches[0]->batch().events_size(), 3);
  EXPECT_FALSE(batches[0]->batch().last_batch());
  EXPECT_EQ(batches[0]->batch().total_file_rows(), 0);
  EXPECT_EQ(batches[1]->batch().first_row(), 4);
  EXPECT_EQ(batches[1]->batch().last_row(), 6);
  EXPECT_EQ(batches[2]->batch().first_row(), 7);
  EXPECT_EQ(batches[2]->batch().last_row(), 7);
  EXPECT_TRUE(batches[2]->batch().last_batch());
  EXPECT_EQ(batches[2]->batch().total_file_rows(), 7);
}

TEST_F(BatcherTest, EveryBatchCarriesTheFileIdentityAndAChildSpanOfTheFileTrace) {
  Batcher batcher(BatcherOptions{2, 1 << 20, absl::Hours(1)}, Info(), 1, tracer_.get());
  auto batches = Feed(batcher, V1Row(1) + V1Row(2) + V1Row(3));
  ASSERT_EQ(batches.size(), 2u);
  std::vector<std::string> span_ids;
  for (const auto& owned : batches) {
    const v1::Batch& b = owned->batch();
    EXPECT_EQ(b.file_id(), "sha256:abc");
    EXPECT_EQ(b.file_name(), "events-1.csv");
    EXPECT_EQ(b.claim_token(), "token-1");
    EXPECT_EQ(b.file_drop_time_us(), 111);
    EXPECT_EQ(b.read_time_us(), 222);
    absl::StatusOr<tracing::TraceContext> tp = tracing::TraceContext::FromTraceparent(b.traceparent());
    ASSERT_TRUE(tp.ok()) << b.traceparent();
    EXPECT_EQ(tp->trace_id(), trace_.trace_id());
    EXPECT_NE(tp->span_id(), trace_.span_id());
    EXPECT_EQ(b.traceparent(), owned->span.context().ToTraceparent());  // its batch.send span
    span_ids.push_back(tp->span_id().ToHex());
  }
  EXPECT_NE(span_ids[0], span_ids[1]);
}

TEST_F(BatcherTest, ByteBoundCutsOnceTheEstimateReachesTheLimit) {
  // Each event is estimated at its raw bytes (80) plus 160: two rows are 480 bytes, under the
  // 600-byte bound; the third reaches it and closes the batch.
  Batcher batcher(BatcherOptions{1000, 600, absl::Hours(1)}, Info(), 1, tracer_.get());
  std::string body;
  for (int i = 1; i <= 5; ++i) body += V1Row(i);
  ASSERT_EQ(V1Row(1).size(), 81u);
  auto batches = Feed(batcher, body);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0]->rows(), 3);
  EXPECT_EQ(batches[0]->estimated_bytes, 3u * (80 + 160));
  EXPECT_EQ(batches[1]->rows(), 2);
  for (const auto& b : batches) EXPECT_LE(b->batch().ByteSizeLong(), b->estimated_bytes);
}

TEST_F(BatcherTest, AgeBoundCutsABatchOnceItsFirstRowIsOlderThanLinger) {
  int64_t now_us = 0;
  Batcher batcher(BatcherOptions{1000, 1 << 20, absl::Milliseconds(50)}, Info(), 1, tracer_.get(),
                  [&now_us] { return now_us; });
  EXPECT_FALSE(batcher.Full());  // empty never is
  auto batches = Feed(batcher, V1Row(1));
  ASSERT_EQ(batches.size(), 1u);  // only the final cut
  Batcher aging(BatcherOptions{1000, 1 << 20, absl::Milliseconds(50)}, Info(), 1, tracer_.get(),
                [&now_us] { return now_us; });
  now_us = 1000;
  text_ = "event_id,user_id,event_type,product_id,price,event_time\n" + V1Row(1) + V1Row(2);
  StringByteSource source(text_);
  CsvReader reader(&source, CsvReaderOptions{});
  CsvRecord record;
  ASSERT_TRUE(*reader.Next(&record));
  RowValidator validator(*SchemaRegistry::Detect(record.fields), RowValidatorOptions{k2024, 0, 3600000000LL});
  ASSERT_TRUE(*reader.Next(&record));
  AddValidatedRow(validator, validator.Validate(record, 1), record.raw.size(), &aging);
  now_us += 49999;
  EXPECT_FALSE(aging.Full());
  now_us += 1;
  EXPECT_TRUE(aging.Full());
}

TEST_F(BatcherTest, DeadLettersDuplicatesAndReasonCountsLandInTheirBatch) {
  Batcher batcher(BatcherOptions{3, 1 << 20, absl::Hours(1)}, Info(), 1, tracer_.get());
  // Row 2 repeats row 1 exactly; row 3 has a bad price; row 4 is a malformed record.
  auto batches = Feed(batcher, V1Row(1) + V1Row(1) + V1Row(2, "-1") + "x,\"y\"z\n");
  ASSERT_EQ(batches.size(), 2u);
  const v1::Batch& first = batches[0]->batch();
  EXPECT_EQ(first.events_size(), 1);
  EXPECT_EQ(first.duplicate_rows(), 1);
  ASSERT_EQ(first.dead_letters_size(), 1);
  EXPECT_EQ(first.dead_letters(0).row(), 3);
  EXPECT_EQ(first.dead_letters(0).line(), 4);
  ASSERT_EQ(first.reason_counts_size(), 1);
  EXPECT_EQ(first.reason_counts(0).reason(), v1::REJECT_REASON_BAD_PRICE);
  EXPECT_EQ(first.reason_counts(0).count(), 1);
  const v1::Batch& second = batches[1]->batch();
  EXPECT_EQ(second.first_row(), 4);
  ASSERT_EQ(second.reason_counts_size(), 1);
  EXPECT_EQ(second.reason_counts(0).reason(), v1::REJECT_REASON_MALFORMED_QUOTING);
  // rows = events + dead letters + duplicates, per batch.
  for (const auto& b : batches) {
    EXPECT_EQ(b->rows(), b->batch().events_size() + b->batch().dead_letters_size() + b->batch().duplicate_rows());
  }
}

TEST_F(BatcherTest, LateEventsAreCountedInTheBatchThatCarriesThem) {
  Batcher batcher(BatcherOptions{2, 1 << 20, absl::Hours(1)}, Info(), 1, tracer_.get());
  std::string late = V1Row(2);
  late.replace(late.find("2024-01-01T00:00:00Z"), 20, "2023-12-31T22:00:00Z");  // 2h before the reference
  auto batches = Feed(batcher, V1Row(1) + late + V1Row(3));
  ASSERT_EQ(batches.size(), 2u);
  ASSERT_EQ(batches[0]->batch().events_size(), 2);
  EXPECT_TRUE(batches[0]->batch().events(1).late_arrival());
  EXPECT_EQ(batches[0]->counts.late, 1);
  EXPECT_EQ(batches[1]->counts.late, 0);
  // The processor counts a file's late rows from counts.late: it must match the flagged events.
  for (const auto& b : batches) {
    int64_t flagged = 0;
    for (const v1::Event& event : b->batch().events()) flagged += event.late_arrival() ? 1 : 0;
    EXPECT_EQ(b->counts.late, flagged);
  }
}

TEST_F(BatcherTest, EmptyFileIsOneEmptyLastBatch) {
  Batcher batcher(BatcherOptions{}, Info(), 1, tracer_.get());
  auto batches = Feed(batcher, "");
  ASSERT_EQ(batches.size(), 1u);
  const v1::Batch& b = batches[0]->batch();
  EXPECT_EQ(b.first_row(), 1);
  EXPECT_EQ(b.last_row(), 0);
  EXPECT_TRUE(b.last_batch());
  EXPECT_EQ(b.total_file_rows(), 0);
  EXPECT_EQ(batches[0]->rows(), 0);
}

TEST_F(BatcherTest, ResumedFileStartsAfterTheResumeRow) {
  Batcher batcher(BatcherOptions{10, 1 << 20, absl::Hours(1)}, Info(), 101, tracer_.get());
  batcher.AddDuplicate();
  std::unique_ptr<OwnedBatch> last = batcher.Cut(true, 101);
  EXPECT_EQ(last->batch().first_row(), 101);
  EXPECT_EQ(last->batch().last_row(), 101);
  EXPECT_EQ(last->batch().duplicate_rows(), 1);
}

// Batch arenas take their blocks from shared huge-page regions and give them back when a batch
// settles: batches alive at once, and batches made from given-back blocks, keep their own events.
TEST_F(BatcherTest, BatchesAliveAtOnceAndAfterOthersSettledKeepTheirOwnEvents) {
  constexpr int kEvents = 3000;  // about 2 MiB of arena per batch: several blocks and regions
  auto make = [&](int tag) {
    Batcher batcher(BatcherOptions{kEvents, 64 << 20, absl::Hours(1)}, Info(), 1, tracer_.get());
    for (int i = 0; i < kEvents; ++i) {
      v1::Event* event = batcher.AddEvent(100, /*late=*/false);
      event->set_event_id(absl::StrCat("id-", tag, "-", absl::Dec(i, absl::kZeroPad8)));
      event->set_geo_city(absl::StrCat("city ", tag));
      event->set_source_row(i + 1);
    }
    return batcher.Cut(true, kEvents);
  };
  auto check = [&](const OwnedBatch& owned, int tag) {
    ASSERT_EQ(owned.batch().events_size(), kEvents);
    for (int i = 0; i < kEvents; i += 499) {
      const v1::Event& event = owned.batch().events(i);
      EXPECT_EQ(event.event_id(), absl::StrCat("id-", tag, "-", absl::Dec(i, absl::kZeroPad8)));
      EXPECT_EQ(event.geo_city(), absl::StrCat("city ", tag));
      EXPECT_EQ(event.source_row(), i + 1);
    }
  };
  std::vector<std::unique_ptr<OwnedBatch>> alive;
  for (int tag = 0; tag < 12; ++tag) alive.push_back(make(tag));
  for (int tag = 0; tag < 12; ++tag) check(*alive[tag], tag);
  for (int tag = 0; tag < 12; tag += 2) alive[tag].reset();  // settled: their blocks are reused
  for (int tag = 0; tag < 12; tag += 2) alive[tag] = make(100 + tag);
  for (int tag = 0; tag < 12; ++tag) check(*alive[tag], tag % 2 == 0 ? 100 + tag : tag);
}

}  // namespace
}  // namespace ecomstream::processor

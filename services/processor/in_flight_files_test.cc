#include "services/processor/in_flight_files.h"

#include <string>

#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

// A batch of `file_id` over rows [first, last] carrying `events` events and `dead_letters` dead
// letters (the rest duplicates).
std::unique_ptr<OwnedBatch> Batch(const std::string& file_id, int64_t first, int64_t last, int64_t events,
                                  int64_t dead_letters, bool last_batch) {
  auto owned = std::make_unique<OwnedBatch>();
  v1::Batch& batch = owned->batch();
  batch.set_file_id(file_id);
  batch.set_first_row(first);
  batch.set_last_row(last);
  batch.set_last_batch(last_batch);
  if (last_batch) batch.set_total_file_rows(last);
  owned->counts.rows = last - first + 1;
  owned->counts.events = events;
  owned->counts.dead_letters = dead_letters;
  owned->counts.duplicates = owned->counts.rows - events - dead_letters;
  owned->counts.late = 1;
  owned->counts.by_reason[1] = dead_letters;
  return owned;
}

InFlightFile Named(const std::string& name) {
  InFlightFile file;
  file.name = name;
  return file;
}

v1::Ack AckOf(int64_t inserted, bool file_committed) {
  v1::Ack ack;
  ack.set_inserted(inserted);
  ack.set_file_committed(file_committed);
  return ack;
}

TEST(InFlightFilesTest, AddsTheCountsEachBatchCarriesAndSettlesWithTheLastBatch) {
  InFlightFiles files;
  files.Add("f1", Named("a.csv"));
  ASSERT_TRUE(files.CountSent("f1"));
  ASSERT_TRUE(files.CountSent("f1"));
  EXPECT_FALSE(files.Ack(*Batch("f1", 1, 10, 7, 2, false), AckOf(7, false)).has_value());
  std::optional<InFlightFiles::Settled> settled = files.Ack(*Batch("f1", 11, 15, 5, 0, true), AckOf(4, true));
  ASSERT_TRUE(settled.has_value());
  EXPECT_EQ(settled->how, InFlightFiles::Left::kCommitted);
  const InFlightFile& file = settled->file;
  EXPECT_EQ(file.name, "a.csv");
  EXPECT_EQ(file.counts.rows, 15);
  EXPECT_EQ(file.counts.events, 12);
  EXPECT_EQ(file.counts.dead_letters, 2);
  EXPECT_EQ(file.counts.duplicates, 1);
  EXPECT_EQ(file.counts.late, 2);
  EXPECT_EQ(file.counts.by_reason[1], 2);
  EXPECT_EQ(file.inserted, 11);
  EXPECT_EQ(file.batches_acked, 2);
  EXPECT_TRUE(files.empty());
}

TEST(InFlightFilesTest, ALastBatchWithoutFileCommittedSettlesAsNotCommitted) {
  InFlightFiles files;
  files.Add("f1", Named("a.csv"));
  ASSERT_TRUE(files.CountSent("f1"));
  std::optional<InFlightFiles::Settled> settled = files.Ack(*Batch("f1", 1, 3, 3, 0, true), AckOf(3, false));
  ASSERT_TRUE(settled.has_value());
  EXPECT_EQ(settled->how, InFlightFiles::Left::kNotCommitted);
}

TEST(InFlightFilesTest, AnAbandonedFileLeavesWithTheAckOfItsLastOutstandingBatch) {
  InFlightFiles files;
  files.Add("f1", Named("a.csv"));
  ASSERT_TRUE(files.CountSent("f1"));
  ASSERT_TRUE(files.CountSent("f1"));
  EXPECT_FALSE(files.Ack(*Batch("f1", 1, 5, 5, 0, false), AckOf(5, false)).has_value());
  EXPECT_FALSE(files.Abandon("f1", absl::DataLossError("the file changed")).has_value());
  EXPECT_TRUE(files.Contains("f1"));
  std::optional<InFlightFiles::Settled> settled = files.Ack(*Batch("f1", 6, 9, 4, 0, false), AckOf(4, false));
  ASSERT_TRUE(settled.has_value());
  EXPECT_EQ(settled->how, InFlightFiles::Left::kAbandoned);
  EXPECT_TRUE(settled->file.abandoned);
  EXPECT_TRUE(files.empty());
}

TEST(InFlightFilesTest, AnAbandonedFileWithEveryBatchAcknowledgedLeavesAtOnce) {
  InFlightFiles files;
  files.Add("f1", Named("a.csv"));
  ASSERT_TRUE(files.CountSent("f1"));
  files.UncountSent("f1");  // the send failed
  std::optional<InFlightFile> released = files.Abandon("f1", absl::CancelledError("stopping"));
  ASSERT_TRUE(released.has_value());
  EXPECT_EQ(released->name, "a.csv");
  EXPECT_FALSE(files.CountSent("f1"));  // released: nothing more is counted
  EXPECT_FALSE(files.Remove("f1").has_value());
}

}  // namespace
}  // namespace ecomstream::processor

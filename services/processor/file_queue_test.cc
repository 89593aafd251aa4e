#include "services/processor/file_queue.h"

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class FileQueueTest : public ::testing::Test {
 protected:
  std::vector<DiscoveredFile> Files(const std::vector<std::string>& names) {
    std::vector<DiscoveredFile> files;
    for (const std::string& name : names) files.push_back(DiscoveredFile{name, /*drop_time_us=*/1000});
    return files;
  }

  metrics::Registry registry_;
  ProcessorMetrics metrics_{registry_};
};

TEST_F(FileQueueTest, HandsOutDueFilesOldestNameFirstAndNeverOneInFlight) {
  FileQueue queue(FileQueueOptions{}, &metrics_);
  queue.Merge(Files({"b.csv", "a.csv", "c.csv"}));
  EXPECT_EQ(metrics_.backlog_files.Value(), 3);
  queue.MarkInFlight("b.csv");
  queue.Merge(Files({"b.csv"}));  // a rescan while it is in flight does not queue it again
  EXPECT_THAT(queue.Due(absl::Now()), ElementsAre("a.csv", "c.csv"));
  queue.ReleaseInFlight("b.csv");
  queue.Merge(Files({"b.csv"}));
  EXPECT_THAT(queue.Due(absl::Now()), ElementsAre("a.csv", "b.csv", "c.csv"));
}

TEST_F(FileQueueTest, ARefusedFileWaitsForItsBackoffWhichDoublesUpToTheCap) {
  const absl::Duration first = absl::Seconds(5);
  FileQueue queue(FileQueueOptions{first}, &metrics_);
  queue.Merge(Files({"a.csv"}));
  for (int attempts = 0; attempts < 10; ++attempts) {
    const absl::Time before = absl::Now();
    queue.Refused("a.csv", attempts, 1000, absl::InternalError("refused"));
    EXPECT_THAT(queue.Due(before), IsEmpty());
    // Delay n is between half and all of min(10 min, first * 2^n).
    const absl::Duration cap = std::min(absl::Minutes(10), first * (1 << attempts));
    const absl::Time due = queue.NextDue(absl::InfinitePast(), absl::InfiniteFuture());
    EXPECT_GE(due, before + cap / 2) << "attempt " << attempts;
    EXPECT_LE(due, absl::Now() + cap) << "attempt " << attempts;
    ASSERT_EQ(queue.PickUp("a.csv")->attempts, attempts + 1);
  }
  EXPECT_EQ(metrics_.files_failed.Value(), 10);
}

TEST_F(FileQueueTest, OnceGivesAFileUpAfterMaxAttemptsAndReportsIt) {
  FileQueue queue(FileQueueOptions{absl::Seconds(1), /*once=*/true, /*once_max_attempts=*/2}, &metrics_);
  queue.StartOnce(Files({"a.csv", "b.csv"}));
  queue.Merge(Files({"a.csv", "b.csv", "later.csv"}));  // only the files present at start
  EXPECT_THAT(queue.Due(absl::Now()), ElementsAre("a.csv", "b.csv"));
  queue.Refused("a.csv", 0, 1000, absl::InternalError("refused"));
  EXPECT_FALSE(queue.OnceDone());
  queue.Refused("a.csv", 1, 1000, absl::InternalError("refused"));  // the second refusal gives it up
  queue.Done("b.csv", /*ok=*/true);
  EXPECT_TRUE(queue.OnceDone());
  EXPECT_THAT(queue.OnceUnfinished(), ElementsAre("a.csv"));
  EXPECT_THAT(queue.Due(absl::InfiniteFuture()), IsEmpty());
}

TEST_F(FileQueueTest, PickUpOfAFileNoLongerQueuedSaysSo) {
  FileQueue queue(FileQueueOptions{}, &metrics_);
  queue.Merge(Files({"a.csv"}));
  queue.Done("a.csv", /*ok=*/true);
  EXPECT_FALSE(queue.PickUp("a.csv").has_value());
}

}  // namespace
}  // namespace ecomstream::processor

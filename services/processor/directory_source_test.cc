#include "services/processor/directory_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <thread>

#include "absl/time/clock.h"
#include "common/atomic_file.h"
#include "common/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/testing/test_files.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Names(const std::vector<DiscoveredFile>& files) {
  std::vector<std::string> names;
  for (const DiscoveredFile& f : files) names.push_back(f.name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

TEST(DirectorySourceTest, CandidateNamesAreCsvFilesThatDoNotStartWithADot) {
  EXPECT_TRUE(DirectorySource::IsCandidateName("events-000001.csv"));
  EXPECT_TRUE(DirectorySource::IsCandidateName("a.csv"));
  EXPECT_FALSE(DirectorySource::IsCandidateName(".events.csv"));
  EXPECT_FALSE(DirectorySource::IsCandidateName("events.csv.manifest.json"));
  EXPECT_FALSE(DirectorySource::IsCandidateName("events.CSV"));
  EXPECT_FALSE(DirectorySource::IsCandidateName("events.csv.tmp"));
  EXPECT_FALSE(DirectorySource::IsCandidateName(".csv"));
  EXPECT_FALSE(DirectorySource::IsCandidateName(""));
}

TEST(DirectorySourceTest, ScanIgnoresDotFilesTmpManifestsDirectoriesAndOtherNames) {
  TempDir dir;
  testing::DropFile(dir.path(), "b.csv", "x");
  testing::DropFile(dir.path(), "a.csv", "x");
  testing::DropFile(dir.path(), ".hidden.csv", "x");
  testing::DropFile(dir.path(), "a.csv.manifest.json", "{}");
  testing::DropFile(dir.path(), "notes.txt", "x");
  testing::DropFile(dir.path() + "/.tmp", "pending.csv", "x");
  ASSERT_EQ(::mkdir((dir.path() + "/dir.csv").c_str(), 0755), 0);
  DirectorySource source(DirectorySourceOptions{dir.path(), absl::Hours(1)}, nullptr);
  ASSERT_TRUE(source.Open().ok());
  absl::StatusOr<std::vector<DiscoveredFile>> found = source.Scan();
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(Names(*found), ElementsAre("a.csv", "b.csv"));
}

TEST(DirectorySourceTest, ScanUsesTheMtimeAsDropTime) {
  TempDir dir;
  testing::DropFile(dir.path(), "a.csv", "x");
  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/a.csv").c_str(), &st), 0);
  DirectorySource source(DirectorySourceOptions{dir.path(), absl::Hours(1)}, nullptr);
  ASSERT_TRUE(source.Open().ok());
  absl::StatusOr<std::vector<DiscoveredFile>> found = source.Scan();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].drop_time_us, st.st_mtim.tv_sec * 1000000LL + st.st_mtim.tv_nsec / 1000);
}

TEST(DirectorySourceTest, InotifyReportsARenamedFileWithinMilliseconds) {
  TempDir dir;
  DirectorySource source(DirectorySourceOptions{dir.path(), absl::Hours(1)}, nullptr);
  ASSERT_TRUE(source.Open().ok());
  ASSERT_THAT(*source.Poll(absl::ZeroDuration()), IsEmpty());  // the start-up scan
  int64_t dropped_us = 0;
  std::thread dropper([&] {
    absl::SleepFor(absl::Milliseconds(20));
    dropped_us = NowMicros();
    testing::DropFile(dir.path(), "late.csv", "x");
    testing::DropFile(dir.path(), ".ignored.csv", "x");
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<DiscoveredFile>> found = source.Poll(absl::Seconds(10));
  const absl::Duration waited = absl::Now() - start;
  dropper.join();
  ASSERT_TRUE(found.ok());
  ASSERT_THAT(Names(*found), ElementsAre("late.csv"));
  EXPECT_LT(waited, absl::Seconds(1)) << "inotify, not the hourly rescan, reported it";
  EXPECT_GE((*found)[0].drop_time_us, dropped_us);
  EXPECT_LT((*found)[0].drop_time_us - dropped_us, 1000000);
}

TEST(DirectorySourceTest, InotifyReportsAFileClosedAfterWritingInPlace) {
  TempDir dir;
  DirectorySource source(DirectorySourceOptions{dir.path(), absl::Hours(1)}, nullptr);
  ASSERT_TRUE(source.Open().ok());
  ASSERT_THAT(*source.Poll(absl::ZeroDuration()), IsEmpty());
  FILE* f = std::fopen((dir.path() + "/direct.csv").c_str(), "w");
  std::fputs("a\n", f);
  std::fclose(f);
  EXPECT_THAT(Names(*source.Poll(absl::Seconds(10))), ElementsAre("direct.csv"));
}

TEST(DirectorySourceTest, PeriodicRescanFindsFilesWithoutInotify) {
  TempDir dir;
  DirectorySource source(DirectorySourceOptions{dir.path(), absl::Milliseconds(30), /*watch=*/false}, nullptr);
  ASSERT_TRUE(source.Open().ok());
  ASSERT_THAT(*source.Poll(absl::ZeroDuration()), IsEmpty());
  testing::DropFile(dir.path(), "polled.csv", "x");
  EXPECT_THAT(Names(*source.Poll(absl::Seconds(10))), ElementsAre("polled.csv"));
}

TEST(DirectorySourceTest, WakeEndsAPollEarly) {
  TempDir dir;
  DirectorySource source(DirectorySourceOptions{dir.path(), absl::Hours(1)}, nullptr);
  ASSERT_TRUE(source.Open().ok());
  ASSERT_THAT(*source.Poll(absl::ZeroDuration()), IsEmpty());
  std::thread waker([&] {
    absl::SleepFor(absl::Milliseconds(20));
    source.Wake();
  });
  const absl::Time start = absl::Now();
  EXPECT_THAT(*source.Poll(absl::Seconds(30)), IsEmpty());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  waker.join();
}

TEST(DirectorySourceTest, MissingOrNonDirectoryInboxIsAnError) {
  TempDir dir;
  DirectorySource missing(DirectorySourceOptions{dir.path() + "/nope"}, nullptr);
  EXPECT_EQ(missing.Open().code(), absl::StatusCode::kNotFound);
  testing::DropFile(dir.path(), "file.csv", "x");
  DirectorySource file(DirectorySourceOptions{dir.path() + "/file.csv"}, nullptr);
  EXPECT_EQ(file.Open().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ecomstream::processor

#include "services/processor/archive_retention.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/clock.h"

namespace ecomstream::processor {
namespace {

namespace fs = std::filesystem;

class ArchiveRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "archive_retention.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name) { std::ofstream(dir_ / name) << "event_id\n"; }

  fs::path dir_;
};

TEST_F(ArchiveRetentionTest, DeletesOnlyRegularFilesOlderThanTheRetention) {
  Write("a.csv");
  Write("a.csv.manifest.json");
  fs::create_directory(dir_ / "keep-dir");
  fs::create_symlink(dir_ / "a.csv", dir_ / "link.csv");
  // Just archived: kept.
  auto none = RemoveExpiredArchivedFiles(dir_.string(), absl::Hours(1), absl::Now());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, 0);
  EXPECT_TRUE(fs::exists(dir_ / "a.csv"));
  // Two hours later, with a retention of one hour: the two files go, the rest stays.
  auto two = RemoveExpiredArchivedFiles(dir_.string(), absl::Hours(1), absl::Now() + absl::Hours(2));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, 2);
  EXPECT_FALSE(fs::exists(dir_ / "a.csv"));
  EXPECT_FALSE(fs::exists(dir_ / "a.csv.manifest.json"));
  EXPECT_TRUE(fs::is_directory(dir_ / "keep-dir"));
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.csv"));
}

TEST_F(ArchiveRetentionTest, AnOldDropTimeDoesNotExpireAFileJustArchived) {
  Write("old.csv");
  // Dropped (mtime) ten days ago, moved into the archive now.
  const timespec times[2] = {{::time(nullptr) - 10 * 86400, 0}, {::time(nullptr) - 10 * 86400, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ / "old.csv").c_str(), times, 0), 0);
  auto deleted = RemoveExpiredArchivedFiles(dir_.string(), absl::Hours(24), absl::Now());
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0);
  EXPECT_TRUE(fs::exists(dir_ / "old.csv"));
}

TEST_F(ArchiveRetentionTest, AMissingArchiveIsAnErrorNamingIt) {
  auto result = RemoveExpiredArchivedFiles((dir_ / "nope").string(), absl::Hours(1), absl::Now());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
  EXPECT_NE(result.status().message().find("cannot open the archive " + (dir_ / "nope").string()), std::string::npos)
      << result.status();
}

}  // namespace
}  // namespace ecomstream::processor

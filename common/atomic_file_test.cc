#include "common/atomic_file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream {
namespace {

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  return names;
}

std::string FreshDir(const std::string& name) {
  std::string dir = absl::StrCat(::ecomstream::testing::ScratchDir(), "/atomic_", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "'");
  (void)system(cmd.c_str());
  EXPECT_TRUE(MakeDirs(dir).ok());
  return dir;
}

TEST(AtomicFileTest, FileAppearsOnlyAfterCommit) {
  std::string dir = FreshDir("commit");
  AtomicFileWriter writer(dir, "events.csv");
  ASSERT_TRUE(writer.Open().ok());
  ASSERT_TRUE(writer.Append("a,b\n1,2\n").ok());
  EXPECT_EQ(List(dir), std::vector<std::string>{".tmp"});
  ASSERT_TRUE(writer.Commit().ok());
  std::ifstream in(dir + "/events.csv");
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "a,b\n1,2\n");
  EXPECT_TRUE(List(dir + "/.tmp").empty());
}

TEST(AtomicFileTest, SyncKeepsTheTempNameUntilPublishAndALargeAppendKeepsTheBytesInOrder) {
  std::string dir = FreshDir("sync_publish");
  AtomicFileWriter writer(dir, "events.csv");
  EXPECT_EQ(writer.Publish().code(), absl::StatusCode::kFailedPrecondition) << "Publish before Sync";
  ASSERT_TRUE(writer.Open().ok());
  ASSERT_TRUE(writer.Append("head\n").ok());
  const std::string large((1 << 20) + 7, 'x');  // above the buffer: written directly, after "head\n"
  ASSERT_TRUE(writer.Append(large).ok());
  ASSERT_TRUE(writer.Append("tail\n").ok());
  ASSERT_TRUE(writer.Sync().ok());
  EXPECT_EQ(List(dir), std::vector<std::string>{".tmp"});
  EXPECT_EQ(List(dir + "/.tmp"), std::vector<std::string>{"events.csv"});
  ASSERT_TRUE(writer.Publish().ok());
  EXPECT_TRUE(List(dir + "/.tmp").empty());
  std::ifstream in(dir + "/events.csv");
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "head\n" + large + "tail\n");
  EXPECT_EQ(writer.bytes_written(), content.str().size());
}

TEST(AtomicFileTest, AbortLeavesNothing) {
  std::string dir = FreshDir("abort");
  {
    AtomicFileWriter writer(dir, "events.csv");
    ASSERT_TRUE(writer.Open().ok());
    ASSERT_TRUE(writer.Append("partial").ok());
  }
  EXPECT_EQ(List(dir), std::vector<std::string>{".tmp"});
  EXPECT_TRUE(List(dir + "/.tmp").empty());
}

TEST(AtomicFileTest, DiskFullIsResourceExhaustedAndLeavesNoFinalFile) {
  // /dev/full accepts open but every write fails with ENOSPC; use it as the temp file via a
  // symlink so the writer's own write path sees the error.
  std::string dir = FreshDir("full");
  ASSERT_TRUE(MakeDirs(dir + "/.tmp").ok());
  AtomicFileWriter writer(dir, "events.csv");
  ASSERT_EQ(symlink("/dev/full", (dir + "/.tmp/events.csv").c_str()), 0);
  ASSERT_TRUE(writer.Open().ok());
  // More than the writer's 1 MiB buffer, so Append itself writes and sees ENOSPC.
  ASSERT_EQ(writer.Append(std::string(2 << 20, 'x')).code(), absl::StatusCode::kResourceExhausted);
  const absl::Status commit = writer.Commit();
  EXPECT_EQ(commit.code(), absl::StatusCode::kResourceExhausted) << commit;
  struct stat st;
  EXPECT_NE(stat((dir + "/events.csv").c_str(), &st), 0);
}

TEST(AtomicFileTest, UnwritableDirectoryIsAClearError) {
  absl::Status status = WriteFileAtomically("/proc/ecomstream-no-such-dir", "x.csv", "data");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("/proc/ecomstream-no-such-dir"), absl::string_view::npos) << status;
}

TEST(AtomicFileTest, StaleTempFilesAreRemoved) {
  std::string dir = FreshDir("stale");
  ASSERT_TRUE(MakeDirs(dir + "/.tmp").ok());
  std::ofstream(dir + "/.tmp/a.csv") << "x";
  std::ofstream(dir + "/.tmp/b.csv") << "y";
  EXPECT_EQ(RemoveStaleTempFiles(dir + "/.tmp"), 2);
  EXPECT_TRUE(List(dir + "/.tmp").empty());
}

TEST(AtomicFileTest, CommitSetsTheRequestedModificationTime) {
  std::string dir = FreshDir("mtime");
  AtomicFileWriter writer(dir, "events.csv");
  writer.set_modification_time_us(1'700'000'000'123'456);
  ASSERT_TRUE(writer.Open().ok());
  ASSERT_TRUE(writer.Append("a\n").ok());
  ASSERT_TRUE(writer.Commit().ok());
  struct stat st;
  ASSERT_EQ(stat((dir + "/events.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'700'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123'456'000);
}

}  // namespace
}  // namespace ecomstream

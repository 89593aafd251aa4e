#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream {
namespace {

TEST(FileUtilTest, IsDirectoryOnlyForDirectoriesAndLinksToThem) {
  ::ecomstream::testing::TempDir dir("file_util_dirs");
  std::ofstream(dir.File("plain")) << "x";
  ASSERT_EQ(symlink(dir.path().c_str(), dir.File("link").c_str()), 0);
  EXPECT_TRUE(IsDirectory(dir.path()));
  EXPECT_TRUE(IsDirectory(dir.File("link")));
  EXPECT_FALSE(IsDirectory(dir.File("plain")));
  EXPECT_FALSE(IsDirectory(dir.File("missing")));
  EXPECT_FALSE(IsDirectory(""));
}

TEST(FileUtilTest, MtimeMicrosTruncatesNanoseconds) {
  struct stat st {};
  st.st_mtim.tv_sec = 1'700'000'000;
  st.st_mtim.tv_nsec = 123'456'789;
  EXPECT_EQ(MtimeMicros(st), 1'700'000'000'123'456);
}

TEST(FileUtilTest, ReadSmallFileReadsUpToTheLimitAndRefusesLargerOrMissingFiles) {
  ::ecomstream::testing::TempDir dir("file_util_read");
  std::ofstream(dir.File("hundred")) << std::string(100, 'a');
  std::ofstream(dir.File("empty")) << "";
  EXPECT_EQ(ReadSmallFile(dir.File("hundred"), 100)->size(), 100u);
  const absl::Status larger = ReadSmallFile(dir.File("hundred"), 99).status();
  EXPECT_EQ(larger.code(), absl::StatusCode::kOutOfRange) << larger;
  EXPECT_NE(larger.message().find("larger than 99 bytes"), absl::string_view::npos) << larger;
  EXPECT_EQ(*ReadSmallFile(dir.File("empty"), 0), "");
  EXPECT_EQ(ReadSmallFile(dir.File("missing"), 100).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadSmallFile(dir.path(), 100).status().code(), absl::StatusCode::kInternal) << "a directory cannot be read";
}

}  // namespace
}  // namespace ecomstream

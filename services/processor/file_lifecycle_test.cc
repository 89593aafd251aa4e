#include "services/processor/file_lifecycle.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/testing/test_files.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::ListFiles;
using ::ecomstream::testing::ReadFileToString;
using ::ecomstream::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class FileLifecycleTest : public ::testing::Test {
 protected:
  FileLifecycle Make(bool delete_after_commit = false) {
    FileLifecycle lifecycle(FileLifecycleOptions{inbox_, archive_, quarantine_, delete_after_commit}, nullptr);
    EXPECT_TRUE(lifecycle.Prepare().ok());
    return lifecycle;
  }
  TempDir dir_;
  std::string inbox_ = dir_.Subdir("inbox");
  std::string archive_ = dir_.path() + "/archive";
  std::string quarantine_ = dir_.path() + "/quarantine";
};

TEST_F(FileLifecycleTest, CommitMovesTheCsvAndItsManifestToTheArchive) {
  testing::DropFile(inbox_, "a.csv", "data");
  testing::DropFile(inbox_, "a.csv.manifest.json", "{}");
  absl::StatusOr<std::string> moved = Make().Commit("a.csv");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, archive_ + "/a.csv");
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv", "a.csv.manifest.json"));
  EXPECT_EQ(*ReadFileToString(archive_ + "/a.csv"), "data");
}

TEST_F(FileLifecycleTest, ATakenNameInTheArchiveGetsASuffixAndNothingIsOverwritten) {
  FileLifecycle lifecycle = Make();
  testing::DropFile(inbox_, "a.csv", "first");
  ASSERT_TRUE(lifecycle.Commit("a.csv").ok());
  testing::DropFile(inbox_, "a.csv", "second");
  testing::DropFile(inbox_, "a.csv.manifest.json", "{}");
  absl::StatusOr<std::string> moved = lifecycle.Commit("a.csv");
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, archive_ + "/a.1.csv");
  EXPECT_EQ(*ReadFileToString(archive_ + "/a.csv"), "first");
  EXPECT_EQ(*ReadFileToString(archive_ + "/a.1.csv"), "second");
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.1.csv", "a.1.csv.manifest.json", "a.csv"));
}

// Two processors archive one file at once (the one that loaded it, and one whose claim came back
// ALREADY_COMMITTED). The first has moved the manifest and not yet the CSV when the second comes:
// the second waits for the move and finds the file gone; it never takes the manifest already in
// the archive for a taken name and moves the CSV to "a.1.csv".
TEST_F(FileLifecycleTest, ASecondProcessorArchivingAFileMidMoveFindsItGoneAndTakesNoSecondName) {
  testing::DropFile(inbox_, "a.csv", "data");
  testing::DropFile(inbox_, "a.csv.manifest.json", "{}");
  FileLifecycle lifecycle = Make();
  // The first processor, mid-move: it holds the inbox file and has moved the manifest.
  const int first = ::open((inbox_ + "/a.csv").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(first, 0);
  ASSERT_EQ(::flock(first, LOCK_EX), 0);
  ASSERT_EQ(::rename((inbox_ + "/a.csv.manifest.json").c_str(), (archive_ + "/a.csv.manifest.json").c_str()), 0);

  absl::StatusOr<std::string> second = absl::UnknownError("not run");
  std::thread mover([&] { second = lifecycle.Commit("a.csv"); });
  absl::SleepFor(absl::Milliseconds(200));  // time for the second to run ahead if it does not wait
  EXPECT_EQ(::rename((inbox_ + "/a.csv").c_str(), (archive_ + "/a.csv").c_str()), 0) << "the second moved it";
  ::close(first);
  mover.join();

  EXPECT_EQ(second.status().code(), absl::StatusCode::kNotFound) << second.status();
  EXPECT_THAT(ListFiles(archive_), ElementsAre("a.csv", "a.csv.manifest.json"));
  EXPECT_EQ(*ReadFileToString(archive_ + "/a.csv"), "data");
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
}

TEST_F(FileLifecycleTest, DeleteAfterCommitRemovesTheCsvAndItsManifest) {
  testing::DropFile(inbox_, "a.csv", "data");
  testing::DropFile(inbox_, "a.csv.manifest.json", "{}");
  absl::StatusOr<std::string> moved = Make(/*delete_after_commit=*/true).Commit("a.csv");
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, "");
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
  EXPECT_THAT(ListFiles(archive_), IsEmpty());
}

TEST_F(FileLifecycleTest, QuarantineWritesTheReasonAndMovesTheManifestAlong) {
  testing::DropFile(inbox_, "bad.csv", "colour\nred\n");
  testing::DropFile(inbox_, "bad.csv.manifest.json", "{}");
  absl::StatusOr<std::string> moved = Make().Quarantine("bad.csv", "header matches no schema version");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, quarantine_ + "/bad.csv");
  EXPECT_THAT(ListFiles(quarantine_), ElementsAre("bad.csv", "bad.csv.manifest.json", "bad.csv.reason"));
  EXPECT_EQ(*ReadFileToString(quarantine_ + "/bad.csv.reason"), "header matches no schema version\n");
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
}

TEST_F(FileLifecycleTest, AFileThatIsGoneIsNotFound) {
  EXPECT_EQ(Make().Commit("never.csv").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Make().Quarantine("never.csv", "why").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ecomstream::processor

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/files.h"
#include "tests/testing/ports.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace ecomstream::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TEST(TempDirTest, TwoDirectoriesDifferAndEachIsRemovedWithItsContents) {
  std::string first_path;
  {
    TempDir first("unit");
    TempDir second("unit");
    first_path = first.path();
    EXPECT_NE(first.path(), second.path());
    EXPECT_EQ(first.path().rfind(TmpRoot() + "/ecomstream-unit-", 0), 0u) << first.path();
    const std::string nested = first.Subdir("a/b");
    EXPECT_EQ(nested, first.path() + "/a/b");
    ASSERT_EQ(RunCommand({"touch", first.File("a/b/file")}), 0);
    EXPECT_TRUE(Exists(first.File("a/b/file")));
  }
  EXPECT_FALSE(Exists(first_path));
}

TEST(TempDirTest, ScratchDirIsOneDirectoryPerProcess) {
  EXPECT_EQ(ScratchDir(), ScratchDir());
  EXPECT_TRUE(Exists(ScratchDir()));
  EXPECT_NE(ScratchDir().find("/ecomstream-scratch-"), std::string::npos) << ScratchDir();
}

TEST(PortsTest, FreePortNeverRepeatsAndKeepsEachPortLockedAgainstOtherProcesses) {
  std::set<int> ports;
  for (int i = 0; i < 50; ++i) {
    const int port = FreePort();
    EXPECT_GT(port, 0);
    EXPECT_TRUE(ports.insert(port).second) << "port " << port << " handed out twice";
  }
  const char* env = std::getenv("ECOMSTREAM_TEST_PORT_LOCKS");
  const std::string dir = env != nullptr && *env != '\0' ? env : "/tmp/ecomstream-port-locks";
  // A lock held through another open file description: another process sees the port taken.
  const int fd = ::open(absl::StrCat(dir, "/", *ports.begin(), ".lock").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

TEST(ProcessTest, RunCommandCapturesOutputAndExitCode) {
  std::string output;
  EXPECT_EQ(RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, &output), 3);
  EXPECT_EQ(output, "out\nerr\n");
  EXPECT_EQ(RunCommand({"/nonexistent/binary"}, &output), 127);
  EXPECT_EQ(RunCommand({"sh", "-c", "kill -9 $$"}), 128 + 9);
}

TEST(ProcessTest, StartedProcessLogsToItsFileAndStopEndsIt) {
  TempDir dir("process");
  auto process = Process::Start({"/bin/sh", "-c", "echo started; exec sleep 60"}, dir.File("log"));
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_TRUE(WaitUntil([&] { return ReadFileToString(dir.File("log")).value_or("") == "started\n"; },
                        absl::Seconds(10)));
  EXPECT_TRUE((*process)->Running());
  auto code = (*process)->Stop(absl::Seconds(5));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGTERM);
  EXPECT_FALSE((*process)->Running());
  auto timed_out = RunToExit({"/bin/sleep", "60"}, dir.File("sleep.log"), absl::Milliseconds(100));
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(WaitTest, WaitUntilReturnsAsSoonAsDoneAndFalseAtTheDeadline) {
  int calls = 0;
  EXPECT_TRUE(WaitUntil([&] { return ++calls == 3; }, absl::Seconds(10), absl::Milliseconds(1)));
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(WaitUntil([] { return false; }, absl::Milliseconds(30), absl::Milliseconds(5)));
}

TEST(FilesTest, ListFilesSkipsDotFilesAndDirectoriesAndFiltersBySuffix) {
  TempDir dir("files");
  for (const char* name : {"b.csv", "a.csv", ".hidden.csv", "c.json"}) {
    ASSERT_EQ(RunCommand({"touch", dir.File(name)}), 0);
  }
  dir.Subdir("d.csv");
  EXPECT_EQ(ListFiles(dir.path(), ".csv"), (std::vector<std::string>{"a.csv", "b.csv"}));
  EXPECT_EQ(ListFiles(dir.path()).size(), 3u);
  EXPECT_TRUE(ListFiles(dir.File("missing")).empty());
  EXPECT_EQ(ReadFileToString(dir.File("missing")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ecomstream::testing

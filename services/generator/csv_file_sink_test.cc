#include "services/generator/csv_file_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/sha256.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/generator/testing/files.h"

namespace ecomstream::generator {
namespace {

using testing::FreshPath;
using testing::ListDir;
using testing::ReadFile;

TEST(CsvFileSinkTest, CommitDropsManifestAndCsvWithChecksumAndMtime) {
  const std::string dir = FreshPath("sink_commit");
  CsvFileSink sink({dir, /*write_manifests=*/true});
  ASSERT_EQ(*sink.Start(), 0);
  ASSERT_TRUE(sink.Open("events-1.csv").ok());
  ASSERT_TRUE(sink.Append("a,b\n").ok());
  ASSERT_TRUE(sink.Append("1,2\n").ok());
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{".tmp"}) << "nothing under a final name before Commit";
  v1::FileManifest manifest;
  manifest.set_rows(1);
  (*manifest.mutable_anomaly_counts())["bad_price"] = 1;
  ASSERT_TRUE(sink.Commit(&manifest, 1'700'000'000'000'000).ok());
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{".tmp", "events-1.csv", "events-1.csv.manifest.json"}));
  EXPECT_TRUE(ListDir(dir + "/.tmp").empty());
  EXPECT_EQ(ReadFile(dir + "/events-1.csv"), "a,b\n1,2\n");
  v1::FileManifest parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ReadFile(dir + "/events-1.csv.manifest.json"), &parsed).ok());
  EXPECT_EQ(parsed.file_name(), "events-1.csv");
  EXPECT_EQ(parsed.sha256(), Sha256Hex("a,b\n1,2\n"));
  EXPECT_EQ(parsed.size_bytes(), 8);
  EXPECT_EQ(parsed.rows(), 1);
  EXPECT_EQ(parsed.created_time_us(), 1'700'000'000'000'000);
  EXPECT_EQ(parsed.anomaly_counts().at("bad_price"), 1);
  struct stat st;
  ASSERT_EQ(stat((dir + "/events-1.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'700'000'000) << "mtime = created time, the reference without a manifest";
  EXPECT_EQ(sink.stats().files, 1);
  EXPECT_EQ(sink.stats().bytes, 8);
}

TEST(CsvFileSinkTest, ManifestJsonIsDeterministicAndUsesProtoFieldNames) {
  v1::FileManifest a, b;
  for (const char* kind : {"zeta", "alpha", "mid", "beta", "omega"}) (*a.mutable_anomaly_counts())[kind] = 1;
  for (const char* kind : {"omega", "beta", "mid", "alpha", "zeta"}) (*b.mutable_anomaly_counts())[kind] = 1;
  const std::string json = *ManifestJson(a);
  EXPECT_EQ(json, *ManifestJson(b));
  EXPECT_LT(json.find("\"alpha\""), json.find("\"beta\""));
  EXPECT_LT(json.find("\"mid\""), json.find("\"zeta\""));
  EXPECT_NE(json.find("\"created_time_us\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"late_events\""), std::string::npos) << "zero fields are printed too";
}

TEST(CsvFileSinkTest, WithoutManifestsOnlyTheCsvAppears) {
  const std::string dir = FreshPath("sink_nomanifest");
  CsvFileSink sink({dir, /*write_manifests=*/false});
  ASSERT_TRUE(sink.Start().ok());
  ASSERT_TRUE(sink.Open("e.csv").ok());
  ASSERT_TRUE(sink.Append("x\n").ok());
  v1::FileManifest manifest;
  ASSERT_TRUE(sink.Commit(&manifest, 1).ok());
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{".tmp", "e.csv"}));
}

TEST(CsvFileSinkTest, StartRemovesStaleTempFiles) {
  const std::string dir = FreshPath("sink_stale");
  ASSERT_TRUE(MakeDirs(dir + "/.tmp").ok());
  std::ofstream(dir + "/.tmp/events-old.csv") << "partial";
  std::ofstream(dir + "/.tmp/events-old.csv.manifest.json") << "{";
  CsvFileSink sink({dir, true});
  absl::StatusOr<int> removed = sink.Start();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_TRUE(ListDir(dir + "/.tmp").empty());
}

// /dev/full behind the temp name: every write fails with ENOSPC, through the real write path.
TEST(CsvFileSinkTest, DiskFullIsResourceExhaustedAndLeavesNothingUnderAFinalName) {
  const std::string dir = FreshPath("sink_full");
  CsvFileSink sink({dir, true});
  ASSERT_TRUE(sink.Start().ok());
  ASSERT_EQ(symlink("/dev/full", (dir + "/.tmp/events-full.csv").c_str()), 0);
  ASSERT_TRUE(sink.Open("events-full.csv").ok());
  absl::Status status = sink.Append(std::string(2 << 20, 'x'));
  if (status.ok()) {
    v1::FileManifest manifest;
    status = sink.Commit(&manifest, 1);
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("No space left on device"), absl::string_view::npos) << status;
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{".tmp"});
  EXPECT_FALSE(sink.is_open());
  EXPECT_EQ(sink.stats().failed, 1);
}

TEST(CsvFileSinkTest, InTheBackgroundFilesLandInOrderEachInPlaceWhenItsCallbackRuns) {
  const std::string dir = FreshPath("sink_background");
  CsvFileSink sink({dir, true, /*background=*/true, /*max_queued_bytes=*/64});
  ASSERT_EQ(*sink.Start(), 0);
  std::vector<std::string> landed;  // the I/O thread's, read after Flush
  for (int i = 1; i <= 3; ++i) {
    const std::string name = absl::StrCat("events-", i, ".csv");
    ASSERT_TRUE(sink.Open(name).ok());
    for (int chunk = 0; chunk < 10; ++chunk) ASSERT_TRUE(sink.Append(std::string(100, 'a' + chunk) + "\n").ok());
    EXPECT_EQ(sink.open_bytes(), 1010);
    v1::FileManifest manifest;
    manifest.set_rows(i);
    ASSERT_TRUE(sink.Commit(&manifest, 1'700'000'000'000'000, [&landed, dir](const v1::FileManifest& done) {
                      const std::vector<std::string> files = ListDir(dir);
                      // The manifest and the CSV are in place, in that order of renames.
                      if (std::count(files.begin(), files.end(), done.file_name()) == 1 &&
                          std::count(files.begin(), files.end(), done.file_name() + ".manifest.json") == 1) {
                        landed.push_back(absl::StrCat(done.file_name(), ":", done.rows(), ":", done.size_bytes()));
                      }
                    }).ok());
    EXPECT_FALSE(sink.is_open());
  }
  ASSERT_TRUE(sink.Flush().ok());
  EXPECT_EQ(landed, (std::vector<std::string>{"events-1.csv:1:1010", "events-2.csv:2:1010", "events-3.csv:3:1010"}));
  EXPECT_TRUE(ListDir(dir + "/.tmp").empty());
  EXPECT_EQ(ReadFile(dir + "/events-2.csv").size(), 1010u);
  EXPECT_EQ(sink.stats().files, 3);
  EXPECT_EQ(sink.stats().bytes, 3030);
}

TEST(CsvFileSinkTest, InTheBackgroundADiskFullStopsTheSinkAndLeavesNothingUnderAFinalName) {
  const std::string dir = FreshPath("sink_background_full");
  CsvFileSink sink({dir, true, /*background=*/true});
  ASSERT_TRUE(sink.Start().ok());
  ASSERT_EQ(symlink("/dev/full", (dir + "/.tmp/events-full.csv").c_str()), 0);
  ASSERT_TRUE(sink.Open("events-full.csv").ok());
  (void)sink.Append(std::string(2 << 20, 'x'));  // fails on the I/O thread, reported later
  v1::FileManifest manifest;
  (void)sink.Commit(&manifest, 1, [](const v1::FileManifest&) { ADD_FAILURE() << "committed a failed file"; });
  const absl::Status status = sink.Flush();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("No space left on device"), absl::string_view::npos) << status;
  EXPECT_EQ(sink.Open("events-next.csv").code(), absl::StatusCode::kResourceExhausted) << "the sink stays stopped";
  EXPECT_FALSE(sink.is_open());
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{".tmp"});
  EXPECT_EQ(sink.stats().failed, 1);
  EXPECT_EQ(sink.stats().files, 0);
}

// The second file's manifest cannot be written: the first file lands, the second and the third
// (committed after it) do not, whether the publisher took them as one group or apart.
TEST(CsvFileSinkTest, InTheBackgroundAFailedFileStopsTheFilesAfterItButNotTheOnesBefore) {
  const std::string dir = FreshPath("sink_background_middle");
  CsvFileSink sink({dir, true, /*background=*/true});
  ASSERT_TRUE(sink.Start().ok());
  ASSERT_EQ(symlink("/dev/full", (dir + "/.tmp/events-2.csv.manifest.json").c_str()), 0);
  std::vector<std::string> landed;  // the publisher's, read after Flush
  for (int i = 1; i <= 3; ++i) {
    const std::string name = absl::StrCat("events-", i, ".csv");
    if (!sink.Open(name).ok()) break;
    if (!sink.Append("a\n1\n").ok()) break;
    v1::FileManifest manifest;
    if (!sink.Commit(&manifest, 1, [&landed](const v1::FileManifest& done) { landed.push_back(done.file_name()); })
             .ok()) {
      break;
    }
  }
  const absl::Status status = sink.Flush();
  sink.Abort();  // a file the caller opened after the failure
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(landed, std::vector<std::string>{"events-1.csv"});
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{".tmp", "events-1.csv", "events-1.csv.manifest.json"}));
  EXPECT_TRUE(ListDir(dir + "/.tmp").empty());
  EXPECT_EQ(sink.stats().files, 1);
}

// Files 2 and 3 are whole and waiting for the publisher (held in file 1's callback) when
// writing file 4 fails: they still land, in order; file 4 does not.
TEST(CsvFileSinkTest, InTheBackgroundAWriteErrorLetsTheWholeFilesBeforeItLand) {
  const std::string dir = FreshPath("sink_background_write_error");
  CsvFileSink sink({dir, true, /*background=*/true});
  ASSERT_TRUE(sink.Start().ok());
  ASSERT_EQ(symlink("/dev/full", (dir + "/.tmp/events-4.csv").c_str()), 0);
  absl::Notification release;
  // Whatever fails below, the publisher is let go (the sink's destructor waits for it).
  const auto let_go = absl::MakeCleanup([&release] {
    if (!release.HasBeenNotified()) release.Notify();
  });
  std::vector<std::string> landed;  // the publisher's, read after Flush
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(sink.Open(absl::StrCat("events-", i, ".csv")).ok());
    // File 4's bytes are written (and fail) on the I/O thread, not at the publisher's sync.
    ASSERT_TRUE(sink.Append(i < 4 ? std::string("a\n1\n") : std::string(2 << 20, 'x')).ok());
    v1::FileManifest manifest;
    ASSERT_TRUE(sink.Commit(&manifest, 1, [&landed, &release](const v1::FileManifest& done) {
                      landed.push_back(done.file_name());
                      if (done.file_name() == "events-1.csv") release.WaitForNotification();
                    }).ok());
  }
  // The write error is recorded (the I/O thread counts the file failed as it stops).
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (sink.stats().failed == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(sink.stats().failed, 1);
  absl::SleepFor(absl::Milliseconds(50));  // past the I/O thread's recording of the error
  release.Notify();
  const absl::Status status = sink.Flush();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(landed, (std::vector<std::string>{"events-1.csv", "events-2.csv", "events-3.csv"}));
  EXPECT_EQ(ListDir(dir), (std::vector<std::string>{".tmp", "events-1.csv", "events-1.csv.manifest.json",
                                                     "events-2.csv", "events-2.csv.manifest.json", "events-3.csv",
                                                     "events-3.csv.manifest.json"}));
  EXPECT_TRUE(ListDir(dir + "/.tmp").empty());
  EXPECT_EQ(sink.stats().files, 3);
}

// The CSV fits but its manifest does not: neither may appear.
TEST(CsvFileSinkTest, ManifestWriteFailureLeavesNoCsvBehind) {
  const std::string dir = FreshPath("sink_manifestfull");
  CsvFileSink sink({dir, true});
  ASSERT_TRUE(sink.Start().ok());
  ASSERT_EQ(symlink("/dev/full", (dir + "/.tmp/e.csv.manifest.json").c_str()), 0);
  ASSERT_TRUE(sink.Open("e.csv").ok());
  ASSERT_TRUE(sink.Append("a\n1\n").ok());
  v1::FileManifest manifest;
  const absl::Status status = sink.Commit(&manifest, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{".tmp"});
  EXPECT_FALSE(sink.is_open());
}

TEST(CsvFileSinkTest, OutputPathThatIsAFileIsAClearError) {
  const std::string path = FreshPath("sink_notadir");
  std::ofstream(path) << "x";
  CsvFileSink sink({path, true});
  const absl::Status status = sink.Start().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(path), absl::string_view::npos) << status;
}

TEST(CsvFileSinkTest, RejectsHiddenOrNonCsvNamesAndMisuse) {
  const std::string dir = FreshPath("sink_names");
  CsvFileSink sink({dir, true});
  ASSERT_TRUE(sink.Start().ok());
  EXPECT_EQ(sink.Open(".hidden.csv").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sink.Open("events.txt").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sink.Open("../escape.csv").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sink.Append("x").code(), absl::StatusCode::kFailedPrecondition);
  v1::FileManifest manifest;
  EXPECT_EQ(sink.Commit(&manifest, 1).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(sink.Open("a.csv").ok());
  EXPECT_EQ(sink.Open("b.csv").code(), absl::StatusCode::kFailedPrecondition);
  sink.Abort();
  EXPECT_TRUE(ListDir(dir + "/.tmp").empty()) << "Abort removes the temp file";
}

}  // namespace
}  // namespace ecomstream::generator

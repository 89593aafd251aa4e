// The ecomstream-processor binary: configuration errors, --once, SIGTERM, --health_check. The
// writer is the in-process fake (a real gRPC server on 127.0.0.1).
#include <signal.h>
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/testing/fake_writer.h"
#include "services/processor/testing/test_files.h"
#include "tests/e2e/e2e_util.h"
#include "tests/otel/test_collector.h"
#include "tests/testing/ports.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::BinPath;
using ::ecomstream::testing::FreePort;
using ::ecomstream::testing::ListFiles;
using ::ecomstream::testing::Process;
using ::ecomstream::testing::ReadFileToString;
using ::ecomstream::testing::RunToExit;
using ::ecomstream::testing::TempDir;
using ::ecomstream::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::DropFile;
using testing::FakeWriter;
using testing::V3File;

constexpr absl::Duration kWait = absl::Seconds(30);

class ProcessorBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_.Start(); }
  void TearDown() override { fake_.Stop(); }

  std::vector<std::string> Args(std::vector<std::string> extra) {
    std::vector<std::string> argv = {BinPath("ecomstream-processor"), "--input_dir=" + inbox_,
                                     "--writer_address=" + fake_.address(), "--rescan_interval=100ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  // Runs to exit; returns the exit code and leaves the output in log().
  int Run(const std::vector<std::string>& argv) {
    absl::StatusOr<int> code = RunToExit(argv, log_, kWait);
    EXPECT_TRUE(code.ok()) << code.status();
    return code.ok() ? *code : -1;
  }
  std::string Log() { return ReadFileToString(log_).value_or(""); }
  std::vector<std::string> LogLines() {
    return absl::StrSplit(Log(), '\n', absl::SkipEmpty());
  }

  FakeWriter fake_;
  TempDir dir_;
  std::string inbox_ = dir_.Subdir("inbox");
  std::string log_ = dir_.path() + "/processor.log";
};

TEST_F(ProcessorBinaryTest, ABadSettingExitsTwoWithOneClearLine) {
  DropFile(dir_.path(), "not-a-dir", "x");
  EXPECT_EQ(Run({BinPath("ecomstream-processor"), "--input_dir=" + dir_.path() + "/not-a-dir"}), 2);
  EXPECT_THAT(LogLines(), ElementsAre(absl::StrCat("ecomstream-processor: --input_dir ", dir_.path(),
                                                   "/not-a-dir exists and is not a directory")));
  ::unlink(log_.c_str());
  EXPECT_EQ(Run(Args({"--batch_bytes=100000000"})), 2);
  EXPECT_THAT(LogLines(), ElementsAre("ecomstream-processor: --batch_bytes must be in 65536..3145728 (gRPC refuses "
                                      "messages over 4 MiB)"));
}

TEST_F(ProcessorBinaryTest, ABadOtelSettingExitsTwoWithOneClearLine) {
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(Args({"--once"}), log_, {"OTEL_SDK_DISABLED=false", "OTEL_TRACES_SAMPLER=sometimes"});
  ASSERT_TRUE(process.ok());
  EXPECT_EQ(*(*process)->Wait(kWait), 2);
  EXPECT_THAT(LogLines(), ElementsAre(HasSubstr("OTEL_TRACES_SAMPLER")));
}

// The schedule delay is longer than the test, so the spans can only have arrived through the
// flush at exit.
TEST_F(ProcessorBinaryTest, ExportsFileProcessAndBatchSendSpansAndFlushesThemBeforeExiting) {
  auto collector = ecomstream::testing::TestCollector::Start();
  ASSERT_TRUE(collector.ok()) << collector.status();
  DropFile(inbox_, "events-1.csv", V3File(1, 15));
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(Args({"--once", "--batch_rows=10"}), log_,
                     {"OTEL_SDK_DISABLED=false", "OTEL_EXPORTER_OTLP_ENDPOINT=" + (*collector)->endpoint(),
                      "OTEL_BSP_SCHEDULE_DELAY=600000", "OTEL_SERVICE_NAME=", "OTEL_TRACES_SAMPLER="});
  ASSERT_TRUE(process.ok());
  ASSERT_EQ(*(*process)->Wait(kWait), 0) << (*process)->LogTail();
  EXPECT_EQ((*collector)->span_count(), 3u) << "exported before the process exited";
  std::multiset<std::string> names;
  for (const ecomstream::testing::CollectedSpan& span : (*collector)->Spans()) {
    names.insert(span.span.name());
    EXPECT_EQ(span.ResourceAttribute("service.name"), "ecomstream-processor");
  }
  EXPECT_EQ(names, (std::multiset<std::string>{"batch.send", "batch.send", "file.process"}));
}

TEST_F(ProcessorBinaryTest, EnvironmentVariablesSetFlags) {
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(Args({}), log_, {"ECOMSTREAM_MAX_IN_FLIGHT=0"});
  ASSERT_TRUE(process.ok());
  EXPECT_EQ(*(*process)->Wait(kWait), 2);
  EXPECT_THAT(Log(), HasSubstr("--max_in_flight must be in 1..1024"));
}

TEST_F(ProcessorBinaryTest, OnceCommitsEveryFileArchivesItBesideTheInboxAndExitsZero) {
  DropFile(inbox_, "events-1.csv", V3File(1, 5));
  DropFile(inbox_, "events-2.csv", V3File(11, 30) + "broken,row\n");
  EXPECT_EQ(Run(Args({"--once", "--batch_rows=10"})), 0) << Log();
  EXPECT_THAT(ListFiles(dir_.path() + "/archive"), ElementsAre("events-1.csv", "events-2.csv"));
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());
  EXPECT_THAT(Log(), HasSubstr("File committed file=events-2.csv rows=21 events=20 dead_letters=1 duplicates=0"));
  EXPECT_THAT(Log(), HasSubstr("reasons=wrong_column_count:1"));
  EXPECT_EQ(fake_.committed_files(), (std::set<std::string>{"events-1.csv", "events-2.csv"}));
}

// A processor may start before anything wrote to its inbox (a fresh container volume).
TEST_F(ProcessorBinaryTest, CreatesAMissingInboxArchiveAndQuarantine) {
  const std::string root = dir_.path() + "/fresh";
  EXPECT_EQ(Run({BinPath("ecomstream-processor"), "--input_dir=" + root + "/inbox", "--once",
                 "--writer_address=" + fake_.address()}),
            0)
      << Log();
  for (const char* sub : {"/inbox", "/archive", "/quarantine"}) {
    struct stat st;
    ASSERT_EQ(::stat((root + sub).c_str(), &st), 0) << sub;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << sub;
  }
  EXPECT_THAT(ListFiles(root + "/inbox"), IsEmpty());
}

TEST_F(ProcessorBinaryTest, OnceExitsOneWhenAFileCannotBeCommitted) {
  fake_.RejectFile("bad.csv");
  DropFile(inbox_, "bad.csv", V3File(1, 5));
  EXPECT_EQ(Run(Args({"--once", "--file_retry_interval=20ms"})), 1) << Log();
  EXPECT_THAT(Log(), HasSubstr("could not be committed: bad.csv"));
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("bad.csv"));
}

TEST_F(ProcessorBinaryTest, ServesReadinessAndDrainsOnSigterm) {
  const std::string metrics_address = absl::StrCat("127.0.0.1:", FreePort());
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(Args({"--metrics_address=" + metrics_address, "--delete_after_commit"}), log_);
  ASSERT_TRUE(process.ok());
  const std::string probe_log = dir_.path() + "/probe.log";
  const std::vector<std::string> probe = {BinPath("ecomstream-processor"), "--health_check=" + metrics_address};
  ASSERT_TRUE(WaitUntil([&] { return *RunToExit(probe, probe_log, kWait) == 0; }, kWait, absl::Milliseconds(20)))
      << (*process)->LogTail();
  // SIGTERM arrives while the file's only (last) batch is sent but not yet acknowledged.
  fake_.HoldAcks(true);
  DropFile(inbox_, "live.csv", V3File(1, 3));
  ASSERT_TRUE(fake_.WaitForReceived(1, kWait)) << (*process)->LogTail();
  ASSERT_TRUE(fake_.received().back().batch.last_batch());
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("live.csv"));
  (*process)->Signal(SIGTERM);
  // Draining: the processor waits for the held ack instead of exiting.
  EXPECT_EQ((*process)->Wait(absl::Milliseconds(300)).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(ListFiles(inbox_), ElementsAre("live.csv"));
  fake_.HoldAcks(false);
  EXPECT_EQ(*(*process)->Wait(kWait), 0);
  EXPECT_EQ(fake_.committed_files(), std::set<std::string>{"live.csv"});
  EXPECT_THAT(ListFiles(inbox_), IsEmpty());  // committed during the drain, then deleted
  EXPECT_THAT(ListFiles(dir_.path() + "/archive"), IsEmpty());
  EXPECT_THAT(Log(), HasSubstr("File committed file=live.csv"));
  EXPECT_THAT((*process)->LogTail(), HasSubstr("Processor stopped"));
}

TEST_F(ProcessorBinaryTest, HealthCheckFailsWhenTheWriterDoesNotAnswer) {
  const std::string metrics_address = absl::StrCat("127.0.0.1:", FreePort());
  fake_.Stop();  // nothing listens at the writer address
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(Args({"--metrics_address=" + metrics_address}), log_);
  ASSERT_TRUE(process.ok());
  const std::string probe_log = dir_.path() + "/probe.log";
  const std::vector<std::string> probe = {BinPath("ecomstream-processor"), "--health_check=" + metrics_address};
  // Alive (the status server answers) but not ready: /readyz says 503.
  ASSERT_TRUE(WaitUntil(
      [&] {
        ::unlink(probe_log.c_str());
        return *RunToExit(probe, probe_log, kWait) == 1 &&
               absl::StrContains(ReadFileToString(probe_log).value_or(""), "answered 503");
      },
      kWait, absl::Milliseconds(20)))
      << ReadFileToString(probe_log).value_or("");
  EXPECT_EQ(*RunToExit(probe, probe_log, kWait), 1);
  (*process)->Signal(SIGTERM);
  EXPECT_EQ(*(*process)->Wait(kWait), 0);
}

TEST_F(ProcessorBinaryTest, HealthCheckFailsWhenNoProcessorListens) {
  EXPECT_EQ(Run({BinPath("ecomstream-processor"), absl::StrCat("--health_check=127.0.0.1:", FreePort())}), 1);
}

}  // namespace
}  // namespace ecomstream::processor

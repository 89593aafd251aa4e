// Fault tests with the real binaries: concurrent processors, and services killed mid-stream.
// Each ends with the full reconciliation: nothing lost, nothing duplicated.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/pipeline_harness.h"

namespace ecomstream::testing {
namespace {

std::vector<std::string> GeneratorFlags(int total, int per_file, int seed) {
  return {absl::StrCat("--total_events=", total), absl::StrCat("--events_per_file=", per_file),
          "--events_per_second=0", "--anomaly_rate=0.02", absl::StrCat("--seed=", seed),
          "--schema_version=v3", "--file_interval=20m", kStartTimeFlag};
}

// Small batches and a short window make a file take many transactions, so a kill lands mid-file.
const std::vector<std::string> kSlowBatches = {"--batch_rows=100", "--max_in_flight=2"};

TEST(FaultE2eTest, TwoProcessorsOnOneInboxLoadEveryFileExactlyOnce) {
  Pipeline p("two_processors");
  // 24 files of one batch each: as many files to contend for as before, half the rows.
  auto truth = p.Generate(GeneratorFlags(4800, 200, 11));
  ASSERT_TRUE(truth.ok()) << truth.status();
  ASSERT_EQ(truth->files, 24);
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();

  auto first = p.StartProcessor({"--once", "--batch_rows=200"}, "processor-1");
  auto second = p.StartProcessor({"--once", "--batch_rows=200"}, "processor-2");
  ASSERT_TRUE(first.ok() && second.ok());
  auto first_code = (*first)->Wait(absl::Seconds(120));
  auto second_code = (*second)->Wait(absl::Seconds(120));
  ASSERT_TRUE(first_code.ok() && second_code.ok()) << p.Logs();
  EXPECT_EQ(*first_code, 0) << (*first)->LogTail();
  EXPECT_EQ(*second_code, 0) << (*second)->LogTail();

  ExpectReconciled(p, *truth);
  ExpectEachEventInsertedOnce(p, *truth);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.ingest_files WHERE claims <> 1"), 0)
      << "a file was claimed twice";
}

TEST(FaultE2eTest, ProcessorKilledMidFileAndRestartedFinishesItWithoutLossOrDuplicates) {
  Pipeline p("processor_killed");
  // 120 batches of 100 rows: the kill after 20 leaves most of the file to the restarted one.
  auto truth = p.Generate(GeneratorFlags(12000, 12000, 12));
  ASSERT_TRUE(truth.ok()) << truth.status();
  ASSERT_EQ(truth->files, 1);
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();

  // A short lease, so the restarted processor may take the dead one's file over within seconds.
  std::vector<std::string> flags = kSlowBatches;
  flags.push_back("--once");
  flags.push_back("--claim_lease=2s");
  auto processor = p.StartProcessor(flags, "processor-killed");
  ASSERT_TRUE(processor.ok());
  ASSERT_TRUE(WaitUntil([&] { return p.CommittedBatches() >= 20 || !(*processor)->Running(); }, absl::Seconds(60)))
      << p.Logs();
  (*processor)->Signal(SIGKILL);
  ASSERT_EQ(*(*processor)->Wait(absl::Seconds(10)), 128 + SIGKILL) << "the processor finished before the kill";
  const int64_t loaded = p.QueryInt("SELECT count(*) FROM ecomstream.events");
  ASSERT_GT(loaded, 0);
  ASSERT_LT(loaded, truth->valid_distinct_events) << "the file was fully loaded before the kill";
  ASSERT_EQ(ListFiles(p.inbox(), ".csv").size(), 1u) << "a file was archived before its last batch committed";
  ASSERT_EQ(ListFiles(p.archive(), ".csv").size(), 0u);

  const int64_t committed_through = p.QueryInt("SELECT committed_through FROM ecomstream.ingest_files");
  ASSERT_GT(committed_through, 0);

  auto code = p.RunProcessorOnce({}, absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << p.Logs();
  ASSERT_EQ(*code, 0) << p.Logs();
  ExpectReconciled(p, *truth);
  ExpectEachEventInsertedOnce(p, *truth);
  // The restarted processor took the file over (a second claim) and resumed after the rows the
  // killed one had committed: no batch of the second claim starts at or before that row.
  EXPECT_EQ(p.QueryInt("SELECT claims FROM ecomstream.ingest_files"), 2);
  EXPECT_EQ(p.QueryInt(absl::StrCat("SELECT min(first_row) FROM ecomstream.ingest_batches WHERE first_row > ",
                                    committed_through)),
            committed_through + 1);
}

// Generates 12,000 rows in files of `per_file`, kills the writer once 20 batches of 100 rows are
// committed, restarts it, and reconciles what the running processor (a window of `max_in_flight`
// batches) then finishes.
void KillWriterMidStreamAndReconcile(Pipeline& p, int per_file, int max_in_flight) {
  auto truth = p.Generate(GeneratorFlags(12000, per_file, 13));
  ASSERT_TRUE(truth.ok()) << truth.status();
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();

  const std::vector<std::string> flags = {"--batch_rows=100", absl::StrCat("--max_in_flight=", max_in_flight),
                                         "--once"};
  auto processor = p.StartProcessor(flags, "processor");
  ASSERT_TRUE(processor.ok());
  ASSERT_TRUE(WaitUntil([&] { return p.CommittedBatches() >= 20 || !(*processor)->Running(); }, absl::Seconds(60)))
      << p.Logs();
  p.KillWriter();
  ASSERT_LT(p.QueryInt("SELECT count(*) FROM ecomstream.events"), truth->valid_distinct_events)
      << "everything was loaded before the writer was killed";
  absl::SleepFor(absl::Seconds(1));
  EXPECT_TRUE((*processor)->Running()) << "the processor gave up while the writer was down\n" << (*processor)->LogTail();
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();

  auto code = (*processor)->Wait(absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << p.Logs();
  ASSERT_EQ(*code, 0) << p.Logs();
  ExpectReconciled(p, *truth);
  ExpectEachEventInsertedOnce(p, *truth);
}

TEST(FaultE2eTest, WriterKilledMidStreamAndRestartedLosesAndDuplicatesNothing) {
  Pipeline p("writer_killed");
  KillWriterMidStreamAndReconcile(p, /*per_file=*/3000, /*max_in_flight=*/2);
}

// Two files' batches committing at once (and each lane's next batch begun) when the writer dies:
// 300-row files, and a window of 6 batches holds two files.
TEST(FaultE2eTest, WriterWithTwoCommitLanesKilledMidStreamAndRestartedLosesAndDuplicatesNothing) {
  Pipeline p("writer_killed_lanes");
  p.set_writer_flags({"--commit_lanes=2"});
  KillWriterMidStreamAndReconcile(p, /*per_file=*/300, /*max_in_flight=*/6);
}

}  // namespace
}  // namespace ecomstream::testing

// PostgreSQL restarted under a running pipeline. Its own test binary: the cluster is shared by
// every test of a binary, and this test stops it.
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/pipeline_harness.h"
#include "tests/pg_fixture.h"

namespace ecomstream::testing {
namespace {

TEST(PgRestartE2eTest, DatabaseRestartedMidRunLosesAndDuplicatesNothing) {
  Pipeline p("pg_restart");
  auto truth = p.Generate({"--total_events=12000", "--events_per_file=3000", "--events_per_second=0",
                           "--anomaly_rate=0.02", "--seed=14", "--schema_version=v3", "--file_interval=20m",
                           kStartTimeFlag});
  ASSERT_TRUE(truth.ok()) << truth.status();
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();

  auto processor = p.StartProcessor({"--once", "--batch_rows=100", "--max_in_flight=2"}, "processor");
  ASSERT_TRUE(processor.ok());
  ASSERT_TRUE(WaitUntil([&] { return p.CommittedBatches() >= 20 || !(*processor)->Running(); }, absl::Seconds(60)))
      << p.Logs();
  ASSERT_LT(p.QueryInt("SELECT count(*) FROM ecomstream.events"), truth->valid_distinct_events)
      << "everything was loaded before the restart";
  ASSERT_TRUE(SharedPgCluster().Stop().ok());
  absl::SleepFor(absl::Seconds(2));
  EXPECT_TRUE((*processor)->Running()) << "the processor gave up while the database was down\n"
                                       << (*processor)->LogTail();
  EXPECT_TRUE(p.writer()->Running()) << "the writer died with the database\n" << p.writer()->LogTail();
  ASSERT_TRUE(SharedPgCluster().Restart().ok());

  auto code = (*processor)->Wait(absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << p.Logs();
  ASSERT_EQ(*code, 0) << p.Logs();
  ExpectReconciled(p, *truth);
  ExpectEachEventInsertedOnce(p, *truth);
}

}  // namespace
}  // namespace ecomstream::testing

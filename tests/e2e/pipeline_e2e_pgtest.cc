// The three real binaries against a real PostgreSQL: generator -> CSV files -> processor --once
// -> gRPC -> writer -> ecomstream.*, reconciled against the generator's ground truth and the
// archived source files.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/pipeline_harness.h"

namespace ecomstream::testing {
namespace {

// 4000 events in 8 files, 5% anomalies of every kind, reproducible.
std::vector<std::string> GeneratorFlags(const std::string& schema_version, int seed) {
  return {"--total_events=4000", "--events_per_file=500",   "--events_per_second=0",
          "--anomaly_rate=0.05", absl::StrCat("--seed=", seed), "--schema_version=" + schema_version,
          kStartTimeFlag};
}

class PipelineE2eTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PipelineE2eTest, LoadsExactlyTheGeneratedEventsAndDeadLettersThenArchivesEveryFile) {
  Pipeline p("pipeline_" + GetParam());
  auto truth = p.Generate(GeneratorFlags(GetParam(), 20240301));
  ASSERT_TRUE(truth.ok()) << truth.status();
  ASSERT_EQ(truth->events_written, 4000);
  ASSERT_EQ(truth->files, 8);
  ASSERT_EQ(ListFiles(p.inbox(), ".csv").size(), 8u);
  // The run must exercise the interesting paths, or the reconciliation proves little.
  ASSERT_GT(truth->expected_dead_letters, 0);
  ASSERT_GT(truth->exact_duplicates, 0);
  ASSERT_EQ(truth->valid_distinct_events, 4000 - truth->expected_dead_letters - truth->exact_duplicates);

  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();
  auto code = p.RunProcessorOnce();
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << p.Logs();
  ASSERT_EQ(*code, 0) << p.Logs();

  ExpectReconciled(p, *truth);
  ExpectEachEventInsertedOnce(p, *truth);
}

INSTANTIATE_TEST_SUITE_P(SchemaVersions, PipelineE2eTest, ::testing::Values("v3", "mixed"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Same content again, under the same names and under new names (no manifest): the file ledger
// knows the content fingerprints, so nothing in the database changes and the files are archived.
TEST(PipelineRedropE2eTest, RedroppedIdenticalFilesChangeNothingAndAreArchived) {
  Pipeline p("pipeline_redrop");
  auto truth = p.Generate(GeneratorFlags("mixed", 7));
  ASSERT_TRUE(truth.ok()) << truth.status();
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();
  auto code = p.RunProcessorOnce();
  ASSERT_TRUE(code.ok() && *code == 0) << p.Logs();
  ExpectReconciled(p, *truth);

  constexpr char kSnapshotSql[] = R"sql(
SELECT (SELECT md5(coalesce(string_agg(e::text, E'\n' ORDER BY e.event_id), '')) FROM ecomstream.events e)
    || ' ' || (SELECT count(*) FROM ecomstream.dead_letter_events)
    || ' ' || (SELECT count(*) FROM ecomstream.ingest_batches)
    || ' ' || (SELECT count(*) FROM ecomstream.ingest_files)
    || ' ' || (SELECT md5(coalesce(string_agg(s::text, E'\n' ORDER BY s::text), '')) FROM ecomstream.event_stats_hourly s))sql";
  auto before = p.Query(kSnapshotSql);
  ASSERT_TRUE(before.ok()) << before.status();

  const std::vector<std::string> archived = ListFiles(p.archive(), ".csv");
  ASSERT_EQ(archived.size(), 8u);
  for (size_t i = 0; i < archived.size(); ++i) {
    const std::string& name = archived[i];
    const bool same_name = i % 2 == 0;
    if (same_name) {
      const std::string manifest = p.archive() + "/" + name + ".manifest.json";
      if (ReadFileToString(manifest).ok()) {
        ASSERT_TRUE(CopyFileAtomically(manifest, p.inbox() + "/" + name + ".manifest.json").ok());
      }
    }
    ASSERT_TRUE(CopyFileAtomically(p.archive() + "/" + name, p.inbox() + "/" + (same_name ? "" : "again-") + name).ok());
  }
  ASSERT_EQ(ListFiles(p.inbox(), ".csv").size(), 8u);

  code = p.RunProcessorOnce();
  ASSERT_TRUE(code.ok() && *code == 0) << p.Logs();
  auto after = p.Query(kSnapshotSql);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *before) << "events, dead letters, batch ledger, file ledger or aggregates changed";
  EXPECT_EQ(ListFiles(p.inbox(), ".csv"), std::vector<std::string>{}) << "re-dropped files left in the inbox";
  EXPECT_EQ(ListFiles(p.quarantine()), std::vector<std::string>{}) << "re-dropped files quarantined";
  // Archived beside the first copies (a taken name gets a numeric suffix), none deleted.
  EXPECT_EQ(ListFiles(p.archive(), ".csv").size(), 16u);
}

}  // namespace
}  // namespace ecomstream::testing

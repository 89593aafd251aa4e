// Rules from a file and redrive with the real binaries: a rules file adds the categories the
// generator's unknown_category rows use, and redrive loads exactly those rows, once, even when
// killed midway. Also the processor's answers to hostile rules files and redrive flags, and the
// SIGHUP reload.
#include <httplib.h>
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/pipeline_harness.h"
#include "tests/pg_fixture.h"

namespace ecomstream::testing {
namespace {

using ::testing::HasSubstr;

// The categories the generator's unknown_category anomaly writes (anomaly_injector.cc).
constexpr char kRulesWithNewCategories[] = R"json({
  "version": "catalogue-2",
  "categories": [
    {"name": "spaceships", "minPrice": "1.00", "maxPrice": "99999.99"},
    {"name": "antiques", "minPrice": "1.00", "maxPrice": "99999.99"},
    {"name": "pet_rocks", "minPrice": "1.00", "maxPrice": "99999.99"},
    {"name": "timeshares", "minPrice": "1.00", "maxPrice": "99999.99"}
  ]
})json";

std::vector<std::string> GeneratorFlags(int total, int per_file, double rate, const std::string& kinds, int seed) {
  return {absl::StrCat("--total_events=", total), absl::StrCat("--events_per_file=", per_file),
          "--events_per_second=0", absl::StrCat("--anomaly_rate=", rate), "--anomaly_kinds=" + kinds,
          "--late_rate=0", absl::StrCat("--seed=", seed), "--schema_version=v3", "--file_interval=20m",
          kStartTimeFlag};
}

// Exactness after a redrive: every event counted once as inserted across both sources of the
// batch ledger, each file's live dead letters = dead_lettered - redriven, and event_stats_hourly
// equal to a fresh GROUP BY over events.
void ExpectLedgersExact(const Pipeline& p) {
  EXPECT_EQ(p.QueryInt("SELECT (SELECT sum(inserted) FROM ecomstream.ingest_batches) - "
                       "(SELECT count(*) FROM ecomstream.events)"),
            0);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.ingest_files f WHERE f.dead_lettered - f.redriven <> "
                       "(SELECT count(*) FROM ecomstream.dead_letter_events d "
                       " WHERE d.file_id = f.file_id AND d.redriven_at IS NULL)"),
            0);
  EXPECT_EQ(p.QueryInt(R"sql(
    WITH fresh AS (
      SELECT date_trunc('hour', event_time, 'UTC') AS hour, event_type, category, count(*) AS events,
             coalesce(sum(quantity), 0) AS quantity,
             coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
      FROM ecomstream.events GROUP BY 1, 2, 3)
    SELECT count(*) FROM (
      (SELECT hour, event_type, category, events, quantity, revenue FROM ecomstream.event_stats_hourly WHERE events > 0
       EXCEPT SELECT * FROM fresh)
      UNION ALL
      (SELECT * FROM fresh EXCEPT
       SELECT hour, event_type, category, events, quantity, revenue FROM ecomstream.event_stats_hourly)) d)sql"),
            0);
}

class RedriveE2eTest : public ::testing::Test {
 protected:
  std::string WriteRules(absl::string_view json) {
    EXPECT_TRUE(WriteFileAtomically(dir_.path(), "rules.json", json).ok());
    return dir_.path() + "/rules.json";
  }
  // Runs `processor --redrive` with `flags`; returns its exit code and its output in *log.
  int Redrive(Pipeline& p, const std::vector<std::string>& flags, std::string* log) {
    std::vector<std::string> argv = p.ProcessorArgs({"--redrive"});
    argv.insert(argv.end(), flags.begin(), flags.end());
    const std::string log_path = absl::StrCat(p.logs(), "/redrive-", ++runs_, ".log");
    absl::StatusOr<int> code = RunToExit(argv, log_path, absl::Seconds(120));
    *log = ReadFileToString(log_path).value_or("");
    EXPECT_TRUE(code.ok()) << code.status();
    return code.value_or(-1);
  }

  TempDir dir_;
  int runs_ = 0;
};

TEST_F(RedriveE2eTest, ARulesFileAddsTheCategoryAndRedriveLoadsTheRowsItRejectedExactlyOnce) {
  Pipeline p("redrive_category");
  auto truth = p.Generate(GeneratorFlags(8000, 1000, 0.06, "unknown_category,bad_price", 31));
  ASSERT_TRUE(truth.ok()) << truth.status();
  const int64_t unknown = truth->anomalies["unknown_category"];
  const int64_t bad_price = truth->anomalies["bad_price"];
  ASSERT_GT(unknown, 50);
  ASSERT_GT(bad_price, 50);
  ASSERT_EQ(truth->expected_dead_letters, unknown + bad_price);
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();
  auto once = p.RunProcessorOnce();
  ASSERT_TRUE(once.ok() && *once == 0) << p.Logs();
  ExpectReconciled(p, *truth);
  ASSERT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events WHERE reasons = '{unknown_category}'"),
            unknown);
  const std::string rules = WriteRules(kRulesWithNewCategories);

  // A dry run reports, and changes nothing.
  std::string log;
  ASSERT_EQ(Redrive(p, {"--rules_file=" + rules, "--dry_run"}, &log), 0) << log;
  EXPECT_THAT(log, HasSubstr(absl::StrCat("Dry run (nothing changed): run_id=")));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("rules_version=catalogue-2 examined=", unknown + bad_price,
                                          " passing=", unknown, " failing=", bad_price, " not_redrivable=0")));
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.events"), truth->valid_distinct_events);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events WHERE redrive_attempts > 0"), 0);

  // The redrive: the unknown_category rows land, counted against the generator's ground truth.
  ASSERT_EQ(Redrive(p, {"--rules_file=" + rules, "--redrive_reason=unknown_category", "--redrive_page_size=64"}, &log),
            0)
      << log;
  EXPECT_THAT(log, HasSubstr(absl::StrCat("writer: inserted=", unknown, " unchanged=0 still_failing=0 already_redriven=0")));
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.events"), truth->valid_distinct_events + unknown);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.events WHERE category IN "
                       "('spaceships', 'antiques', 'pet_rocks', 'timeshares')"),
            unknown);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events d JOIN ecomstream.v_events e "
                       "ON e.event_id = d.redriven_event_id WHERE d.redrive_rules_version = 'catalogue-2' "
                       "AND e.source_file = d.file_name AND d.reasons = '{unknown_category}'"),
            unknown);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events WHERE redriven_at IS NULL"), bad_price);
  EXPECT_EQ(p.QueryInt("SELECT sum(inserted) FROM ecomstream.ingest_batches WHERE source = 'redrive'"), unknown);
  EXPECT_EQ(p.QueryInt("SELECT sum(rows) FROM ecomstream.v_redrive_runs"), unknown);
  ExpectLedgersExact(p);

  // Twice: nothing more to load; the rows that still fail keep their place and reason.
  ASSERT_EQ(Redrive(p, {"--rules_file=" + rules}, &log), 0) << log;
  EXPECT_THAT(log, HasSubstr(absl::StrCat("examined=", bad_price, " passing=0 failing=", bad_price)));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("writer: inserted=0 unchanged=0 still_failing=", bad_price)));
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.events"), truth->valid_distinct_events + unknown);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events WHERE redriven_at IS NULL "
                       "AND reasons = '{bad_price}' AND redrive_attempts = 1"),
            bad_price);
  ExpectLedgersExact(p);
}

TEST_F(RedriveE2eTest, RedriveKilledMidwayAndRunAgainLoadsEveryRowExactlyOnce) {
  Pipeline p("redrive_killed");
  // About 3000 rows to redrive in pages of 50: the kill after 5 pages lands midway.
  auto truth = p.Generate(GeneratorFlags(12000, 4000, 0.25, "unknown_category", 32));
  ASSERT_TRUE(truth.ok()) << truth.status();
  const int64_t unknown = truth->anomalies["unknown_category"];
  ASSERT_GT(unknown, 1500);
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();
  auto once = p.RunProcessorOnce();
  ASSERT_TRUE(once.ok() && *once == 0) << p.Logs();
  const std::string rules = WriteRules(kRulesWithNewCategories);

  std::vector<std::string> argv = p.ProcessorArgs({"--redrive", "--rules_file=" + rules, "--redrive_page_size=50"});
  auto redrive = Process::Start(argv, p.logs() + "/redrive-killed.log");
  ASSERT_TRUE(redrive.ok());
  ASSERT_TRUE(WaitUntil([&] {
    return p.TryQueryInt("SELECT count(*) FROM ecomstream.ingest_batches WHERE source = 'redrive'").value_or(0) >= 5 ||
           !(*redrive)->Running();
  }, absl::Seconds(60))) << p.Logs();
  (*redrive)->Signal(SIGKILL);
  ASSERT_EQ(*(*redrive)->Wait(absl::Seconds(10)), 128 + SIGKILL) << "the redrive finished before the kill";
  // The writer may still be committing the page the killed client had sent: drain it (SIGTERM
  // finishes what is in flight, exit 0) and start it again before counting what the first run loaded.
  p.writer()->Signal(SIGTERM);
  ASSERT_EQ(*p.writer()->Wait(absl::Seconds(30)), 0) << p.Logs();
  ASSERT_TRUE(p.StartWriter().ok()) << p.Logs();
  const int64_t partial = p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events WHERE redriven_at IS NOT NULL");
  ASSERT_GT(partial, 0);
  ASSERT_LT(partial, unknown);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.events"), truth->valid_distinct_events + partial)
      << "a page was loaded without its marks, or marked without its events";

  std::string log;
  ASSERT_EQ(Redrive(p, {"--rules_file=" + rules}, &log), 0) << log;
  EXPECT_THAT(log, HasSubstr(absl::StrCat("writer: inserted=", unknown - partial, " unchanged=0 still_failing=0")));
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.events"), truth->valid_distinct_events + unknown);
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events WHERE redriven_at IS NULL"), 0);
  EXPECT_EQ(p.QueryInt("SELECT count(DISTINCT redriven_event_id) FROM ecomstream.dead_letter_events"), unknown);
  EXPECT_EQ(p.QueryInt("SELECT sum(inserted) FROM ecomstream.ingest_batches WHERE source = 'redrive'"), unknown);
  ExpectLedgersExact(p);
}

TEST_F(RedriveE2eTest, HostileRulesFilesAndRedriveFlagsStopWithOneClearLine) {
  Pipeline p("redrive_hostile");  // no writer: every one of these fails before connecting
  const std::string bad_rules = dir_.path() + "/bad.json";
  ASSERT_TRUE(WriteFileAtomically(dir_.path(), "bad.json",
                                  R"({"categories": [{"name": "toys", "minPrice": "9", "maxPrice": "1"}]})")
                  .ok());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--rules_file=" + bad_rules},
       "ecomstream-processor: rules file " + bad_rules + ": categories[0] (\"toys\"): min_price 9 is above max_price 1\n"},
      {{"--rules_file=" + dir_.path() + "/missing.json"},
       "ecomstream-processor: rules file " + dir_.path() + "/missing.json cannot be read: "},
      {{"--redrive_reason=unknown_category,everything"},
       "ecomstream-processor: --redrive_reason: \"everything\" is not a reason code (docs/rows.md lists them)\n"},
      {{"--redrive_from=yesterday"},
       "ecomstream-processor: --redrive_from=\"yesterday\" is not an RFC 3339 time after 1970 (2024-05-01T12:00:00Z)\n"},
      {{"--redrive_from=2024-05-02T00:00:00Z", "--redrive_to=2024-05-01T00:00:00Z"},
       "ecomstream-processor: --redrive_from must be before --redrive_to\n"},
      {{"--redrive_limit=-5"}, "ecomstream-processor: --redrive_limit must not be negative\n"},
      {{"--redrive_file=../../etc/passwd"},
       "ecomstream-processor: --redrive_file must be a file's base name (no '/', at most 1024 bytes)\n"},
      {{"--redrive_page_size=0"}, "ecomstream-processor: --redrive_page_size 0 is not in 1..1000\n"},
  };
  for (const auto& [flags, message] : cases) {
    std::string log;
    EXPECT_EQ(Redrive(p, flags, &log), 2) << log;
    EXPECT_THAT(log, ::testing::StartsWith(message)) << flags.front();
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  }
}

std::string Scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(5, 0);
  const auto response = client.Get("/metrics");
  return response ? response->body : "";
}

TEST_F(RedriveE2eTest, SighupReloadsTheRulesFileAndABadOneKeepsTheRulesInForce) {
  Pipeline p("rules_reload");
  const std::string rules = WriteRules(R"({"version": "one"})");
  const int port = FreePort();
  auto processor = p.StartProcessor({"--rules_file=" + rules, absl::StrCat("--metrics_address=127.0.0.1:", port)});
  ASSERT_TRUE(processor.ok());
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(Scrape(port), "rules_info{version=\"one\"} 1"); },
                        absl::Seconds(20)))
      << (*processor)->LogTail();

  WriteRules(R"({"version": "two", "countries": ["XYZ"]})");
  (*processor)->Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(Scrape(port), "rules_reloads_total{result=\"error\"} 1"); },
                        absl::Seconds(20)))
      << (*processor)->LogTail();
  EXPECT_THAT(Scrape(port), HasSubstr("ecomstream_processor_rules_info{version=\"one\"} 1\n"));
  EXPECT_THAT((*processor)->LogTail(), HasSubstr("countries[0] \\\"XYZ\\\""));

  WriteRules(R"({"version": "two", "countries": ["XK"]})");
  (*processor)->Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return absl::StrContains(Scrape(port), "rules_info{version=\"two\"} 1"); },
                        absl::Seconds(20)))
      << (*processor)->LogTail();
  EXPECT_THAT(Scrape(port), HasSubstr("ecomstream_processor_rules_info{version=\"one\"} 0\n"));
  auto code = (*processor)->Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << (*processor)->LogTail();
}

}  // namespace
}  // namespace ecomstream::testing

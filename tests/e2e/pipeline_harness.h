// The three real binaries against a database of the shared test cluster, and the checks that
// reconcile that database against the generator's ground truth and the source files.
//
//   Pipeline p("pipeline");                                   // own database + directories
//   GeneratorSummary truth = p.Generate({"--total_events=4000", ...}).value();
//   ASSERT_OK(p.StartWriter());
//   auto code = p.RunProcessorOnce();                          // --once: exit 0 when committed
//   ExpectReconciled(p, truth);
#ifndef ECOMSTREAM_TESTS_E2E_PIPELINE_HARNESS_H_
#define ECOMSTREAM_TESTS_E2E_PIPELINE_HARNESS_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::testing {

// Flags every e2e generator run shares: a simulated clock (so runs are reproducible) and no
// progress chatter.
inline constexpr char kStartTimeFlag[] = "--start_time=2024-03-01T12:00:00Z";

class Pipeline {
 public:
  // Creates a database `<name>_...` on SharedPgCluster(), a copy of one `ecomstream-writer
  // --migrate_only` migrated (once per cluster), and inbox/, archive/, quarantine/ and logs/
  // under a fresh temporary directory. Aborts the test binary if PostgreSQL cannot start.
  explicit Pipeline(absl::string_view name);
  ~Pipeline();

  const std::string& dsn() const { return dsn_; }
  const std::string& db() const { return db_; }
  std::string inbox() const { return dir_.path() + "/inbox"; }
  std::string archive() const { return dir_.path() + "/archive"; }
  std::string quarantine() const { return dir_.path() + "/quarantine"; }
  std::string logs() const { return dir_.path() + "/logs"; }
  std::string summary_path() const { return dir_.path() + "/summary.json"; }
  std::string writer_address() const;

  // Runs the generator into inbox() with `flags` plus --output_dir, --summary_file and --quiet;
  // returns its summary. kInternal with the log tail if it fails.
  absl::StatusOr<GeneratorSummary> Generate(const std::vector<std::string>& flags,
                                            absl::Duration timeout = absl::Seconds(60));

  // Starts the writer (--migrate, plus the flags of set_writer_flags) on writer_address() and
  // waits until --health_check says it is ready. The port stays the same across restarts.
  absl::Status StartWriter();
  // Flags every later StartWriter adds (restarts included).
  void set_writer_flags(std::vector<std::string> flags) { writer_flags_ = std::move(flags); }
  Process* writer() { return writer_.get(); }
  // SIGKILLs the writer (fault tests) and reaps it.
  void KillWriter();

  // Processor argv for this pipeline's directories and writer, plus `extra`.
  std::vector<std::string> ProcessorArgs(const std::vector<std::string>& extra) const;
  // Starts a processor; its log is logs()/<log_name>.log.
  absl::StatusOr<std::unique_ptr<Process>> StartProcessor(const std::vector<std::string>& extra,
                                                         absl::string_view log_name = "processor");
  // Runs `processor --once` to completion; returns its exit code.
  absl::StatusOr<int> RunProcessorOnce(const std::vector<std::string>& extra = {},
                                       absl::Duration timeout = absl::Seconds(90));

  // psql against this pipeline's database. Query returns unaligned tuples, '|' between fields.
  absl::StatusOr<std::string> Query(absl::string_view sql) const;
  // The single integer the query returns; -1 (and a test failure) if it is not one.
  int64_t QueryInt(absl::string_view sql) const;
  // The same without failing the test (for polling while a service or the database is down).
  absl::StatusOr<int64_t> TryQueryInt(absl::string_view sql) const;
  // Batches in the batch ledger (committed), or -1 while the database does not answer.
  int64_t CommittedBatches() const;

  // Every log of this pipeline's services, tail first, for failure messages.
  std::string Logs() const;

 private:
  TempDir dir_;
  std::string dsn_;
  std::string db_;
  int writer_port_ = 0;
  std::vector<std::string> writer_flags_;
  int writer_starts_ = 0;
  std::unique_ptr<Process> writer_;
};

// One data record of a source CSV, split per docs/rows.md: `row` counts records after the
// header from 1 (empty lines are not records), `line` is the physical line it starts on, `raw`
// its bytes without the terminator.
struct SourceRow {
  int64_t row = 0;
  int64_t line = 0;
  std::string raw;
  std::vector<std::string> fields;
  bool malformed = false;
};
struct SourceFile {
  std::string name;
  std::vector<std::string> header;  // trimmed, lower case
  std::vector<SourceRow> rows;
};
absl::StatusOr<SourceFile> ParseSourceCsv(absl::string_view name, absl::string_view content);

// What ecomstream.events must hold, computed from the source files and the dead-letter
// positions alone (see ExpectedEvents in the .cc for why this is exact).
struct ExpectedEvents {
  int64_t rows = 0;
  int64_t events = 0;
  int64_t exact_duplicates = 0;
  int64_t dead_letters = 0;
  std::string checksum;              // sha256 of the sorted canonical lines
  std::string dead_letter_checksum;  // sha256 of the dead-lettered records' raw bytes
};
absl::StatusOr<ExpectedEvents> ComputeExpectedEvents(
    const std::vector<SourceFile>& files, const std::set<std::pair<std::string, int64_t>>& dead_letter_rows);

// The same canonical checksums, computed by PostgreSQL over the tables.
std::string DatabaseEventChecksum(const Pipeline& p);
std::string DatabaseDeadLetterChecksum(const Pipeline& p);

// Asserts (gtest, non-fatal) everything docs/design.md promises after a complete load into an empty
// database: events == valid_distinct_events, dead letters == expected_dead_letters, no event id
// twice, the content checksum equals the one computed from the archived source files, dead
// letters byte-exact, duplicates and late events as generated, every file committed and
// archived with rows = inserted + updated + unchanged + duplicates + dead letters, the inbox and
// quarantine empty, and event_stats_hourly equal to a fresh GROUP BY over events.
void ExpectReconciled(const Pipeline& p, const GeneratorSummary& truth);

// Every event was inserted exactly once over all batches (none updated, none re-inserted):
// sum(inserted) over the batch ledger == valid_distinct_events and sum(updated) == 0.
void ExpectEachEventInsertedOnce(const Pipeline& p, const GeneratorSummary& truth);

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_E2E_PIPELINE_HARNESS_H_

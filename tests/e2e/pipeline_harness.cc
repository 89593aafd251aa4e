#include "tests/e2e/pipeline_harness.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/csv.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/pg_fixture.h"

namespace ecomstream::testing {
namespace {

// --- The SQL these checks run (schema `ecomstream`, sql/ migrations) ---------------------------

// One canonical line per event: fields the processor only trims (no case folding, synonyms or
// format conversion), so the same line can be computed from the source CSV without
// re-implementing the cleaner.
constexpr char kEventChecksumSql[] = R"sql(
SELECT encode(sha256(convert_to(coalesce(string_agg(line, E'\n' ORDER BY line COLLATE "C"), ''), 'UTF8')), 'hex')
FROM (SELECT event_id::text || '|' || user_id::text || '|' || coalesce(product_id::text, '') || '|'
             || coalesce(round(price * 100)::bigint::text, '') || '|' || source_file AS line
      FROM ecomstream.v_events) AS t)sql";

constexpr char kDeadLetterChecksumSql[] = R"sql(
SELECT encode(sha256(convert_to(coalesce(string_agg(line, E'\n' ORDER BY file COLLATE "C", row_no), ''), 'UTF8')), 'hex')
FROM (SELECT file_name AS file, row_number AS row_no,
             file_name || '|' || row_number::text || '|' || encode(raw, 'hex') AS line
      FROM ecomstream.dead_letter_events) AS t)sql";

constexpr char kDeadLetterRowsSql[] =
    "SELECT file_name, row_number FROM ecomstream.dead_letter_events";

// Files whose per-file ledger does not add up, or that are not committed.
constexpr char kUnbalancedFilesSql[] = R"sql(
SELECT count(*) FROM ecomstream.ingest_files
WHERE state <> 'committed'
   OR rows <> inserted + updated + unchanged + duplicates + dead_lettered)sql";

constexpr char kLedgerRowsSql[] = "SELECT coalesce(sum(rows), 0) FROM ecomstream.ingest_files";
constexpr char kLedgerDuplicatesSql[] = "SELECT coalesce(sum(duplicates), 0) FROM ecomstream.ingest_files";
constexpr char kCommittedFilesSql[] = "SELECT count(*) FROM ecomstream.ingest_files WHERE state = 'committed'";

// Rows on either side of event_stats_hourly vs. a fresh GROUP BY over events.
constexpr char kAggregateDriftSql[] = R"sql(
WITH fresh AS (
  SELECT date_trunc('hour', event_time, 'UTC') AS hour, event_type, category, count(*) AS events,
         coalesce(sum(quantity), 0) AS quantity,
         coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
  FROM ecomstream.events GROUP BY 1, 2, 3),
stored AS (
  SELECT hour, event_type, category, events, quantity, revenue
  FROM ecomstream.event_stats_hourly WHERE events <> 0)
SELECT (SELECT count(*) FROM (SELECT * FROM fresh EXCEPT SELECT * FROM stored) a)
     + (SELECT count(*) FROM (SELECT * FROM stored EXCEPT SELECT * FROM fresh) b))sql";

constexpr char kBatchRowsSql[] = "SELECT coalesce(sum(rows), 0) FROM ecomstream.ingest_batches";
constexpr char kBatchInsertedSql[] = "SELECT coalesce(sum(inserted), 0) FROM ecomstream.ingest_batches";
constexpr char kBatchUpdatedSql[] = "SELECT coalesce(sum(updated), 0) FROM ecomstream.ingest_batches";

// ------------------------------------------------------------------------------------------------

std::string Trim(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

bool IsNullToken(absl::string_view s) {
  return s.empty() || s == "NULL" || s == "N/A" || s == "null" || s == "n/a" || s == "None";
}

// "12", "12.5", "12.50" -> cents. False for anything else.
bool PriceCents(absl::string_view text, int64_t* cents) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits('.', 1));
  int64_t whole = 0;
  if (parts.first.empty() || !absl::SimpleAtoi(parts.first, &whole) || whole < 0) return false;
  std::string frac(parts.second);
  if (frac.size() > 2 || !std::all_of(frac.begin(), frac.end(), absl::ascii_isdigit)) return false;
  while (frac.size() < 2) frac += '0';
  *cents = whole * 100 + std::stoll(frac);
  return true;
}

}  // namespace

// --- Pipeline -----------------------------------------------------------------------------------

Pipeline::Pipeline(absl::string_view name) {
  for (const char* sub : {"inbox", "archive", "quarantine", "logs"}) dir_.Subdir(sub);
  // A copy of a database the writer binary migrated once per cluster: migrating every test's
  // database cost the server several times a copy. The writer still starts with --migrate (and
  // finds the schema current); migrating an empty database is the writer's own tests' job.
  const std::string template_log = logs() + "/writer-migrate-template.log";
  auto dsn = SharedPgCluster().CreateDatabaseFromTemplate(
      name, "ecomstream_e2e_migrated", [&template_log](const std::string& template_dsn) -> absl::Status {
        auto code = RunToExit({BinPath("ecomstream-writer"), "--pg_dsn=" + template_dsn, "--migrate_only"},
                              template_log, absl::Seconds(120));
        if (!code.ok()) return code.status();
        if (*code != 0) {
          return absl::InternalError(absl::StrCat("ecomstream-writer --migrate_only exited ", *code, ": ",
                                                  ReadFileToString(template_log).value_or("")));
        }
        return absl::OkStatus();
      });
  if (!dsn.ok()) {
    ADD_FAILURE() << "CreateDatabaseFromTemplate: " << dsn.status();
  } else {
    dsn_ = *dsn;
    db_ = dsn_.substr(dsn_.rfind("dbname=") + 7);
  }
  writer_port_ = FreePort();
}

Pipeline::~Pipeline() {
  if (writer_ != nullptr) (void)writer_->Stop();
  if (::testing::Test::HasFailure()) {
    std::fprintf(stderr, "---- service logs (%s) ----\n%s\n", dir_.path().c_str(), Logs().c_str());
  }
}

std::string Pipeline::writer_address() const { return absl::StrCat("127.0.0.1:", writer_port_); }

absl::StatusOr<GeneratorSummary> Pipeline::Generate(const std::vector<std::string>& flags,
                                                   absl::Duration timeout) {
  std::vector<std::string> argv = {BinPath("ecomstream-generator"), "--output_dir=" + inbox(),
                                   "--summary_file=" + summary_path(), "--quiet"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const std::string log = logs() + "/generator.log";
  auto code = RunToExit(argv, log, timeout);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    auto text = ReadFileToString(log);
    return absl::InternalError(absl::StrCat("generator exited ", *code, ": ", text.ok() ? *text : ""));
  }
  return ReadGeneratorSummary(summary_path());
}

absl::Status Pipeline::StartWriter() {
  std::vector<std::string> argv = {BinPath("ecomstream-writer"), "--listen_address=" + writer_address(),
                                   "--pg_dsn=" + dsn_, "--migrate",
                                   absl::StrCat("--metrics_address=127.0.0.1:", FreePort())};
  argv.insert(argv.end(), writer_flags_.begin(), writer_flags_.end());
  auto started = Process::Start(argv, logs() + "/writer.log");
  if (!started.ok()) return started.status();
  writer_ = std::move(*started);
  ++writer_starts_;
  const std::string check_log = logs() + "/writer-health-check.log";
  bool ready = WaitUntil(
      [&] {
        if (!writer_->Running()) return true;
        auto code = RunToExit({BinPath("ecomstream-writer"), "--health_check=" + writer_address()}, check_log,
                              absl::Seconds(10));
        return code.ok() && *code == 0;
      },
      absl::Seconds(30), absl::Milliseconds(100));
  if (!writer_->Running()) {
    return absl::InternalError(absl::StrCat("writer exited during start-up: ", writer_->LogTail()));
  }
  if (!ready) return absl::DeadlineExceededError(absl::StrCat("writer not ready after 30 s: ", writer_->LogTail()));
  return absl::OkStatus();
}

void Pipeline::KillWriter() {
  if (writer_ == nullptr) return;
  writer_->Signal(SIGKILL);
  (void)writer_->Wait(absl::Seconds(10));
}

std::vector<std::string> Pipeline::ProcessorArgs(const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {BinPath("ecomstream-processor"), "--input_dir=" + inbox(),
                                   "--archive_dir=" + archive(), "--quarantine_dir=" + quarantine(),
                                   "--writer_address=" + writer_address(),
                                   absl::StrCat("--metrics_address=127.0.0.1:", FreePort())};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

absl::StatusOr<std::unique_ptr<Process>> Pipeline::StartProcessor(const std::vector<std::string>& extra,
                                                                 absl::string_view log_name) {
  return Process::Start(ProcessorArgs(extra), absl::StrCat(logs(), "/", log_name, ".log"));
}

absl::StatusOr<int> Pipeline::RunProcessorOnce(const std::vector<std::string>& extra, absl::Duration timeout) {
  std::vector<std::string> flags = extra;
  flags.push_back("--once");
  return RunToExit(ProcessorArgs(flags), logs() + "/processor.log", timeout);
}

absl::StatusOr<std::string> Pipeline::Query(absl::string_view sql) const {
  auto out = SharedPgCluster().Psql(db_, sql);  // unaligned: fields separated by '|'
  if (!out.ok()) return out.status();
  return std::string(absl::StripTrailingAsciiWhitespace(*out));
}

int64_t Pipeline::QueryInt(absl::string_view sql) const {
  auto out = SharedPgCluster().Psql(db_, sql);
  int64_t value = -1;
  if (!out.ok()) {
    ADD_FAILURE() << out.status() << "\nquery: " << sql;
    return -1;
  }
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*out), &value)) {
    ADD_FAILURE() << "not an integer: '" << *out << "'\nquery: " << sql;
    return -1;
  }
  return value;
}

absl::StatusOr<int64_t> Pipeline::TryQueryInt(absl::string_view sql) const {
  auto out = SharedPgCluster().Psql(db_, sql);
  if (!out.ok()) return out.status();
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*out), &value)) {
    return absl::InternalError(absl::StrCat("not an integer: ", *out));
  }
  return value;
}

int64_t Pipeline::CommittedBatches() const {
  auto n = TryQueryInt("SELECT count(*) FROM ecomstream.ingest_batches");
  return n.ok() ? *n : -1;
}

std::string Pipeline::Logs() const {
  std::string all;
  for (const std::string& name : ListFiles(logs(), ".log")) {
    auto text = ReadFileToString(logs() + "/" + name);
    if (!text.ok()) continue;
    absl::string_view tail = *text;
    if (tail.size() > 4000) tail = tail.substr(tail.size() - 4000);
    absl::StrAppend(&all, "== ", name, " (last 4000 bytes)\n", tail, "\n");
  }
  return all;
}

// --- Source files -------------------------------------------------------------------------------

// Records as common/csv.h splits them: the plain reading, independent of the processor's
// streaming reader whose results this checks.
absl::StatusOr<SourceFile> ParseSourceCsv(absl::string_view name, absl::string_view content) {
  SourceFile file;
  file.name = std::string(name);
  std::vector<CsvTextRecord> records = SplitCsvRecords(content);
  if (records.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": no header"));
  if (records[0].malformed) return absl::InvalidArgumentError(absl::StrCat(name, ": malformed header"));
  for (const auto& f : records[0].fields) file.header.push_back(absl::AsciiStrToLower(Trim(f)));
  for (size_t i = 1; i < records.size(); ++i) {
    CsvTextRecord& record = records[i];
    file.rows.push_back(SourceRow{static_cast<int64_t>(i), record.line, std::move(record.raw),
                                  std::move(record.fields), record.malformed});
  }
  return file;
}

// Exact, and independent of the processor's cleaning code: the generator's ground truth fixes
// how many rows are dead letters; the writer's dead_letter_events says which (file, row) they
// are. Every other row is valid, and the first copy of each distinct record is an event (a later
// byte-identical copy is an exact duplicate). For those rows this computes a canonical line
// from fields the processor only trims (event_id lower-cased, user_id, product_id, price in
// cents, file name), and the database must hold exactly the same set of lines. A lost, invented,
// duplicated or mis-attributed event changes the checksum; so does a dead letter recorded at the
// wrong row (its row would then be counted here as an event, or fail the row checks below).
absl::StatusOr<ExpectedEvents> ComputeExpectedEvents(
    const std::vector<SourceFile>& files, const std::set<std::pair<std::string, int64_t>>& dead_letter_rows) {
  ExpectedEvents expected;
  std::vector<std::string> lines;
  std::vector<std::tuple<std::string, int64_t, std::string>> dead;
  for (const SourceFile& file : files) {
    auto column = [&](absl::string_view name) -> int {
      auto it = std::find(file.header.begin(), file.header.end(), name);
      return it == file.header.end() ? -1 : static_cast<int>(it - file.header.begin());
    };
    const int event_id = column("event_id"), user_id = column("user_id"), product_id = column("product_id"),
              price = column("price");
    if (event_id < 0 || user_id < 0 || product_id < 0 || price < 0) {
      return absl::InvalidArgumentError(absl::StrCat(file.name, ": header lacks v1 columns"));
    }
    std::set<std::string> kept_records;
    for (const SourceRow& row : file.rows) {
      ++expected.rows;
      if (dead_letter_rows.count({file.name, row.row}) > 0) {
        ++expected.dead_letters;
        dead.emplace_back(file.name, row.row, row.raw);
        continue;
      }
      if (row.malformed || row.fields.size() != file.header.size()) {
        return absl::FailedPreconditionError(absl::StrCat(file.name, " row ", row.row, " (line ", row.line,
                                                          ") is malformed but is not a dead letter: ", row.raw));
      }
      if (!kept_records.insert(row.raw).second) {
        ++expected.exact_duplicates;
        continue;
      }
      std::string id = absl::AsciiStrToLower(Trim(row.fields[event_id]));
      int64_t user = 0, product = 0, cents = 0;
      std::string product_text = Trim(row.fields[product_id]), price_text = Trim(row.fields[price]);
      if (!absl::SimpleAtoi(Trim(row.fields[user_id]), &user) ||
          (!IsNullToken(product_text) && !absl::SimpleAtoi(product_text, &product)) ||
          (!IsNullToken(price_text) && !PriceCents(price_text, &cents))) {
        return absl::FailedPreconditionError(
            absl::StrCat(file.name, " row ", row.row, " is not a dead letter but has an invalid id or price: ", row.raw));
      }
      lines.push_back(absl::StrCat(id, "|", user, "|", IsNullToken(product_text) ? "" : absl::StrCat(product), "|",
                                   IsNullToken(price_text) ? "" : absl::StrCat(cents), "|", file.name));
    }
  }
  expected.events = static_cast<int64_t>(lines.size());
  std::sort(lines.begin(), lines.end());
  expected.checksum = Sha256Hex(absl::StrJoin(lines, "\n"));
  std::sort(dead.begin(), dead.end());
  std::vector<std::string> dead_lines;
  for (const auto& [file, row, raw] : dead) {
    dead_lines.push_back(absl::StrCat(file, "|", row, "|", absl::BytesToHexString(raw)));
  }
  expected.dead_letter_checksum = Sha256Hex(absl::StrJoin(dead_lines, "\n"));
  return expected;
}

std::string DatabaseEventChecksum(const Pipeline& p) {
  auto out = p.Query(kEventChecksumSql);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

std::string DatabaseDeadLetterChecksum(const Pipeline& p) {
  auto out = p.Query(kDeadLetterChecksumSql);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

void ExpectReconciled(const Pipeline& p, const GeneratorSummary& truth) {
  // The database against the generator's ground truth.
  const int64_t events = p.QueryInt("SELECT count(*) FROM ecomstream.events");
  EXPECT_EQ(events, truth.valid_distinct_events) << "ecomstream.events vs. valid_distinct_events";
  EXPECT_EQ(p.QueryInt("SELECT count(DISTINCT event_id) FROM ecomstream.events"), events) << "an event_id twice";
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.dead_letter_events"), truth.expected_dead_letters)
      << "dead letters vs. expected_dead_letters";
  EXPECT_EQ(p.QueryInt("SELECT count(*) FROM ecomstream.events WHERE late_arrival"), truth.late_events);

  // The files: all committed and archived, nothing left behind or quarantined.
  EXPECT_EQ(ListFiles(p.inbox(), ".csv"), std::vector<std::string>{}) << "files left in the inbox";
  EXPECT_EQ(ListFiles(p.quarantine()), std::vector<std::string>{}) << "files quarantined";
  const std::vector<std::string> archived = ListFiles(p.archive(), ".csv");
  EXPECT_EQ(static_cast<int64_t>(archived.size()), truth.files) << "archived files";
  EXPECT_EQ(p.QueryInt(kCommittedFilesSql), truth.files) << "committed files in ingest_files";

  // Every row ends in exactly one place, per file.
  EXPECT_EQ(p.QueryInt(kUnbalancedFilesSql), 0)
      << "files not committed or with rows != inserted + updated + unchanged + duplicates + dead_lettered";
  EXPECT_EQ(p.QueryInt(kLedgerRowsSql), truth.events_written) << "rows read per the file ledger";
  EXPECT_EQ(p.QueryInt(kLedgerDuplicatesSql), truth.exact_duplicates) << "duplicates per the file ledger";
  EXPECT_EQ(p.QueryInt(kBatchRowsSql), truth.events_written) << "rows per the batch ledger (a row committed twice?)";

  // The aggregates equal a fresh GROUP BY.
  EXPECT_EQ(p.QueryInt(kAggregateDriftSql), 0) << "event_stats_hourly differs from GROUP BY over events";

  // Content: the exact events and dead letters, from the archived files.
  std::vector<SourceFile> sources;
  for (const std::string& name : archived) {
    auto content = ReadFileToString(p.archive() + "/" + name);
    ASSERT_TRUE(content.ok()) << content.status();
    auto parsed = ParseSourceCsv(name, *content);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    sources.push_back(std::move(*parsed));
  }
  auto rows = p.Query(kDeadLetterRowsSql);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::set<std::pair<std::string, int64_t>> dead_rows;
  for (absl::string_view line : absl::StrSplit(*rows, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> parts = absl::StrSplit(line, absl::MaxSplits('|', 1));
    int64_t row = 0;
    ASSERT_TRUE(absl::SimpleAtoi(parts.second, &row)) << line;
    dead_rows.insert({parts.first, row});
  }
  auto expected = ComputeExpectedEvents(sources, dead_rows);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(expected->rows, truth.events_written) << "rows in the archived files";
  EXPECT_EQ(expected->dead_letters, truth.expected_dead_letters) << "dead letters found at distinct source rows";
  EXPECT_EQ(expected->exact_duplicates, truth.exact_duplicates) << "exact duplicates in the archived files";
  EXPECT_EQ(expected->events, truth.valid_distinct_events) << "events computed from the archived files";
  EXPECT_EQ(DatabaseEventChecksum(p), expected->checksum) << "content of ecomstream.events";
  EXPECT_EQ(DatabaseDeadLetterChecksum(p), expected->dead_letter_checksum) << "dead letters byte-exact";
}

void ExpectEachEventInsertedOnce(const Pipeline& p, const GeneratorSummary& truth) {
  EXPECT_EQ(p.QueryInt(kBatchInsertedSql), truth.valid_distinct_events) << "sum(inserted) over the batch ledger";
  EXPECT_EQ(p.QueryInt(kBatchUpdatedSql), 0) << "sum(updated) over the batch ledger";
}

}  // namespace ecomstream::testing

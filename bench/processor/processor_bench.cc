// processor_bench: the processor's per-row CPU on one core, on representative v3 rows generated
// here (2% anomalies: bad values, wrong column counts, malformed quoting, exact and conflicting
// duplicates; plus cleanable noise: case, synonyms, quoted fields, other timestamp formats).
//
//   build/bin/processor_bench                      all stages
//   build/bin/processor_bench --benchmark_filter=ParseCleanValidate$
//
// items_per_second is rows/s. Each iteration is one pass over a 100,000-row file held in memory
// (no disk), through a fresh reader and validator, exactly as a file job does it.
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "benchmark/benchmark.h"
#include "common/csv_schema.h"
#include "common/time_util.h"
#include "common/tracer.h"
#include "common/uuid.h"
#include "services/processor/batcher.h"
#include "services/processor/csv_reader.h"
#include "services/processor/earlier_rows.h"
#include "services/processor/file_job.h"
#include "services/processor/row_validator.h"
#include "services/processor/schema_registry.h"

namespace ecomstream::processor {
namespace {

constexpr int kRows = 100000;
constexpr int64_t kReferenceUs = 1795000000LL * 1000000;  // the file's time
constexpr int64_t kHourUs = 3600LL * 1000000;

const char* const kTypes[] = {"view", "view", "view", "search", "add_to_cart", "remove_from_cart", "wishlist",
                              "purchase"};
const char* const kCategories[] = {"electronics", "computers", "phones", "clothing", "shoes", "home_garden",
                                   "books", "sports", "beauty", "toys", "grocery", "automotive"};
const int64_t kFirstProduct[] = {100000, 110000, 120000, 200000, 210000, 300000,
                                 400000, 500000, 600000, 700000, 800000, 900000};
const char* const kSegments[] = {"new", "returning", "premium", "inactive", "at_risk"};
const char* const kDevices[] = {"desktop", "mobile", "tablet"};
const char* const kBrowsers[] = {"chrome", "safari", "firefox", "edge"};
const char* const kCountries[] = {"US", "DE", "GB", "FR", "BR", "IN", "JP", "CA"};
const char* const kCities[] = {"New York", "Berlin", "London", "Paris", "\"Sao Paulo, SP\"", "Mumbai", "Tokyo",
                               "Toronto"};
const char* const kReferrers[] = {"direct", "google", "facebook", "email", "instagram"};

// A v3 file: header plus kRows rows, 2% of them anomalies, some others with cleanable noise.
std::string MakeFile() {
  std::mt19937_64 rng(7);
  std::string file = absl::StrCat(absl::StrJoin(csv_schema::kColumnNames, ","), "\n");  // the v3 header
  std::string previous;
  for (int i = 0; i < kRows; ++i) {
    const int kind = static_cast<int>(rng() % 1000);  // < 20: an anomaly
    const char* type = kTypes[rng() % 8];
    const bool search = std::string(type) == "search";
    const int c = static_cast<int>(rng() % 12);
    std::string row;
    AppendUuid(UuidBytes(UuidV7(kReferenceUs / 1000 - i, rng(), rng())), &row);
    absl::StrAppend(&row, ",", rng() % 500000 + 1, ",");
    if (kind >= 20 && kind < 60) {
      absl::StrAppend(&row, kind % 2 ? "Add To Cart" : "page-view", ",");  // synonyms, case
      type = "x";
    } else {
      absl::StrAppend(&row, type, ",");
    }
    if (search && type[0] == 's') {
      row += ",,";
    } else {
      absl::StrAppend(&row, kFirstProduct[c] + static_cast<int64_t>(rng() % 300), ",", rng() % 50000 + 100, ".",
                      absl::Dec(rng() % 100, absl::kZeroPad2), ",");
    }
    const int64_t event_us = kReferenceUs - static_cast<int64_t>(rng() % (30 * 60)) * 1000000;
    if (kind >= 60 && kind < 80) {
      absl::StrAppend(&row, event_us / 1000000);  // epoch seconds
    } else {
      row += FormatTimestampMicros(event_us);
    }
    row += ',';
    AppendUuid(UuidBytes(UuidV4(rng(), rng())), &row);
    absl::StrAppend(&row, ",", search ? "" : kCategories[c], ",", 1 + rng() % 3, ",", kSegments[rng() % 5], ",",
                    kind >= 80 && kind < 100 ? "Mobile" : kDevices[rng() % 3], ",", kBrowsers[rng() % 4], ",",
                    kCountries[rng() % 8], ",", kCities[rng() % 8], ",", kReferrers[rng() % 5], ",",
                    rng() % 4 == 0 ? "" : "spring_sale_2026");
    // The 2%: one anomaly per row, spread over the reasons.
    switch (kind) {
      case 0: case 1: row.replace(row.find(','), 0, "-x"); break;                  // bad_event_id
      case 2: case 3: row.insert(row.find(',') + 1, "-"); break;                   // bad_user_id
      case 4: case 5: row += ",extra"; break;                                      // wrong_column_count
      case 6: case 7: row.insert(0, "\"a\"b,"); break;                             // malformed_quoting
      case 8: case 9: row = previous.empty() ? row : previous; break;              // exact duplicate
      case 10: case 11: if (!previous.empty()) row = previous.substr(0, 37) + row.substr(37); break;  // conflict
      case 12: case 13: row.replace(row.find(",US,") != std::string::npos ? row.find(",US,") : 0, 4, ",ZZ,"); break;
      case 14: case 15: row.insert(row.find(",spring") == std::string::npos ? row.size() : row.find(",spring"), "x"); break;
      case 16: case 17: row.replace(row.find(',', 38) + 1, 0, "9"); break;         // bad_user_id / mixed
      case 18: case 19: row += std::string("\xff", 1); break;                      // invalid_utf8
      default: break;
    }
    previous = row;
    file += row;
    file += '\n';
  }
  return file;
}

const std::string& File() {
  static const std::string* file = new std::string(MakeFile());
  return *file;
}

// One pass over the file as a file job makes it: a fresh reader, the header, a fresh validator
// that reads earlier rows again (here from memory) for its duplicate check.
struct FilePass {
  explicit FilePass(const std::string& file)
      : source(file),
        reader(&source, CsvReaderOptions{}),
        earlier(
            [&file](uint64_t offset) -> absl::StatusOr<std::unique_ptr<ByteSource>> {
              return std::make_unique<StringByteSource>(absl::string_view(file).substr(offset));
            },
            CsvReaderOptions{}) {
    (void)*reader.Next(&record);
    RowValidatorOptions options{kReferenceUs, kHourUs, kHourUs};
    options.earlier_rows = &earlier;
    options.file_bytes = static_cast<int64_t>(file.size());
    validator.emplace(*SchemaRegistry::Detect(record.fields), options);
  }
  bool Next() { return *reader.Next(&record); }

  StringByteSource source;
  CsvReader reader;
  RereadRows earlier;
  CsvRecord record;
  std::optional<RowValidator> validator;
};

void BM_CsvReader(benchmark::State& state) {
  const std::string& file = File();
  int64_t records = 0;
  for (auto _ : state) {
    StringByteSource source(file);
    CsvReader reader(&source, CsvReaderOptions{});
    CsvRecord record;
    while (*reader.Next(&record)) ++records;
  }
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(file.size()));
}
BENCHMARK(BM_CsvReader)->Unit(benchmark::kMillisecond);

void BM_ParseCleanValidate(benchmark::State& state) {
  const std::string& file = File();
  int64_t rows = 0;
  RowCounts totals;
  for (auto _ : state) {
    FilePass pass(file);
    int64_t row = 0;
    while (pass.Next()) benchmark::DoNotOptimize(pass.validator->Validate(pass.record, ++row));
    rows += row;
    totals = pass.validator->counts();
  }
  state.SetItemsProcessed(rows);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(file.size()));
  state.counters["anomaly_pct"] =
      100.0 * static_cast<double>(totals.dead_letters + totals.duplicates) / static_cast<double>(totals.rows);
}
BENCHMARK(BM_ParseCleanValidate)->Unit(benchmark::kMillisecond);

// Everything a file job does per row before gRPC: also the Event/DeadLetter messages in arena
// batches of 5,000 rows.
void BM_ParseCleanValidateBatch(benchmark::State& state) {
  const std::string& file = File();
  int64_t rows = 0;
  int64_t wire_bytes = 0;
  // One batch.send span per 5,000 rows is noise here; a disabled tracer keeps the exporter out.
  const std::unique_ptr<tracing::Tracer> tracer = tracing::Tracer::Disabled();
  for (auto _ : state) {
    FilePass pass(file);
    Batcher batcher(BatcherOptions{5000, 3 << 20, absl::Hours(1)}, FileBatchInfo{"sha256:x", "f.csv"}, 1,
                    tracer.get());
    int64_t row = 0;
    while (pass.Next()) {
      const RowOutcome outcome = pass.validator->Validate(pass.record, ++row);
      if (batcher.Full()) wire_bytes += static_cast<int64_t>(batcher.Cut(false)->batch().ByteSizeLong());
      AddValidatedRow(*pass.validator, outcome, pass.record.raw.size(), &batcher);
    }
    wire_bytes += static_cast<int64_t>(batcher.Cut(true, row)->batch().ByteSizeLong());
    rows += row;
  }
  state.SetItemsProcessed(rows);
  state.counters["wire_bytes_per_row"] = static_cast<double>(wire_bytes) / static_cast<double>(rows);
}
BENCHMARK(BM_ParseCleanValidateBatch)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ecomstream::processor

BENCHMARK_MAIN();

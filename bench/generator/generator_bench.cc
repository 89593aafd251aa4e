// Generator throughput on one core, stage by stage, then the whole generator writing real
// files (fsync + rename per file, manifests on) into a temp directory:
//
//   build/bin/generator_bench [--events=2000000] [--events_per_file=100000] [--dir=/tmp]
//
// Prints one line per stage: events/s and MB/s of CSV produced.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time_util.h"
#include "services/generator/anomaly_injector.h"
#include "services/generator/csv_row_encoder.h"
#include "services/generator/generator.h"
#include "services/generator/shopper_model.h"

ABSL_FLAG(int64_t, events, 2'000'000, "Events per measurement.");
ABSL_FLAG(int64_t, events_per_file, 100'000, "Rows per file for the end-to-end measurement.");
ABSL_FLAG(std::string, dir, "", "Where to write (default: $TMPDIR or /tmp); removed afterwards.");

namespace ecomstream::generator {
namespace {

void Report(const char* stage, int64_t events, int64_t bytes, int64_t micros) {
  const double seconds = static_cast<double>(micros) / 1e6;
  std::printf("%-52s %10.0f events/s %8.1f MB/s  (%lld events, %.2f s)\n", stage, events / seconds,
              bytes > 0 ? bytes / seconds / 1e6 : 0.0, static_cast<long long>(events), seconds);
}

void InMemory(int64_t events) {
  ShopperModel model(1);
  ShopperEvent event;
  int64_t start = MonotonicMicros();
  for (int64_t i = 0; i < events; ++i) model.Next(1'777'000'000'000 + i / 1000, &event);
  Report("shopper_model", events, 0, MonotonicMicros() - start);

  AnomalyInjector injector(2, AnomalyInjector::Options{});
  CsvRowEncoder encoder(ColumnsOf(SchemaVersion::kV3), false);
  RowPlan plan;
  std::string chunk;
  chunk.reserve(1 << 20);
  int64_t bytes = 0;
  injector.BeginFile(SchemaVersion::kV3);
  start = MonotonicMicros();
  for (int64_t i = 0; i < events; ++i) {
    model.Next(1'777'000'000'000 + i / 1000, &event);
    const RowVerdict verdict = injector.Apply(&event, &plan);
    const size_t at = chunk.size();
    const size_t length = encoder.AppendRow(event, plan, &chunk);
    if (verdict.outcome == RowOutcome::kEvent) injector.Remember(event, absl::string_view(chunk).substr(at, length));
    if (chunk.size() > (256 << 10)) {
      bytes += static_cast<int64_t>(chunk.size());
      chunk.clear();
    }
  }
  bytes += static_cast<int64_t>(chunk.size());
  Report("+ anomaly_injector (2%) + csv_row_encoder, v3", events, bytes, MonotonicMicros() - start);
}

int EndToEnd(int64_t events, int64_t per_file, const std::string& base) {
  const std::string dir = absl::StrCat(base, "/generator_bench_", getpid());
  GeneratorConfig config;
  config.output_dir = dir;
  config.total_events = events;
  config.events_per_file = per_file;
  config.seed = 3;
  config.start_time = "2026-05-01T12:00:00Z";
  config.file_interval = absl::Minutes(20);  // files close by --events_per_file, not by simulated age
  config.quiet = true;
  config.background_io = true;  // as ecomstream-generator writes
  metrics::Registry registry;
  auto generator = Generator::Create(config, SystemClock::Get(), &registry);
  if (!generator.ok()) {
    std::fprintf(stderr, "%s\n", generator.status().ToString().c_str());
    return 1;
  }
  const int64_t start = MonotonicMicros();
  const absl::StatusOr<RunSummary> run = (*generator)->Run();
  const int64_t micros = MonotonicMicros() - start;
  (void)std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
  if (!run.ok()) {
    std::fprintf(stderr, "%s\n", run.status().ToString().c_str());
    return 1;
  }
  Report(absl::StrCat("generator -> files (v3, 2% anomalies, ", run->files, " files)").c_str(), run->truth.rows,
         run->bytes, micros);
  return 0;
}

}  // namespace
}  // namespace ecomstream::generator

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  ecomstream::SetMinLogLevel(ecomstream::LogLevel::kWarning);
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) dir = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
  const int64_t events = absl::GetFlag(FLAGS_events);
  ecomstream::generator::InMemory(events);
  return ecomstream::generator::EndToEnd(events, absl::GetFlag(FLAGS_events_per_file), dir);
}

// The generator: shoppers (shopper_model) -> anomalies (anomaly_injector) -> CSV records
// (csv_row_encoder) -> files with manifests (csv_file_sink), paced by rate_limiter, with the
// run's exact ground truth (ground_truth) in every manifest and in --summary_file.
//
// Time. Live (no start_time): events are stamped with `clock`. Simulated (start_time set):
// event i is stamped start_time + i / events_per_second (1 ms apart when the rate is 0), so a
// seed and a start time reproduce byte-identical files and manifests whatever the real pace;
// duration and file_interval are measured on the same simulated clock. Pacing always uses
// `clock`.
//
// Files. A file closes after events_per_file rows, when its first row is file_interval old, at
// the end of the run, or on Stop(). Names sort oldest first:
// events-<UTC yyyymmddThhmmss>-<6-digit sequence>-<8 hex run id>.csv. A file's
// created_time_us is the generator time at its close: every normal row lies within
// [created - file_interval, created], and file_interval is at most 20 minutes, so only
// late_event rows are older than the processor's 1 h late watermark.
//
// Tracing. Each file is one trace: a `file.write` span (PRODUCER) starts when the file is opened
// (just before its first row) and ends after the CSV's rename, with attributes file.name, rows,
// schema_version and bytes (and an error status if the write failed). Its traceparent goes into
// the manifest, where the processor continues the trace; a disabled tracer (OTEL_SDK_DISABLED)
// leaves the manifest's traceparent empty. Under a simulated clock the trace and span ids come
// from the seed, so manifests stay byte-identical (two such runs export the same ids); the span's
// timestamps are always real time (they measure the write, not the simulated rows). Live, the
// span's times come from `clock`, the clock that also stamps the file's mtime.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_GENERATOR_H_
#define ECOMSTREAM_SERVICES_GENERATOR_GENERATOR_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/tracer.h"
#include "services/generator/anomaly_injector.h"
#include "services/generator/clock.h"
#include "services/generator/csv_file_sink.h"
#include "services/generator/csv_row_encoder.h"
#include "services/generator/ground_truth.h"
#include "services/generator/random.h"
#include "services/generator/rate_limiter.h"
#include "services/generator/schema.h"
#include "services/generator/shopper_model.h"

namespace ecomstream::generator {

struct GeneratorConfig {
  std::string output_dir;
  int64_t total_events = 0;          // 0 = until stopped (or duration)
  int64_t events_per_file = 10000;
  double events_per_second = 0;      // 0 = as fast as possible
  double anomaly_rate = 0.02;
  double late_rate = 0.005;
  std::string anomaly_kinds = "all";  // see ParseAnomalyKinds
  uint64_t seed = 0;                  // 0 = pick one at random (logged at start)
  std::string schema_version = "v3";  // v1, v2, v3 or mixed
  std::string summary_file;           // empty = none
  std::string start_time;             // RFC 3339; empty = live clock
  absl::Duration duration = absl::ZeroDuration();  // 0 = unbounded
  absl::Duration file_interval = absl::Seconds(10);
  bool manifests = true;
  // Write, hash, fsync and drop files on an I/O thread while the next file is generated (see
  // CsvFileSink::Options::background); the clock is then also read there.
  bool background_io = false;
  bool quiet = false;                 // no progress lines
  absl::Duration progress_interval = absl::Seconds(5);

  // kInvalidArgument naming the first bad setting and why.
  absl::Status Validate() const;
};

// The run's result, as written to --summary_file.
struct RunSummary {
  GroundTruth truth;
  int64_t files = 0;
  int64_t bytes = 0;
};

class Generator {
 public:
  // Validates `config`. `clock` and `registry` must outlive the generator, which exports
  // ecomstream_generator_* series there (events, files, bytes, anomalies by kind, expected
  // row outcomes, write failures, file commit latency). `tracer` (which must outlive the
  // generator) gets the file.write spans; null means an enabled tracer that exports nothing
  // (the manifests still carry a traceparent).
  static absl::StatusOr<std::unique_ptr<Generator>> Create(const GeneratorConfig& config, Clock* clock,
                                                           metrics::Registry* registry,
                                                           const tracing::Tracer* tracer = nullptr);

  // Writes files until total_events, duration or Stop(), commits the file in progress, then
  // writes the summary file (also after an error, covering the committed files). Returns the
  // first error: a full disk is kResourceExhausted, an unwritable directory kPermissionDenied
  // or kFailedPrecondition; the file in progress is then removed, never left under a final
  // name. Call once.
  absl::StatusOr<RunSummary> Run();
  // Thread-safe, from any thread (e.g. on SIGTERM): Run() closes the current file with the
  // rows it has and returns.
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

  // Thread-safe progress counters.
  int64_t events_written() const { return events_written_.load(std::memory_order_relaxed); }
  int64_t files_written() const { return files_written_.load(std::memory_order_relaxed); }
  // True between Run()'s successful start and its end.
  bool running() const { return running_.load(std::memory_order_relaxed); }

 private:
  struct Metrics {
    explicit Metrics(metrics::Registry* registry);
    metrics::Counter& events;
    metrics::Counter& files;
    metrics::Counter& bytes;
    metrics::Counter& failures;
    metrics::Counter& expected_events;
    metrics::Counter& expected_dead_letters;
    metrics::Counter& expected_duplicates;
    metrics::Counter& late_events;
    metrics::Histogram& commit_seconds;
    std::array<metrics::Counter*, kNumAnomalyKinds> anomalies;
  };

  Generator(const GeneratorConfig& config, Clock* clock, metrics::Registry* registry,
            const tracing::Tracer* tracer, uint64_t seed, SchemaChoice schema, AnomalyKindSet kinds,
            std::optional<int64_t> start_us);

  absl::Status Loop();
  // The generator's time: simulated or `clock_`'s.
  int64_t NowMicros();
  absl::Status OpenFile(int64_t now_us);
  void EmitRow(int64_t now_us);
  absl::Status FlushChunk();
  absl::Status CommitFile();
  // Starts file_span_ for the file being opened at generator time `now_us`.
  void StartFileSpan(const std::string& name, int64_t now_us);
  // When a span event happens: `now_us` (the generator's clock) when live, real time when simulated.
  absl::Time SpanTime(int64_t now_us) const;
  absl::Status WriteSummary(const RunSummary& summary) const;
  void MaybeReportProgress(bool force);

  const GeneratorConfig config_;
  Clock* const clock_;
  Metrics metrics_;
  std::unique_ptr<tracing::Tracer> own_tracer_;  // when Create got none
  const tracing::Tracer* const tracer_;
  const uint64_t seed_;
  const SchemaChoice schema_;
  const AnomalyKindSet kinds_;
  const std::optional<int64_t> start_us_;  // simulated clock origin
  const double sim_step_us_;
  const std::string run_id_;               // 8 hex digits in every file name

  ShopperModel model_;
  AnomalyInjector injector_;
  Rng file_rng_;
  CsvFileSink sink_;
  std::optional<RateLimiter> limiter_;
  std::optional<CsvRowEncoder> encoder_;
  tracing::Span file_span_;  // the open file's file.write span

  ShopperEvent event_;
  RowPlan plan_;
  std::string chunk_;
  SchemaVersion file_version_ = SchemaVersion::kV3;
  GroundTruth file_truth_;
  GroundTruth run_truth_;
  int64_t file_sequence_ = 0;
  int64_t file_deadline_us_ = 0;
  int64_t events_ = 0;
  int64_t last_row_us_ = 0;
  int64_t run_start_us_ = 0;
  int64_t last_progress_us_ = 0;
  int64_t last_progress_events_ = 0;

  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<int64_t> events_written_{0};
  std::atomic<int64_t> files_written_{0};
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_GENERATOR_H_

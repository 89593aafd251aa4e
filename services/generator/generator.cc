#include "services/generator/generator.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status.h"
#include "common/time_util.h"
#include "common/trace_context.h"

namespace ecomstream::generator {
namespace {

constexpr int64_t kMaxEventsPerFile = 10'000'000;
constexpr absl::Duration kMaxFileInterval = absl::Minutes(20);
// Epoch-second and epoch-millisecond noise keeps exactly 10 and 13 digits in this range.
const absl::Time kEarliestStart = absl::FromUnixSeconds(1'000'100'000);  // 2001-09-10
const absl::Time kLatestStart = absl::FromUnixSeconds(7'258'118'400);    // 2200-01-01
constexpr size_t kChunkBytes = 256 << 10;
constexpr int64_t kMaxSleepUs = 50'000;  // so Stop() and file deadlines are noticed promptly

// Independent random streams per component, so a change in one does not shift the others.
enum Stream : uint64_t { kStreamShopper = 1, kStreamAnomalies = 2, kStreamFiles = 3, kStreamRunId = 4 };

uint64_t StreamSeed(uint64_t seed, Stream stream) { return Rng::Derive(seed, stream).Next(); }

absl::StatusOr<std::optional<int64_t>> ParseStartTime(absl::string_view text) {
  if (text.empty()) return std::optional<int64_t>();
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--start_time='", text, "' is not an RFC 3339 time like 2026-05-01T12:00:00Z: ", error));
  }
  if (t < kEarliestStart || t >= kLatestStart) {
    return absl::InvalidArgumentError(absl::StrCat("--start_time='", text, "' must lie in [2001-09-10, 2200-01-01)"));
  }
  return std::optional<int64_t>(absl::ToUnixMicros(t));
}

// ecomstream_generator_expected_rows_total{outcome=...}.
metrics::Counter& ExpectedRows(metrics::Registry* registry, absl::string_view outcome) {
  return registry->GetCounter("ecomstream_generator_expected_rows_total",
                              "Committed rows by the outcome the processor must give them.",
                              {{"outcome", std::string(outcome)}});
}

std::pair<std::string, std::string> SplitPath(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

absl::Status GeneratorConfig::Validate() const {
  if (output_dir.empty()) return absl::InvalidArgumentError("--output_dir is required");
  if (events_per_file < 1 || events_per_file > kMaxEventsPerFile) {
    return absl::InvalidArgumentError(
        absl::StrCat("--events_per_file=", events_per_file, " must be in [1, ", kMaxEventsPerFile, "]"));
  }
  if (total_events < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--total_events=", total_events, " must be >= 0 (0 = no limit)"));
  }
  if (!std::isfinite(events_per_second) || events_per_second < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--events_per_second=", events_per_second, " must be >= 0 (0 = as fast as possible)"));
  }
  if (!(anomaly_rate >= 0 && anomaly_rate <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--anomaly_rate=", anomaly_rate, " must be in [0, 1]"));
  }
  if (!(late_rate >= 0 && late_rate <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--late_rate=", late_rate, " must be in [0, 1]"));
  }
  RETURN_IF_ERROR(ParseAnomalyKinds(anomaly_kinds).status());
  RETURN_IF_ERROR(ParseSchemaChoice(schema_version).status());
  RETURN_IF_ERROR(ParseStartTime(start_time).status());
  if (duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--duration=", absl::FormatDuration(duration), " must be >= 0 (0 = no limit)"));
  }
  if (file_interval <= absl::ZeroDuration() || file_interval > kMaxFileInterval) {
    return absl::InvalidArgumentError(absl::StrCat("--file_interval=", absl::FormatDuration(file_interval),
                                                   " must be in (0, 20m] (rows older than the late watermark would "
                                                   "count as late)"));
  }
  if (progress_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the progress interval must be positive");
  }
  if (!summary_file.empty() && summary_file.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("--summary_file='", summary_file, "' names a directory"));
  }
  return absl::OkStatus();
}

Generator::Metrics::Metrics(metrics::Registry* registry)
    : events(registry->GetCounter("ecomstream_generator_events_total", "Rows written in committed files.")),
      files(registry->GetCounter("ecomstream_generator_files_total", "CSV files committed to the output directory.")),
      bytes(registry->GetCounter("ecomstream_generator_bytes_total", "CSV bytes committed.")),
      failures(registry->GetCounter("ecomstream_generator_write_failures_total",
                                    "Runs ended by a failed write (disk full, permissions); the file is abandoned.")),
      expected_events(ExpectedRows(registry, "event")),
      expected_dead_letters(ExpectedRows(registry, "dead_letter")),
      expected_duplicates(ExpectedRows(registry, "duplicate")),
      late_events(registry->GetCounter("ecomstream_generator_late_events_total",
                                       "Committed valid rows older than their file's creation time - 1 h.")),
      commit_seconds(registry->GetHistogram("ecomstream_generator_file_commit_seconds",
                                            "Time to make a file durable and visible: manifest, fsync, rename.",
                                            metrics::LatencyBuckets())) {
  for (int k = 0; k < kNumAnomalyKinds; ++k) {
    anomalies[k] = &registry->GetCounter("ecomstream_generator_anomalies_total", "Committed rows by injected anomaly.",
                                         {{"kind", std::string(AnomalyKindName(static_cast<AnomalyKind>(k)))}});
  }
}

absl::StatusOr<std::unique_ptr<Generator>> Generator::Create(const GeneratorConfig& config, Clock* clock,
                                                             metrics::Registry* registry,
                                                             const tracing::Tracer* tracer) {
  RETURN_IF_ERROR(config.Validate());
  ASSIGN_OR_RETURN(AnomalyKindSet kinds, ParseAnomalyKinds(config.anomaly_kinds));
  ASSIGN_OR_RETURN(SchemaChoice schema, ParseSchemaChoice(config.schema_version));
  ASSIGN_OR_RETURN(std::optional<int64_t> start_us, ParseStartTime(config.start_time));
  uint64_t seed = config.seed;
  while (seed == 0) {
    std::random_device device;
    seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  }
  return std::unique_ptr<Generator>(new Generator(config, clock, registry, tracer, seed, schema, kinds, start_us));
}

Generator::Generator(const GeneratorConfig& config, Clock* clock, metrics::Registry* registry,
                     const tracing::Tracer* tracer, uint64_t seed, SchemaChoice schema, AnomalyKindSet kinds,
                     std::optional<int64_t> start_us)
    : config_(config),
      clock_(clock),
      metrics_(registry),
      own_tracer_(tracer == nullptr ? std::make_unique<tracing::Tracer>(tracing::TracerOptions(), nullptr) : nullptr),
      tracer_(tracer == nullptr ? own_tracer_.get() : tracer),
      seed_(seed),
      schema_(schema),
      kinds_(kinds),
      start_us_(start_us),
      sim_step_us_(config.events_per_second > 0 ? 1e6 / config.events_per_second : 1000.0),
      run_id_(absl::StrFormat("%08x", StreamSeed(seed, kStreamRunId) >> 32)),
      model_(StreamSeed(seed, kStreamShopper)),
      injector_(StreamSeed(seed, kStreamAnomalies),
                AnomalyInjector::Options{config.anomaly_rate, config.late_rate, kinds}),
      file_rng_(Rng::Derive(seed, kStreamFiles)),
      sink_(CsvFileSink::Options{config.output_dir, config.manifests, config.background_io}) {
  if (config.events_per_second > 0) limiter_.emplace(config.events_per_second, clock_);
  chunk_.reserve(kChunkBytes + (64 << 10));
}

int64_t Generator::NowMicros() {
  if (start_us_.has_value()) return *start_us_ + static_cast<int64_t>(static_cast<double>(events_) * sim_step_us_);
  return clock_->NowMicros();
}

absl::StatusOr<RunSummary> Generator::Run() {
  if (running_.load() || events_ > 0) return absl::FailedPreconditionError("Generator::Run called twice");
  ASSIGN_OR_RETURN(const int stale, sink_.Start());
  if (!config_.summary_file.empty()) {
    const std::string dir = SplitPath(config_.summary_file).first;
    if (!IsDirectory(dir)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--summary_file='", config_.summary_file, "': directory ", dir, " does not exist"));
    }
  }
  running_.store(true);
  LOG_INFO("Generator started") << Kv("output_dir", config_.output_dir) << Kv("seed", seed_)
                                << Kv("schema_version", config_.schema_version)
                                << Kv("events_per_second", config_.events_per_second)
                                << Kv("events_per_file", config_.events_per_file)
                                << Kv("total_events", config_.total_events)
                                << Kv("clock", config_.start_time.empty() ? "live" : config_.start_time);
  if (stale > 0) {
    LOG_INFO("Removed stale temp files") << Kv("dir", sink_.temp_dir()) << Kv("files", stale);
  }
  run_start_us_ = NowMicros();
  last_progress_us_ = clock_->NowMicros();

  absl::Status status = Loop();
  if (!status.ok()) metrics_.failures.Increment();
  file_span_.SetStatus(status);  // a file still open here was abandoned by the error
  file_span_.End(SpanTime(clock_->NowMicros()));
  sink_.Abort();  // after an error: the file in progress must not survive
  RunSummary summary{run_truth_, sink_.stats().files, sink_.stats().bytes};
  if (!config_.summary_file.empty()) {
    absl::Status written = WriteSummary(summary);
    if (status.ok()) status = written;
  }
  running_.store(false);
  if (!status.ok()) return status;
  LOG_INFO("Generator finished") << Kv("events", summary.truth.rows) << Kv("files", summary.files)
                                 << Kv("valid_distinct_events", summary.truth.valid_events())
                                 << Kv("expected_dead_letters", summary.truth.dead_letters())
                                 << Kv("exact_duplicates", summary.truth.exact_duplicates())
                                 << Kv("late_events", summary.truth.late_events());
  return summary;
}

absl::Status Generator::Loop() {
  const int64_t duration_us = absl::ToInt64Microseconds(config_.duration);
  while (!stop_.load(std::memory_order_relaxed)) {
    if (config_.total_events > 0 && events_ >= config_.total_events) break;
    const int64_t now = NowMicros();
    if (duration_us > 0 && now - run_start_us_ >= duration_us) break;
    if (sink_.is_open() && now >= file_deadline_us_) RETURN_IF_ERROR(CommitFile());
    if (limiter_.has_value()) {
      const int64_t delay = limiter_->DelayMicros();
      if (delay > 0) {
        MaybeReportProgress(false);
        clock_->SleepMicros(std::min(delay, kMaxSleepUs));
        continue;
      }
      limiter_->Take();
    }
    if (!sink_.is_open()) RETURN_IF_ERROR(OpenFile(now));
    EmitRow(now);
    if (file_truth_.rows >= config_.events_per_file) {
      RETURN_IF_ERROR(CommitFile());
    } else if (chunk_.size() >= kChunkBytes) {
      RETURN_IF_ERROR(FlushChunk());
    }
    if ((events_ & 1023) == 0) MaybeReportProgress(false);
  }
  if (sink_.is_open()) RETURN_IF_ERROR(CommitFile());
  RETURN_IF_ERROR(sink_.Flush());  // every file in place
  MaybeReportProgress(true);
  return absl::OkStatus();
}

absl::Status Generator::OpenFile(int64_t now_us) {
  ++file_sequence_;
  file_version_ = schema_.mixed ? static_cast<SchemaVersion>(1 + file_rng_.Uniform(3)) : schema_.version;
  std::vector<Column> columns = ColumnsOf(file_version_);
  if (file_rng_.Chance(0.5)) {
    for (size_t i = columns.size() - 1; i > 0; --i) std::swap(columns[i], columns[file_rng_.Uniform(i + 1)]);
  }
  encoder_.emplace(std::move(columns), /*crlf=*/file_rng_.Chance(0.1));
  const std::string name =
      absl::StrCat("events-", absl::FormatTime("%Y%m%dT%H%M%S", absl::FromUnixMicros(now_us), absl::UTCTimeZone()),
                   "-", absl::StrFormat("%06d", file_sequence_), "-", run_id_, ".csv");
  StartFileSpan(name, now_us);
  RETURN_IF_ERROR(sink_.Open(name));
  chunk_.clear();
  encoder_->AppendHeader(&chunk_);
  injector_.BeginFile(file_version_);
  file_truth_ = GroundTruth();
  file_deadline_us_ = now_us + absl::ToInt64Microseconds(config_.file_interval);
  return absl::OkStatus();
}

void Generator::EmitRow(int64_t now_us) {
  model_.Next(now_us / 1000, &event_);
  const RowVerdict verdict = injector_.Apply(&event_, &plan_);
  const size_t start = chunk_.size();
  const size_t length = encoder_->AppendRow(event_, plan_, &chunk_);
  if (verdict.outcome == RowOutcome::kEvent) injector_.Remember(event_, absl::string_view(chunk_).substr(start, length));
  file_truth_.Count(verdict);
  ++events_;
  last_row_us_ = now_us;
}

absl::Status Generator::FlushChunk() {
  absl::Status status = sink_.Append(&chunk_);  // hands the bytes over; chunk_ comes back empty
  chunk_.reserve(kChunkBytes + (64 << 10));
  return status;
}

absl::Status Generator::CommitFile() {
  RETURN_IF_ERROR(FlushChunk());
  v1::FileManifest manifest;
  manifest.set_schema_version(std::string(SchemaVersionName(file_version_)));
  manifest.set_traceparent(file_span_.context().ToTraceparent());
  FillManifest(file_truth_, &manifest);
  // Simulated: just after the last row. Live: now (never before the last row's stamp).
  const int64_t created_us =
      start_us_.has_value() ? last_row_us_ + 1000 : std::max(clock_->NowMicros(), last_row_us_);
  const int64_t commit_start = MonotonicMicros();
  const int64_t rows = file_truth_.rows;
  // What needs the file in place (its span's end, the written counters) waits for it: with
  // background_io that is on the sink's I/O thread, while this one goes on.
  auto span = std::make_shared<tracing::Span>(std::move(file_span_));
  absl::Status committed = sink_.Commit(
      &manifest, created_us,
      [this, rows, commit_start, span](const v1::FileManifest& done) {
        metrics_.commit_seconds.Observe(static_cast<double>(MonotonicMicros() - commit_start) / 1e6);
        span->SetAttribute("rows", rows);
        span->SetAttribute("schema_version", done.schema_version());
        span->SetAttribute("bytes", done.size_bytes());
        span->End(SpanTime(clock_->NowMicros()));
        metrics_.events.Increment(static_cast<double>(rows));
        metrics_.files.Increment();
        metrics_.bytes.Increment(static_cast<double>(done.size_bytes()));
        events_written_.fetch_add(rows, std::memory_order_relaxed);
        files_written_.fetch_add(1, std::memory_order_relaxed);
        LOG_DEBUG("File written") << Kv("file", done.file_name()) << Kv("rows", done.rows())
                                  << Kv("bytes", done.size_bytes()) << Kv("schema_version", done.schema_version());
      });
  if (!committed.ok()) {
    file_span_ = std::move(*span);  // Run() ends it with the error
    return committed;
  }
  metrics_.expected_events.Increment(static_cast<double>(file_truth_.valid_events()));
  metrics_.expected_dead_letters.Increment(static_cast<double>(file_truth_.dead_letters()));
  metrics_.expected_duplicates.Increment(static_cast<double>(file_truth_.exact_duplicates()));
  metrics_.late_events.Increment(static_cast<double>(file_truth_.late_events()));
  for (int k = 0; k < kNumAnomalyKinds; ++k) {
    if (file_truth_.anomalies[k] > 0) metrics_.anomalies[k]->Increment(static_cast<double>(file_truth_.anomalies[k]));
  }
  run_truth_.Add(file_truth_);
  return absl::OkStatus();
}

void Generator::StartFileSpan(const std::string& name, int64_t now_us) {
  tracing::StartSpanOptions options;
  options.start_time = SpanTime(now_us);
  // Ids from the file stream, so a seed reproduces them; the low bit keeps them non-zero. Drawn
  // live too, so the file stream (schemas, column orders) does not depend on the clock.
  const uint64_t words[3] = {file_rng_.Next(), file_rng_.Next() | 1, file_rng_.Next() | 1};
  if (start_us_.has_value()) {
    for (int i = 0; i < 8; ++i) {
      options.root_trace_id.bytes[i] = static_cast<uint8_t>(words[0] >> (56 - 8 * i));
      options.root_trace_id.bytes[8 + i] = static_cast<uint8_t>(words[1] >> (56 - 8 * i));
      options.span_id.bytes[i] = static_cast<uint8_t>(words[2] >> (56 - 8 * i));
    }
  }
  file_span_ = tracer_->StartSpan("file.write", tracing::SpanKind::kProducer, tracing::TraceContext(), options);
  file_span_.SetAttribute("file.name", name);
}

absl::Time Generator::SpanTime(int64_t now_us) const {
  return start_us_.has_value() ? absl::Now() : absl::FromUnixMicros(now_us);
}

absl::Status Generator::WriteSummary(const RunSummary& summary) const {
  const auto [dir, name] = SplitPath(config_.summary_file);
  return WriteFileAtomically(dir, name, SummaryJson(summary.truth, summary.files, kinds_));
}

void Generator::MaybeReportProgress(bool force) {
  if (config_.quiet) return;
  const int64_t now = clock_->NowMicros();
  const int64_t elapsed = now - last_progress_us_;
  if (!force && elapsed < absl::ToInt64Microseconds(config_.progress_interval)) return;
  const int64_t events = events_written();
  const double rate = elapsed > 0 ? static_cast<double>(events - last_progress_events_) * 1e6 / elapsed : 0;
  LOG_INFO("Progress") << Kv("events", events) << Kv("files", files_written())
                       << Kv("events_per_second", static_cast<int64_t>(rate));
  last_progress_us_ = now;
  last_progress_events_ = events;
}

}  // namespace ecomstream::generator

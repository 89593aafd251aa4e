#include "services/processor/processor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "common/time_util.h"
#include "services/processor/archive_retention.h"
#include "services/processor/redrive.h"

namespace ecomstream::processor {
namespace {

constexpr size_t kMaxBatchBytes = 3 << 20;  // gRPC's default receive limit is 4 MiB
constexpr absl::Duration kMaxFileRetry = absl::Minutes(10);

// True when `path` exists and is not a directory (a missing one is created by Run).
bool ExistsAndIsNotADirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

}  // namespace

absl::Status ProcessorConfig::Validate() const {
  if (input_dir.empty()) return Invalid("--input_dir is required");
  if (ExistsAndIsNotADirectory(input_dir)) {
    return Invalid(absl::StrCat("--input_dir ", input_dir, " exists and is not a directory"));
  }
  if (!delete_after_commit && archive_dir.empty()) {
    return Invalid("--archive_dir is required (or --delete_after_commit)");
  }
  if (quarantine_dir.empty()) return Invalid("--quarantine_dir is required");
  if (archive_dir == input_dir || quarantine_dir == input_dir) {
    return Invalid("--archive_dir and --quarantine_dir must differ from --input_dir");
  }
  if (instance_id.empty()) return Invalid("--instance_id must not be empty");
  if (rescan_interval <= absl::ZeroDuration()) return Invalid("--rescan_interval must be positive");
  if (claim_lease < absl::Seconds(1)) return Invalid("--claim_lease must be at least 1s");
  if (drain_timeout < absl::ZeroDuration()) return Invalid("--drain_timeout must not be negative");
  if (archive_retention < absl::ZeroDuration()) return Invalid("--archive_retention must not be negative");
  if (failed_file_retry <= absl::ZeroDuration()) return Invalid("--file_retry_interval must be positive");
  if (job.batch.max_rows < 1 || job.batch.max_rows > 1000000) return Invalid("--batch_rows must be in 1..1000000");
  if (job.batch.max_bytes < (64 << 10) || job.batch.max_bytes > kMaxBatchBytes) {
    return Invalid(absl::StrCat("--batch_bytes must be in 65536..", kMaxBatchBytes,
                                " (gRPC refuses messages over 4 MiB)"));
  }
  if (job.batch.linger < absl::ZeroDuration()) return Invalid("--linger must not be negative");
  if (job.csv.max_row_bytes < 256 || job.csv.max_row_bytes > (1 << 20)) {
    return Invalid("--max_row_bytes must be in 256..1048576");
  }
  if (job.csv.max_row_bytes * 2 > job.batch.max_bytes) {
    return Invalid("--batch_bytes must be at least twice --max_row_bytes");
  }
  if (job.late_after_us < 0) return Invalid("--late_after must not be negative");
  if (job.max_future_us < 0) return Invalid("--max_future must not be negative");
  if (writer_address.empty() || writer_address.find(':') == std::string::npos) {
    return Invalid(absl::StrCat("--writer_address \"", writer_address, "\" is not host:port"));
  }
  if (tls.cert.empty() != tls.key.empty()) return Invalid("--tls_cert and --tls_key go together (mTLS)");
  for (const std::string* file : {&tls.ca, &tls.cert, &tls.key}) {
    if (!file->empty() && ::access(file->c_str(), R_OK) != 0) {
      return Invalid(absl::StrCat("TLS file ", *file, " is not readable"));
    }
  }
  if (writer.max_in_flight < 1 || writer.max_in_flight > 1024) return Invalid("--max_in_flight must be in 1..1024");
  if (writer.rpc_timeout <= absl::ZeroDuration()) return Invalid("--rpc_timeout must be positive");
  if (writer.ack_timeout <= absl::ZeroDuration()) return Invalid("--ack_timeout must be positive");
  return absl::OkStatus();
}

// Counts the batches a file job queued, so a file abandoned midway is released once they are
// all acknowledged.
class Processor::CountingSink : public BatchSink {
 public:
  CountingSink(Processor* processor, std::string file_id) : processor_(processor), file_id_(std::move(file_id)) {}
  absl::Status Send(std::unique_ptr<OwnedBatch> batch) override {
    {
      // Counted first: the ack may arrive before Send returns.
      absl::MutexLock lock(&processor_->mu_);
      auto it = processor_->in_flight_.find(file_id_);
      if (it == processor_->in_flight_.end()) return absl::AbortedError("the file was released (refused)");
      ++it->second.batches_sent;
    }
    absl::Status status = processor_->writer_.Send(std::move(batch));
    if (!status.ok()) {
      absl::MutexLock lock(&processor_->mu_);
      auto it = processor_->in_flight_.find(file_id_);
      if (it != processor_->in_flight_.end()) --it->second.batches_sent;
    }
    return status;
  }

 private:
  Processor* processor_;
  std::string file_id_;
};

FileJobOptions Processor::JobOptions() const {
  FileJobOptions job = options_.job;
  if (options_.rules != nullptr) job.rules = options_.rules->Get();  // SIGHUP may have swapped them
  return job;
}

Processor::Processor(ProcessorConfig options, std::shared_ptr<grpc::Channel> channel, ProcessorMetrics* metrics,
                     const tracing::Tracer* tracer)
    : options_(std::move(options)),
      metrics_(metrics),
      own_tracer_(tracer == nullptr ? std::make_unique<tracing::Tracer>(tracing::TracerOptions(), nullptr) : nullptr),
      tracer_(tracer == nullptr ? own_tracer_.get() : tracer),
      source_(DirectorySourceOptions{options_.input_dir, options_.rescan_interval, options_.watch}, metrics),
      lifecycle_(FileLifecycleOptions{options_.input_dir, options_.archive_dir, options_.quarantine_dir,
                                      options_.delete_after_commit},
                 metrics),
      writer_(std::move(channel), options_.writer, this, metrics),
      claim_backoff_(options_.writer.backoff, std::random_device{}()) {}

Processor::~Processor() { writer_.Stop(); }

void Processor::Stop() {
  stopping_ = true;
  writer_.StopIntake();  // a file job blocked on a full window returns
  source_.Wake();
}

absl::Status Processor::Run() {
  RETURN_IF_ERROR(lifecycle_.Prepare());
  RETURN_IF_ERROR(source_.Open());
  writer_.Start();
  LOG_INFO("Processor started") << Kv("input_dir", options_.input_dir) << Kv("instance_id", options_.instance_id)
                                << Kv("once", options_.once) << Kv("max_in_flight", options_.writer.max_in_flight);
  if (options_.once) {
    ASSIGN_OR_RETURN(std::vector<DiscoveredFile> present, source_.Scan());
    absl::MutexLock lock(&mu_);
    for (const DiscoveredFile& file : present) once_open_.insert(file.name);
  }
  while (!stopping_) {
    absl::Duration wait;
    {
      absl::MutexLock lock(&mu_);
      if (options_.once && OnceFinished()) break;
      wait = NextWake();
    }
    absl::StatusOr<std::vector<DiscoveredFile>> found = source_.Poll(wait);
    if (!found.ok()) {
      if (options_.once) return found.status();
      LOG_WARNING("Cannot read the input directory; retrying") << Kv("error", found.status().ToString());
      absl::SleepFor(options_.rescan_interval);
      continue;
    }
    Merge(*found);
    ProcessDueFiles();
    SweepArchive();
  }

  // Drain: no new batches; those sent get their acks (and their files are archived) if the
  // writer answers in time. Files left half-sent are resumed by the next claimant.
  Stop();
  const bool drained = writer_.WaitForAcks(options_.drain_timeout);
  const WriterClient::Stats stats = writer_.stats();
  writer_.Stop();
  if (!drained) {
    LOG_WARNING("Stopped with batches unacknowledged; their files stay in the inbox")
        << Kv("unacked", stats.in_flight);
  }
  absl::MutexLock lock(&mu_);
  // Files still in flight stay in the inbox: their attempts end here, before the tracer flushes.
  for (auto& [file_id, file] : in_flight_) {
    if (!file.abandoned) file.span.SetStatus(absl::CancelledError("stopped before the file was committed"));
    file.span.End();
  }
  LOG_INFO("Processor stopped") << Kv("batches_sent", stats.batches_sent) << Kv("batches_acked", stats.batches_acked)
                                << Kv("batches_resent", stats.batches_resent)
                                << Kv("stream_failures", stats.stream_failures);
  if (options_.once) {
    std::vector<std::string> unfinished(once_failed_.begin(), once_failed_.end());
    unfinished.insert(unfinished.end(), once_open_.begin(), once_open_.end());
    if (!unfinished.empty()) {
      return absl::AbortedError(absl::StrCat(unfinished.size(), " file(s) could not be committed: ",
                                             absl::StrJoin(unfinished, ", ")));
    }
  }
  return absl::OkStatus();
}

bool Processor::OnceFinished() { return once_open_.empty() && in_flight_.empty(); }

absl::Duration Processor::NextWake() {
  const absl::Time now = absl::Now();
  absl::Time wake = now + options_.rescan_interval;
  for (const auto& [name, file] : pending_) {
    if (in_flight_names_.contains(name)) continue;
    wake = std::min(wake, std::max(file.not_before, claim_not_before_));
  }
  return std::max(absl::ZeroDuration(), wake - now);
}

void Processor::Merge(const std::vector<DiscoveredFile>& files) {
  absl::MutexLock lock(&mu_);
  for (const DiscoveredFile& file : files) {
    if (in_flight_names_.contains(file.name)) continue;
    if (options_.once && !once_open_.count(file.name)) continue;  // only what was there at start
    auto [it, inserted] = pending_.try_emplace(file.name);
    if (inserted || file.drop_time_us < it->second.drop_time_us) it->second.drop_time_us = file.drop_time_us;
  }
  metrics_->backlog_files.Set(static_cast<double>(pending_.size() + in_flight_names_.size()));
}

void Processor::ProcessDueFiles() {
  std::vector<std::string> due;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now < claim_not_before_) return;
    for (const auto& [name, file] : pending_) {
      if (file.not_before <= now && !in_flight_names_.contains(name)) due.push_back(name);
    }
  }
  for (const std::string& name : due) {
    if (stopping_) return;
    const Step step = ProcessFile(name);
    if (step == Step::kWriterUnavailable) {
      claim_not_before_ = absl::Now() + claim_backoff_.Next();
      return;
    }
  }
}

void Processor::SweepArchive() {
  if (options_.delete_after_commit || options_.archive_retention <= absl::ZeroDuration()) return;
  const absl::Time now = absl::Now();
  if (now < next_archive_sweep_) return;
  // A tenth of the retention, between a minute and an hour: files outlive it by at most that.
  next_archive_sweep_ = now + std::clamp(options_.archive_retention / 10, absl::Minutes(1), absl::Hours(1));
  absl::StatusOr<int> deleted = RemoveExpiredArchivedFiles(options_.archive_dir, options_.archive_retention, now);
  if (!deleted.ok()) {
    LOG_WARNING("Cannot sweep the archive; retrying later") << Kv("error", deleted.status().ToString());
  } else if (*deleted > 0) {
    LOG_INFO("Archived files expired") << Kv("archive_dir", options_.archive_dir) << Kv("deleted", *deleted)
                                       << Kv("archive_retention", absl::FormatDuration(options_.archive_retention));
  }
}

void Processor::Done(const std::string& name, bool ok) {
  pending_.erase(name);
  once_open_.erase(name);
  if (!ok && options_.once) once_failed_.insert(name);
}

void Processor::RetryLater(const std::string& name, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  pending_[name].not_before = absl::Now() + delay;
}

void Processor::Refused(const std::string& name, int previous_attempts, int64_t drop_time_us,
                        const absl::Status& why, tracing::Span* span) {
  const int attempts = previous_attempts + 1;  // this refused attempt included
  if (span != nullptr) {
    span->SetStatus(why);
    span->End();
  }
  if (metrics_ != nullptr) metrics_->files_failed.Increment();
  absl::MutexLock lock(&mu_);
  if (options_.once && attempts >= options_.once_max_attempts) {
    LOG_WARNING("Giving up on file") << Kv("file", name) << Kv("attempts", attempts) << Kv("error", why.ToString());
    Done(name, /*ok=*/false);
    return;
  }
  const absl::Duration delay =
      std::min(kMaxFileRetry, options_.failed_file_retry * (1 << std::min(attempts - 1, 16)));
  LOG_WARNING("File refused; will retry") << Kv("file", name) << Kv("attempts", attempts)
                                          << Kv("retry_in_s", absl::ToDoubleSeconds(delay))
                                          << Kv("error", why.ToString());
  PendingFile& file = pending_[name];
  file.attempts = attempts;
  file.not_before = absl::Now() + delay;
  if (file.drop_time_us == 0) file.drop_time_us = drop_time_us;
  file.picked_up = true;
}

tracing::Span Processor::StartFileSpan(const FileFacts& facts, absl::Time picked_up) const {
  tracing::StartSpanOptions start;
  start.start_time = picked_up;
  tracing::Span span = tracer_->StartSpan("file.process", tracing::SpanKind::kConsumer, facts.parent_trace, start);
  span.SetAttribute("file.name", facts.name);
  span.SetAttribute("file.id", facts.file_id);
  span.SetAttribute("file.size_bytes", facts.size_bytes);
  span.SetAttribute("file.has_manifest", facts.has_manifest);
  if (facts.schema.version > 0) span.SetAttribute("schema_version", absl::StrCat("v", facts.schema.version));
  if (facts.rows != kRowsUnknown) span.SetAttribute("rows", facts.rows);  // else set when committed
  return span;
}

Processor::Step Processor::ProcessFile(const std::string& name) {
  const absl::Time picked_up = absl::Now();
  PendingFile entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(name);
    if (it == pending_.end()) return Step::kDone;
    if (!it->second.picked_up && metrics_ != nullptr) {
      metrics_->file_discovery_delay_seconds.Observe(
          std::max<double>(0, static_cast<double>(NowMicros() - it->second.drop_time_us) / 1e6));
    }
    it->second.picked_up = true;
    entry = it->second;
  }
  absl::StatusOr<FileFacts> facts = InspectFile(options_.input_dir, name, options_.job.csv);
  if (absl::IsNotFound(facts.status())) {
    absl::MutexLock lock(&mu_);
    Done(name, /*ok=*/true);  // gone: another processor finished it
    return Step::kDone;
  }
  if (!facts.ok()) {
    Refused(name, entry.attempts, entry.drop_time_us, facts.status());
    return Step::kRetryLater;
  }
  if (!facts->quarantine_reason.empty()) {
    tracing::Span span = StartFileSpan(*facts, picked_up);
    span.SetAttribute("file.quarantine_reason", facts->quarantine_reason);
    absl::StatusOr<std::string> moved = lifecycle_.Quarantine(name, facts->quarantine_reason);
    if (!moved.ok()) {
      Refused(name, entry.attempts, entry.drop_time_us, moved.status(), &span);
      return Step::kRetryLater;
    }
    span.SetStatus(absl::FailedPreconditionError(absl::StrCat("quarantined: ", facts->quarantine_reason)));
    if (metrics_ != nullptr) metrics_->files_quarantined.Increment();
    LOG_WARNING("File quarantined") << Kv("file", name) << Kv("to", *moved) << Kv("reason", facts->quarantine_reason);
    absl::MutexLock lock(&mu_);
    Done(name, /*ok=*/true);
    return Step::kDone;
  }
  {
    absl::MutexLock lock(&mu_);
    if (in_flight_.contains(facts->file_id)) {
      // The same bytes under another name are being loaded: ask again when that is settled.
      pending_[name].not_before = absl::Now() + options_.rescan_interval;
      return Step::kRetryLater;
    }
  }

  // Continues the generator's trace when the manifest carries one.
  tracing::Span span = StartFileSpan(*facts, picked_up);
  v1::ClaimFileRequest request;
  request.set_file_id(facts->file_id);
  request.set_file_name(name);
  request.set_size_bytes(facts->size_bytes);
  request.set_claimant(options_.instance_id);
  request.set_lease_ms(absl::ToInt64Milliseconds(options_.claim_lease));
  request.set_file_drop_time_us(entry.drop_time_us);
  request.set_schema_version(facts->schema.version);
  request.set_expected_rows(facts->has_manifest ? facts->manifest.rows() : 0);
  request.set_header(HeaderText(facts->schema));  // what a redrive re-parses its dead letters with
  request.set_reference_time_us(facts->reference_time_us);
  absl::StatusOr<v1::ClaimFileResponse> claim = writer_.ClaimFile(request, span.context());
  if (!claim.ok()) {
    if (absl::IsUnavailable(claim.status()) || absl::IsDeadlineExceeded(claim.status())) {
      span.SetStatus(claim.status());
      if (metrics_ != nullptr) metrics_->claim_retries.Increment();
      LOG_DEBUG("Writer unavailable for ClaimFile") << Kv("file", name) << Kv("error", claim.status().ToString());
      return Step::kWriterUnavailable;
    }
    Refused(name, entry.attempts, entry.drop_time_us, claim.status(), &span);
    return Step::kRetryLater;
  }
  claim_backoff_.Reset();
  return Claimed(*facts, *claim, std::move(span), entry);
}

Processor::Step Processor::Claimed(const FileFacts& facts, const v1::ClaimFileResponse& claim, tracing::Span span,
                                   const PendingFile& entry) {
  const std::string& name = facts.name;
  if (v1::ClaimFileResponse::Outcome_IsValid(claim.outcome())) {
    span.SetAttribute("claim.outcome", v1::ClaimFileResponse::Outcome_Name(claim.outcome()));
  }
  switch (claim.outcome()) {
    case v1::ClaimFileResponse::OUTCOME_ALREADY_COMMITTED: {
      absl::StatusOr<std::string> moved = lifecycle_.Commit(name);
      if (!moved.ok() && !absl::IsNotFound(moved.status())) {
        Refused(name, entry.attempts, entry.drop_time_us, moved.status(), &span);
        return Step::kRetryLater;
      }
      span.SetStatus(absl::OkStatus());
      if (metrics_ != nullptr) metrics_->files_already_committed.Increment();
      LOG_INFO("File already committed") << Kv("file", name) << Kv("file_id", facts.file_id)
                                         << Kv("to", moved.ok() ? *moved : std::string("(gone)"));
      absl::MutexLock lock(&mu_);
      Done(name, /*ok=*/true);
      return Step::kDone;
    }
    case v1::ClaimFileResponse::OUTCOME_HELD_BY_OTHER: {
      if (metrics_ != nullptr) metrics_->files_held_by_other.Increment();
      const absl::Duration until_expiry = absl::Microseconds(claim.lease_expires_us() - NowMicros());
      const absl::Duration delay = std::clamp(until_expiry, absl::Milliseconds(100),
                                              std::max(absl::Milliseconds(100), options_.rescan_interval));
      LOG_DEBUG("File held by another processor") << Kv("file", name) << Kv("holder", claim.holder());
      span.SetAttribute("claim.holder", claim.holder());
      RetryLater(name, delay);
      return Step::kRetryLater;
    }
    case v1::ClaimFileResponse::OUTCOME_CLAIMED:
    case v1::ClaimFileResponse::OUTCOME_RESUME:
      break;
    default:
      Refused(name, entry.attempts, entry.drop_time_us, absl::InternalError("unknown ClaimFile outcome"), &span);
      return Step::kRetryLater;
  }
  const int64_t resume_after_row =
      claim.outcome() == v1::ClaimFileResponse::OUTCOME_RESUME ? claim.resume_after_row() : 0;
  if (facts.rows != kRowsUnknown && resume_after_row > facts.rows) {  // (else the load checks it)
    Refused(name, entry.attempts, entry.drop_time_us,
            absl::InternalError(absl::StrCat("the writer asked to resume after row ", resume_after_row, " of ",
                                             facts.rows)),
            &span);
    return Step::kRetryLater;
  }
  span.SetAttribute("resume_after_row", resume_after_row);
  const tracing::TraceContext trace = span.context();

  {
    absl::MutexLock lock(&mu_);
    pending_.erase(name);
    in_flight_names_.insert(name);
    InFlightFile& file = in_flight_[facts.file_id];
    file.name = name;
    file.drop_time_us = entry.drop_time_us;
    file.resume_after_row = resume_after_row;
    file.started_us = NowMicros();
    file.attempts = entry.attempts;
    file.span = std::move(span);
  }
  writer_.ClearRejection(facts.file_id);
  LOG_DEBUG("File claimed") << Kv("file", name) << Kv("rows", facts.rows) << Kv("resume_after_row", resume_after_row);

  CountingSink sink(this, facts.file_id);
  const FileClaim file_claim{claim.claim_token(), resume_after_row, entry.drop_time_us, trace};
  absl::StatusOr<FileJobResult> result =
      RunFileJob(facts, file_claim, JobOptions(), tracer_, &sink, [this] { return stopping_.load(); }, metrics_);
  if (result.ok()) return Step::kDone;  // the ack of the last batch finishes it

  // Reading stopped before the last batch. The batches already queued still get their acks;
  // the file is released once they have (and its span ends then).
  InFlightFile released;
  {
    absl::MutexLock lock(&mu_);
    auto it = in_flight_.find(facts.file_id);
    if (it != in_flight_.end()) {
      it->second.abandoned = true;
      it->second.span.SetStatus(result.status());
      if (it->second.batches_acked >= it->second.batches_sent) {
        released = std::move(it->second);
        in_flight_.erase(it);
        in_flight_names_.erase(name);
      }
    }
  }
  released.span.End();
  // Cancelled: we are stopping. Aborted: the writer refused the file and OnFileRejected has
  // already scheduled its retry.
  if (absl::IsCancelled(result.status()) || absl::IsAborted(result.status())) return Step::kRetryLater;
  Refused(name, entry.attempts, entry.drop_time_us, result.status());
  return Step::kRetryLater;
}

void Processor::OnAck(const OwnedBatch& owned, const v1::Ack& ack) {
  const v1::Batch& batch = owned.batch();
  InFlightFile finished;
  bool commit = false;
  bool release = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = in_flight_.find(batch.file_id());
    if (it == in_flight_.end()) return;
    InFlightFile& file = it->second;
    ++file.batches_acked;
    file.counts.rows += batch.last_row() - batch.first_row() + 1;
    file.counts.events += batch.events_size();
    file.counts.dead_letters += batch.dead_letters_size();
    file.counts.duplicates += batch.duplicate_rows();
    file.counts.late += owned.late_events;  // counted by the batcher; not on the wire
    for (const v1::ReasonCount& rc : batch.reason_counts()) file.counts.by_reason[rc.reason()] += rc.count();
    file.inserted += ack.inserted();
    file.updated += ack.updated();
    file.unchanged += ack.unchanged();
    file.dead_lettered += ack.dead_lettered();
    file.duplicates += ack.duplicates();
    if (batch.last_batch()) {
      file.span.SetAttribute("rows", batch.total_file_rows());  // counted by the load
      // A committed file keeps its name in in_flight_names_ until it has been archived.
      commit = ack.file_committed();
      release = !commit;
      finished = std::move(file);
      in_flight_.erase(it);
      if (release) in_flight_names_.erase(finished.name);
    } else if (file.abandoned && file.batches_acked >= file.batches_sent) {
      in_flight_names_.erase(file.name);
      finished = std::move(file);  // its span ends below, with the status set when it was abandoned
      in_flight_.erase(it);
    }
  }
  if (commit) {
    FinishCommitted(std::move(finished));
  } else if (release) {
    Refused(finished.name, finished.attempts, finished.drop_time_us,
            absl::InternalError("the ack of the last batch did not say file_committed"), &finished.span);
  }
  finished.span.End();
  source_.Wake();
}

void Processor::FinishCommitted(InFlightFile file) {
  absl::StatusOr<std::string> moved = lifecycle_.Commit(file.name);
  {
    absl::MutexLock lock(&mu_);
    in_flight_names_.erase(file.name);
    if (moved.ok() || absl::IsNotFound(moved.status())) Done(file.name, /*ok=*/true);
  }
  const RowCounts& c = file.counts;
  tracing::Span& span = file.span;
  span.SetAttribute("events", c.events);
  span.SetAttribute("dead_letters", c.dead_letters);
  span.SetAttribute("duplicates", c.duplicates);
  span.SetAttribute("late", c.late);
  span.SetAttribute("batches", file.batches_acked);
  span.SetAttribute("rows.inserted", file.inserted);
  span.SetAttribute("rows.updated", file.updated);
  span.SetAttribute("rows.unchanged", file.unchanged);
  const std::string trace_id = span.context().trace_id().ToHex();
  if (!moved.ok() && !absl::IsNotFound(moved.status())) {
    // Committed but still in the inbox: the next claim finds it committed and moves it again.
    Refused(file.name, file.attempts, file.drop_time_us, moved.status(), &span);
  } else {
    span.SetStatus(absl::OkStatus());
    span.End();
  }
  const int64_t now_us = NowMicros();
  if (metrics_ != nullptr) {
    metrics_->files_committed.Increment();
    metrics_->file_commit_latency_seconds.Observe(std::max<double>(0, (now_us - file.drop_time_us) / 1e6));
  }
  LOG_INFO("File committed") << Kv("file", file.name) << Kv("rows", c.rows) << Kv("events", c.events)
                             << Kv("dead_letters", c.dead_letters) << Kv("duplicates", c.duplicates)
                             << Kv("late", c.late) << Kv("inserted", file.inserted) << Kv("updated", file.updated)
                             << Kv("unchanged", file.unchanged) << Kv("batches", file.batches_acked)
                             << Kv("resumed_after_row", file.resume_after_row) << Kv("reasons", c.ReasonSummary())
                             << Kv("read_to_commit_ms", (now_us - file.started_us) / 1000)
                             << Kv("drop_to_commit_ms", (now_us - file.drop_time_us) / 1000)
                             << Kv("trace_id", trace_id)
                             << Kv("to", moved.ok() ? *moved : std::string("(not moved)"));
}

void Processor::OnFileRejected(const std::string& file_id, const absl::Status& status) {
  InFlightFile file;
  {
    absl::MutexLock lock(&mu_);
    auto it = in_flight_.find(file_id);
    if (it == in_flight_.end()) return;
    file = std::move(it->second);
    in_flight_.erase(it);
    in_flight_names_.erase(file.name);
  }
  Refused(file.name, file.attempts, file.drop_time_us, status, &file.span);
  source_.Wake();
}

}  // namespace ecomstream::processor

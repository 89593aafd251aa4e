#include "services/processor/processor.h"

#include <algorithm>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "common/time_util.h"
#include "services/processor/file_span.h"

namespace ecomstream::processor {

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
      queue_(FileQueueOptions{options_.failed_file_retry, options_.once, options_.once_max_attempts}, metrics),
      claim_step_(ClaimStepOptions{options_.instance_id, options_.claim_lease, options_.rescan_interval}, &writer_),
      archive_sweeper_(options_.delete_after_commit ? std::string() : options_.archive_dir,
                       options_.archive_retention),
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
  writer_.Start();  // opens the Write stream now, not when the first file is ready
  WarmUpInspector();
  LOG_INFO("Processor started") << Kv("input_dir", options_.input_dir) << Kv("instance_id", options_.instance_id)
                                << Kv("once", options_.once) << Kv("max_in_flight", options_.writer.max_in_flight);
  if (options_.once) {
    ASSIGN_OR_RETURN(std::vector<DiscoveredFile> present, source_.Scan());
    queue_.StartOnce(present);
  }
  while (!stopping_) {
    // Files enter in_flight_ only on this thread, and none once the queue is done.
    if (options_.once && queue_.OnceDone() && in_flight_.empty()) break;
    const absl::Time now = absl::Now();
    const absl::Duration wait =
        std::max(absl::ZeroDuration(), queue_.NextDue(claim_not_before_, now + options_.rescan_interval) - now);
    absl::StatusOr<std::vector<DiscoveredFile>> found = source_.Poll(wait);
    if (!found.ok()) {
      if (options_.once) return found.status();
      LOG_WARNING("Cannot read the input directory; retrying") << Kv("error", found.status().ToString());
      absl::SleepFor(options_.rescan_interval);
      continue;
    }
    queue_.Merge(*found);
    ProcessDueFiles();
    archive_sweeper_.MaybeSweep(absl::Now());
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
  // Files still in flight stay in the inbox: their attempts end here, before the tracer flushes.
  in_flight_.EndSpans();
  LOG_INFO("Processor stopped") << Kv("batches_sent", stats.batches_sent) << Kv("batches_acked", stats.batches_acked)
                                << Kv("batches_resent", stats.batches_resent)
                                << Kv("stream_failures", stats.stream_failures);
  if (options_.once) {
    const std::vector<std::string> unfinished = queue_.OnceUnfinished();
    if (!unfinished.empty()) {
      return absl::AbortedError(absl::StrCat(unfinished.size(), " file(s) could not be committed: ",
                                             absl::StrJoin(unfinished, ", ")));
    }
  }
  return absl::OkStatus();
}

void Processor::ProcessDueFiles() {
  const absl::Time now = absl::Now();
  if (now < claim_not_before_) return;
  for (const std::string& name : queue_.Due(now)) {
    if (stopping_) return;
    const Step step = ProcessFile(name);
    if (step == Step::kWriterUnavailable) {
      claim_not_before_ = absl::Now() + claim_backoff_.Next();
      return;
    }
  }
}

void Processor::Refused(const std::string& name, int previous_attempts, int64_t drop_time_us,
                        const absl::Status& why, tracing::Span* span) {
  if (span != nullptr) {
    span->SetStatus(why);
    span->End();
  }
  queue_.Refused(name, previous_attempts, drop_time_us, why);
}

// The sink of a file job started before its claim was answered. The first batch waits for the
// answer: a claim that grants the file from its first row admits it to in_flight_ and lets that
// batch and the rest through, with the claim's token; any other answer refuses the batch
// (kAborted), which ends the job with nothing sent.
class Processor::ClaimGate : public BatchSink {
 public:
  ClaimGate(Processor* processor, const FileFacts& facts, const FileQueue::Entry& entry,
            std::unique_ptr<PendingClaim> claim, tracing::Span span)
      : processor_(processor),
        facts_(facts),
        entry_(entry),
        claim_(std::move(claim)),
        span_(std::move(span)),
        sink_(&processor->in_flight_, &processor->writer_, facts.file_id) {}

  absl::Status Send(std::unique_ptr<OwnedBatch> batch) override {
    if (!admitted_) {
      const absl::StatusOr<v1::ClaimFileResponse>& claim = claim_->Wait();
      if (!claim.ok() || !GrantsFromFirstRow(*claim)) {
        const absl::Status refused = absl::AbortedError("the claim did not grant the file from its first row");
        batch->span.SetStatus(refused);  // it ends with the batch, unsent
        return refused;
      }
      token_ = claim->claim_token();
      processor_->Admit(facts_, entry_, *claim, /*resume_after_row=*/0, std::move(span_));
      admitted_ = true;
    }
    batch->batch().set_claim_token(token_);
    return sink_.Send(std::move(batch));
  }

  bool admitted() const { return admitted_; }
  bool answered() const { return claim_->answered(); }
  const absl::StatusOr<v1::ClaimFileResponse>& Answer() { return claim_->Wait(); }
  tracing::Span TakeSpan() { return std::move(span_); }

 private:
  Processor* const processor_;
  const FileFacts& facts_;
  const FileQueue::Entry& entry_;
  const std::unique_ptr<PendingClaim> claim_;
  tracing::Span span_;  // until admitted
  CountingSink sink_;
  bool admitted_ = false;
  std::string token_;
};

Processor::Step Processor::ProcessFile(const std::string& name) {
  const absl::Time picked_up = absl::Now();
  const std::optional<FileQueue::Entry> entry = queue_.PickUp(name);
  if (!entry.has_value()) return Step::kDone;
  absl::StatusOr<FileFacts> facts = InspectFile(options_.input_dir, name, options_.job.csv);
  if (absl::IsNotFound(facts.status())) {
    queue_.Done(name, /*ok=*/true);  // gone: another processor finished it
    return Step::kDone;
  }
  if (!facts.ok()) {
    Refused(name, entry->attempts, entry->drop_time_us, facts.status());
    return Step::kRetryLater;
  }
  if (!facts->quarantine_reason.empty()) {
    tracing::Span span = StartFileSpan(*tracer_, *facts, picked_up);
    span.SetAttribute("file.quarantine_reason", facts->quarantine_reason);
    absl::StatusOr<std::string> moved = lifecycle_.Quarantine(name, facts->quarantine_reason);
    if (!moved.ok()) {
      Refused(name, entry->attempts, entry->drop_time_us, moved.status(), &span);
      return Step::kRetryLater;
    }
    span.SetStatus(absl::FailedPreconditionError(absl::StrCat("quarantined: ", facts->quarantine_reason)));
    if (metrics_ != nullptr) metrics_->files_quarantined.Increment();
    LOG_WARNING("File quarantined") << Kv("file", name) << Kv("to", *moved) << Kv("reason", facts->quarantine_reason);
    queue_.Done(name, /*ok=*/true);
    return Step::kDone;
  }
  if (in_flight_.Contains(facts->file_id)) {
    // The same bytes under another name are being loaded: ask again when that is settled.
    queue_.RetryAfter(name, options_.rescan_interval);
    return Step::kRetryLater;
  }

  // Continues the generator's trace when the manifest carries one.
  tracing::Span span = StartFileSpan(*tracer_, *facts, picked_up);
  const tracing::TraceContext trace = span.context();
  // The claim travels while the file job reads and parses the first batch, which waits for the
  // answer (ClaimGate): the usual answer lets it go on, any other discards what was read.
  ClaimGate gate(this, *facts, *entry, claim_step_.Start(*facts, entry->drop_time_us, trace), std::move(span));

  absl::StatusOr<FileJobResult> result = absl::UnavailableError("not read: the claim failed at once");
  if (!gate.answered()) {  // else the breaker is open
    const FileClaim read_ahead{std::string(), /*resume_after_row=*/0, entry->drop_time_us, trace};
    result = RunFileJob(*facts, read_ahead, JobOptions(), tracer_, &gate, [this] { return stopping_.load(); },
                        metrics_);
  }
  if (gate.admitted()) return Loaded(*facts, *entry, result);

  // Nothing was sent: the answer decides, as if it had come before the reading.
  const absl::StatusOr<v1::ClaimFileResponse>& claim = gate.Answer();
  span = gate.TakeSpan();
  if (!claim.ok()) {
    if (WriterUnavailable(claim.status())) {
      span.SetStatus(claim.status());
      if (metrics_ != nullptr) metrics_->claim_retries.Increment();
      LOG_DEBUG("Writer unavailable for ClaimFile") << Kv("file", name) << Kv("error", claim.status().ToString());
      return Step::kWriterUnavailable;
    }
    Refused(name, entry->attempts, entry->drop_time_us, claim.status(), &span);
    return Step::kRetryLater;
  }
  claim_backoff_.Reset();
  if (GrantsFromFirstRow(*claim)) {
    // Granted, but the reading stopped before its first batch (stopping, or the file changed).
    span.SetAttribute("claim.outcome", v1::ClaimFileResponse::Outcome_Name(claim->outcome()));
    if (absl::IsCancelled(result.status())) {
      span.SetStatus(result.status());
      return Step::kRetryLater;
    }
    Refused(name, entry->attempts, entry->drop_time_us, result.status(), &span);
    return Step::kRetryLater;
  }
  return Claimed(*facts, *claim, std::move(span), *entry);
}

Processor::Step Processor::Claimed(const FileFacts& facts, const v1::ClaimFileResponse& claim, tracing::Span span,
                                   const FileQueue::Entry& entry) {
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
      queue_.Done(name, /*ok=*/true);
      return Step::kDone;
    }
    case v1::ClaimFileResponse::OUTCOME_HELD_BY_OTHER:
      if (metrics_ != nullptr) metrics_->files_held_by_other.Increment();
      LOG_DEBUG("File held by another processor") << Kv("file", name) << Kv("holder", claim.holder());
      span.SetAttribute("claim.holder", claim.holder());
      queue_.RetryAfter(name, claim_step_.HeldByOtherWait(claim));
      return Step::kRetryLater;
    case v1::ClaimFileResponse::OUTCOME_CLAIMED:
    case v1::ClaimFileResponse::OUTCOME_RESUME:
      break;
    default:
      Refused(name, entry.attempts, entry.drop_time_us, absl::InternalError("unknown ClaimFile outcome"), &span);
      return Step::kRetryLater;
  }
  const absl::StatusOr<int64_t> resume_after_row = ResumeAfterRow(facts, claim);
  if (!resume_after_row.ok()) {
    Refused(name, entry.attempts, entry.drop_time_us, resume_after_row.status(), &span);
    return Step::kRetryLater;
  }
  const tracing::TraceContext trace = span.context();
  Admit(facts, entry, claim, *resume_after_row, std::move(span));
  CountingSink sink(&in_flight_, &writer_, facts.file_id);
  const FileClaim file_claim{claim.claim_token(), *resume_after_row, entry.drop_time_us, trace};
  absl::StatusOr<FileJobResult> result =
      RunFileJob(facts, file_claim, JobOptions(), tracer_, &sink, [this] { return stopping_.load(); }, metrics_);
  return Loaded(facts, entry, result);
}

void Processor::Admit(const FileFacts& facts, const FileQueue::Entry& entry, const v1::ClaimFileResponse& claim,
                      int64_t resume_after_row, tracing::Span span) {
  span.SetAttribute("claim.outcome", v1::ClaimFileResponse::Outcome_Name(claim.outcome()));
  span.SetAttribute("resume_after_row", resume_after_row);
  queue_.MarkInFlight(facts.name);
  InFlightFile file;
  file.name = facts.name;
  file.drop_time_us = entry.drop_time_us;
  file.resume_after_row = resume_after_row;
  file.started_us = NowMicros();
  file.attempts = entry.attempts;
  file.span = std::move(span);
  in_flight_.Add(facts.file_id, std::move(file));
  writer_.ClearRejection(facts.file_id);
  claim_backoff_.Reset();
  LOG_DEBUG("File claimed") << Kv("file", facts.name) << Kv("rows", facts.rows)
                            << Kv("resume_after_row", resume_after_row);
}

Processor::Step Processor::Loaded(const FileFacts& facts, const FileQueue::Entry& entry,
                                  const absl::StatusOr<FileJobResult>& result) {
  if (result.ok()) return Step::kDone;  // the ack of the last batch finishes it

  // Reading stopped before the last batch. The batches already queued still get their acks;
  // the file is released once they have (and its span ends then).
  std::optional<InFlightFile> released = in_flight_.Abandon(facts.file_id, result.status());
  if (released.has_value()) {
    queue_.ReleaseInFlight(facts.name);
    released->span.End();
  }
  // Cancelled: we are stopping. Aborted: the writer refused the file and OnFileRejected has
  // already scheduled its retry.
  if (absl::IsCancelled(result.status()) || absl::IsAborted(result.status())) return Step::kRetryLater;
  Refused(facts.name, entry.attempts, entry.drop_time_us, result.status());
  return Step::kRetryLater;
}

void Processor::OnAck(const OwnedBatch& owned, const v1::Ack& ack) {
  std::optional<InFlightFiles::Settled> settled = in_flight_.Ack(owned, ack);
  if (!settled.has_value()) return;
  InFlightFile& file = settled->file;
  switch (settled->how) {
    case InFlightFiles::Left::kCommitted:
      // The name stays in flight until the file has been archived.
      FinishCommitted(std::move(file));
      break;
    case InFlightFiles::Left::kNotCommitted:
      queue_.ReleaseInFlight(file.name);
      Refused(file.name, file.attempts, file.drop_time_us,
              absl::InternalError("the ack of the last batch did not say file_committed"), &file.span);
      break;
    case InFlightFiles::Left::kAbandoned:
      queue_.ReleaseInFlight(file.name);
      break;
  }
  file.span.End();  // with the status set when it was abandoned
  source_.Wake();
}

void Processor::FinishCommitted(InFlightFile file) {
  absl::StatusOr<std::string> moved = lifecycle_.Commit(file.name);
  const bool archived = moved.ok() || absl::IsNotFound(moved.status());
  if (archived) {
    queue_.Done(file.name, /*ok=*/true);
  } else {
    queue_.ReleaseInFlight(file.name);
  }
  SetCommittedAttributes(file);
  const std::string trace_id = file.span.context().trace_id().ToHex();
  if (!archived) {
    // Committed but still in the inbox: the next claim finds it committed and moves it again.
    Refused(file.name, file.attempts, file.drop_time_us, moved.status(), &file.span);
  } else {
    file.span.SetStatus(absl::OkStatus());
    file.span.End();
  }
  const int64_t now_us = NowMicros();
  if (metrics_ != nullptr) {
    metrics_->files_committed.Increment();
    metrics_->file_commit_latency_seconds.Observe(std::max<double>(0, (now_us - file.drop_time_us) / 1e6));
  }
  LogCommitted(file, moved.ok() ? *moved : std::string("(not moved)"), trace_id, now_us);
}

void Processor::OnFileRejected(const std::string& file_id, const absl::Status& status) {
  std::optional<InFlightFile> file = in_flight_.Remove(file_id);
  if (!file.has_value()) return;
  queue_.ReleaseInFlight(file->name);
  Refused(file->name, file->attempts, file->drop_time_us, status, &file->span);
  source_.Wake();
}

}  // namespace ecomstream::processor

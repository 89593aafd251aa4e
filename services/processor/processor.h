// processor: the loop that wires the pipeline for one inbox:
//
//   directory_source -> file_queue -> file_inspector -> file_claim (ClaimFile) -> file_job
//   (csv_reader -> row_validator -> batcher) -> writer_client -> [writer] -> ack ->
//   in_flight_files -> file_lifecycle (archive / quarantine); archive_sweep expires the archive.
//
// Files are taken oldest name first, one at a time on the Run() thread; several files can be in
// flight because a file's batches stay in the writer client's window while the next file is
// read. A file's ClaimFile call travels while its job reads the first batch, which waits for the
// answer (ClaimGate): the usual answer lets it go with the claim's token, any other drops what
// was read and is handled as if it had come first. A file leaves the inbox only after the ack of its last batch says file_committed (or
// ClaimFile says it already was), or to quarantine. Nothing else moves or deletes it. Each
// attempt at a file has a file.process span (file_span.h).
//
// Threads: Run() on one thread; Stop() and Ready() from any thread; acks arrive on the writer
// client's thread.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/tracer.h"
#include "services/processor/archive_sweep.h"
#include "services/processor/config.h"
#include "services/processor/directory_source.h"
#include "services/processor/file_claim.h"
#include "services/processor/file_inspector.h"
#include "services/processor/file_job.h"
#include "services/processor/file_lifecycle.h"
#include "services/processor/file_queue.h"
#include "services/processor/in_flight_files.h"
#include "services/processor/processor_metrics.h"
#include "services/processor/retry.h"
#include "services/processor/writer_client.h"

namespace ecomstream::processor {

class Processor : public AckHandler {
 public:
  // `metrics` must outlive the processor, and so must `tracer`, which gets the file.process and
  // batch.send spans; null means an enabled tracer that exports nothing (traceparents still
  // propagate).
  Processor(ProcessorConfig options, std::shared_ptr<grpc::Channel> channel, ProcessorMetrics* metrics,
            const tracing::Tracer* tracer = nullptr);
  ~Processor() override;
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  // Runs until Stop(), or with `once` until every file present at start is committed,
  // quarantined or gone. Then drains: no new batch, waits up to drain_timeout for the acks of
  // those sent. Returns OK; with `once`, kAborted naming the files that could not be committed.
  // Start-up errors (inbox missing, archive not creatable) as returned by the filesystem.
  absl::Status Run();
  // Stops intake and makes Run() drain and return. Thread-safe, idempotent.
  void Stop();
  // The writer answers (for /readyz).
  bool Ready() { return writer_.Ready(); }

  const WriterClient& writer_client() const { return writer_; }

  // AckHandler (the writer client's thread).
  void OnAck(const OwnedBatch& owned, const v1::Ack& ack) override;
  void OnFileRejected(const std::string& file_id, const absl::Status& status) override;

 private:
  enum class Step { kDone, kRetryLater, kWriterUnavailable };

  // options_.job with the rules active now.
  FileJobOptions JobOptions() const;
  void ProcessDueFiles();
  Step ProcessFile(const std::string& name);
  class ClaimGate;
  // A claim answered before any batch of the file was sent: settles the file or loads it.
  Step Claimed(const FileFacts& facts, const v1::ClaimFileResponse& claim, tracing::Span span,
               const FileQueue::Entry& entry);
  // A granted claim: the file is in flight from now on, with `span` (file.process).
  void Admit(const FileFacts& facts, const FileQueue::Entry& entry, const v1::ClaimFileResponse& claim,
             int64_t resume_after_row, tracing::Span span);
  // After the file job of an admitted file.
  Step Loaded(const FileFacts& facts, const FileQueue::Entry& entry, const absl::StatusOr<FileJobResult>& result);
  // Archives a file whose last batch was committed (it has left in_flight_, not yet the queue).
  void FinishCommitted(InFlightFile file);
  // Queues `name` again after a refusal (FileQueue::Refused); ends `span` (may be null) with `why`.
  void Refused(const std::string& name, int previous_attempts, int64_t drop_time_us, const absl::Status& why,
               tracing::Span* span = nullptr);

  const ProcessorConfig options_;
  ProcessorMetrics* const metrics_;
  std::unique_ptr<tracing::Tracer> own_tracer_;  // when the constructor got none
  const tracing::Tracer* const tracer_;          // outlives the spans in in_flight_ and writer_
  DirectorySource source_;
  FileLifecycle lifecycle_;
  WriterClient writer_;
  FileQueue queue_;
  InFlightFiles in_flight_;
  ClaimStep claim_step_;
  ArchiveSweeper archive_sweeper_;  // Run() thread only
  std::atomic<bool> stopping_{false};
  Backoff claim_backoff_;  // Run() thread only: every claim waits while the writer is unavailable
  absl::Time claim_not_before_ = absl::InfinitePast();
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_H_

// processor: wires the pipeline (STYLE.md §3) for one inbox:
//
//   directory_source -> file_inspector -> ClaimFile -> file_job (csv_reader -> row_validator ->
//   batcher) -> writer_client -> [writer] -> ack -> file_lifecycle (archive / quarantine)
//
// Files are taken oldest name first, one at a time on the Run() thread; several files can be in
// flight because a file's batches stay in the writer client's window while the next file is
// read. A file leaves the inbox only after the ack of its last batch says file_committed (or
// ClaimFile says it already was), or to quarantine. Nothing else moves or deletes it.
//
// Tracing (DESIGN.md, "Tracing"): each attempt at a file is a `file.process` span (CONSUMER), a
// child of the manifest's traceparent (a new trace without one), from the moment Run() picks the
// file up (before its inspection) until its last batch's ack has been handled and the file
// archived. It ends with an error status when the file is quarantined, refused, rejected or
// abandoned, and carries file.name, file.id, file.size_bytes, schema_version, rows and, when
// committed, events, dead_letters, duplicates and batches. Its context goes to ClaimFile's
// metadata; each batch's `batch.send` span (CLIENT) is its child (see batcher.h). A file that
// vanished or could not be read at all gets no span.
//
// Threads: Run() on one thread; Stop() and Ready() from any thread; acks arrive on the writer
// client's thread.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tracer.h"
#include "services/processor/directory_source.h"
#include "services/processor/file_inspector.h"
#include "services/processor/file_job.h"
#include "services/processor/file_lifecycle.h"
#include "services/processor/processor_metrics.h"
#include "services/processor/rules.h"
#include "services/processor/writer_client.h"

namespace ecomstream::processor {

struct ProcessorConfig {
  std::string input_dir;
  std::string archive_dir;     // required unless delete_after_commit
  std::string quarantine_dir;
  bool delete_after_commit = false;
  // Archived files older than this are deleted (archive_retention.h); zero keeps them all.
  absl::Duration archive_retention = absl::Hours(7 * 24);
  // Process the files present at start, wait for their commits, return.
  bool once = false;
  std::string instance_id;     // the claimant in ClaimFile
  absl::Duration rescan_interval = absl::Seconds(2);
  absl::Duration claim_lease = absl::Seconds(60);
  absl::Duration drain_timeout = absl::Seconds(30);     // Stop(): wait this long for acks
  absl::Duration failed_file_retry = absl::Seconds(5);  // first retry after a refusal, doubling
  int once_max_attempts = 3;  // with once: refusals of one file before giving it up
  bool watch = true;          // inotify (false: rescans only)
  FileJobOptions job;
  // The active rules, read as each file starts (job.rules is used when null). Must outlive the
  // processor.
  const RulesStore* rules = nullptr;
  WriterClientOptions writer;
  // Used by main to build the channel and the status server (the processor gets the channel).
  std::string writer_address = "127.0.0.1:50051";
  TlsFiles tls;
  std::string metrics_address;  // empty: no HTTP status server

  // The first invalid setting as kInvalidArgument with one clear sentence (flag names included).
  absl::Status Validate() const;
};

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
  struct PendingFile {
    int64_t drop_time_us = 0;
    absl::Time not_before = absl::InfinitePast();
    int attempts = 0;  // refusals so far
    bool picked_up = false;
  };
  struct InFlightFile {
    std::string name;
    int64_t drop_time_us = 0;
    int64_t resume_after_row = 0;
    int64_t started_us = 0;
    int attempts = 0;
    RowCounts counts;  // rows of the acknowledged batches
    int64_t batches_sent = 0;
    int64_t batches_acked = 0;
    int64_t inserted = 0, updated = 0, unchanged = 0, dead_lettered = 0, duplicates = 0;
    bool abandoned = false;  // reading stopped before the last batch (span has the status)
    tracing::Span span;      // file.process; ends when the entry is released or committed
  };
  enum class Step { kDone, kRetryLater, kWriterUnavailable };
  class CountingSink;

  // options_.job with the rules active now.
  FileJobOptions JobOptions() const;
  void Merge(const std::vector<DiscoveredFile>& files);
  // Deletes expired archived files, at most every archive_retention / 10 (1 min .. 1 h).
  void SweepArchive();
  void ProcessDueFiles();
  Step ProcessFile(const std::string& name);
  Step Claimed(const FileFacts& facts, const v1::ClaimFileResponse& claim, tracing::Span span,
               const PendingFile& entry);
  // The file.process span of an attempt that began at `picked_up`.
  tracing::Span StartFileSpan(const FileFacts& facts, absl::Time picked_up) const;
  // `file` has left in_flight_ (its name is still in in_flight_names_).
  void FinishCommitted(InFlightFile file);
  // Puts `name` back in the queue after a refusal; with once, gives up after once_max_attempts.
  // `previous_attempts` is the file's attempts before this one (PendingFile::attempts); this
  // refusal makes it previous_attempts + 1. Ends `span` (may be null) with `why`.
  void Refused(const std::string& name, int previous_attempts, int64_t drop_time_us, const absl::Status& why,
               tracing::Span* span = nullptr);
  void RetryLater(const std::string& name, absl::Duration delay);
  void Done(const std::string& name, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool OnceFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration NextWake() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ProcessorConfig options_;
  ProcessorMetrics* const metrics_;
  absl::Time next_archive_sweep_ = absl::InfinitePast();  // Run's thread only
  std::unique_ptr<tracing::Tracer> own_tracer_;  // when the constructor got none
  const tracing::Tracer* const tracer_;          // outlives the spans in in_flight_ and writer_
  DirectorySource source_;
  FileLifecycle lifecycle_;
  WriterClient writer_;
  std::atomic<bool> stopping_{false};
  Backoff claim_backoff_;  // Run() thread only
  absl::Time claim_not_before_ = absl::InfinitePast();

  absl::Mutex mu_;
  std::map<std::string, PendingFile> pending_ ABSL_GUARDED_BY(mu_);  // by name: oldest first
  absl::flat_hash_map<std::string, InFlightFile> in_flight_ ABSL_GUARDED_BY(mu_);  // by file id
  absl::flat_hash_set<std::string> in_flight_names_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> once_open_ ABSL_GUARDED_BY(mu_);   // with once: files still to finish
  std::set<std::string> once_failed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_H_

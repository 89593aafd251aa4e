// in_flight_files: the files claimed and not yet settled, by file id. Owns each one's
// accounting: the batches sent and acknowledged, the rows of the acknowledged batches (the
// counts each batch carries, batcher.h), the writer's figures from the acks (inserted, updated,
// unchanged, dead-lettered, duplicates) and the attempt's file.process span. Decides when a file
// leaves: with the ack of its last batch (committed or not), or, when its reading stopped early
// or the writer rejected it, once no batch of it is unacknowledged. Moving the file is the
// caller's job.
//
// Thread-safe: Run's thread adds files and counts what it sends; the writer client's thread
// records acks and rejections.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_IN_FLIGHT_FILES_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_IN_FLIGHT_FILES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/tracer.h"
#include "services/processor/batcher.h"
#include "services/processor/file_job.h"
#include "services/processor/row_validator.h"
#include "services/processor/writer_client.h"

namespace ecomstream::processor {

struct InFlightFile {
  std::string name;
  int64_t drop_time_us = 0;
  int64_t resume_after_row = 0;
  int64_t started_us = 0;
  int attempts = 0;  // refusals before this attempt
  RowCounts counts;  // rows of the acknowledged batches
  int64_t batches_sent = 0;
  int64_t batches_acked = 0;
  int64_t inserted = 0, updated = 0, unchanged = 0, dead_lettered = 0, duplicates = 0;
  bool abandoned = false;  // reading stopped before the last batch (span has the status)
  tracing::Span span;      // file.process; ends when the file leaves
};

class InFlightFiles {
 public:
  // How a file left with an ack.
  enum class Left { kCommitted, kNotCommitted, kAbandoned };
  struct Settled {
    Left how;
    InFlightFile file;
  };

  void Add(const std::string& file_id, InFlightFile file);
  bool Contains(const std::string& file_id) const;
  bool empty() const;

  // Counts a batch about to be sent (before Send: its ack may come first). False when the file
  // is no longer in flight.
  bool CountSent(const std::string& file_id);
  // The batch counted by CountSent was not sent after all.
  void UncountSent(const std::string& file_id);

  // Adds the ack of `owned`; returns the file when this ack settles it: its last batch
  // (kCommitted when the ack says file_committed, else kNotCommitted; the span gets the file's
  // row count), or the last outstanding batch of an abandoned file (kAbandoned).
  std::optional<Settled> Ack(const OwnedBatch& owned, const v1::Ack& ack);
  // Reading stopped early with `why`: marks the file abandoned, its span with `why`. Returns the
  // file when it leaves now (no batch unacknowledged); else the last ack releases it.
  std::optional<InFlightFile> Abandon(const std::string& file_id, const absl::Status& why);
  // Removes the file (the writer rejected it).
  std::optional<InFlightFile> Remove(const std::string& file_id);
  // Ends the spans of the files still in flight (when stopping: they stay in the inbox).
  void EndSpans();

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, InFlightFile> files_ ABSL_GUARDED_BY(mu_);  // by file id
};

// Logs "File committed" with `file`'s accounting, where it went (`to`) and its trace.
void LogCommitted(const InFlightFile& file, const std::string& to, const std::string& trace_id, int64_t now_us);

// Sends a file job's batches to the writer, counting them in its in-flight entry, so an
// abandoned file is released once they are all acknowledged.
class CountingSink : public BatchSink {
 public:
  CountingSink(InFlightFiles* files, WriterClient* writer, std::string file_id)
      : files_(files), writer_(writer), file_id_(std::move(file_id)) {}
  absl::Status Send(std::unique_ptr<OwnedBatch> batch) override;

 private:
  InFlightFiles* const files_;
  WriterClient* const writer_;
  const std::string file_id_;
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_IN_FLIGHT_FILES_H_

// batcher: groups one file's consecutive rows into Batch messages bounded by rows, bytes and age
// (docs/design.md, "wire"). Every row of the range [first_row, last_row] lands in the
// batch exactly once: as an event, a dead letter, or a counted exact duplicate.
//
// Tracing: each batch is cut with its `batch.send` span (CLIENT, a child of the file's
// file.process span) started, and carries that span's traceparent. The span travels with the
// batch (OwnedBatch::span) and is ended by whoever settles it: the writer client when the ack
// arrives, or with an error status when the batch is refused or dropped.
//
// Not thread-safe; one batcher per file.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_BATCHER_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_BATCHER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/trace_context.h"
#include "common/tracer.h"
#include "ecomstream/v1/ingest.pb.h"
#include "google/protobuf/arena.h"
#include "services/processor/component_counters.h"
#include "services/processor/row_validator.h"

namespace ecomstream::processor {

// A batch and the arena its messages live on. Move-only.
class OwnedBatch {
 public:
  OwnedBatch();
  OwnedBatch(const OwnedBatch&) = delete;
  OwnedBatch& operator=(const OwnedBatch&) = delete;

  v1::Batch& batch() { return *batch_; }
  const v1::Batch& batch() const { return *batch_; }
  // Rows in [first_row, last_row].
  int64_t rows() const { return batch_->last_row() - batch_->first_row() + 1; }
  // The batcher's estimate of the serialized size, an upper bound for typical rows.
  size_t estimated_bytes = 0;
  // This batch's rows by outcome and reason, set by Batcher::Cut (late is not on the wire).
  RowCounts counts;
  // The batch.send span, from the cut until the ack; batch().traceparent() is its context.
  tracing::Span span;

 private:
  std::unique_ptr<google::protobuf::Arena> arena_;
  v1::Batch* batch_;
};

struct BatcherOptions {
  int64_t max_rows = 10000;
  size_t max_bytes = 1 << 20;  // estimated serialized bytes
  absl::Duration linger = absl::Milliseconds(200);
};

// What every batch of a file carries.
struct FileBatchInfo {
  std::string file_id;
  std::string file_name;
  std::string claim_token;
  tracing::TraceContext trace;  // the file.process span; each batch.send span is its child
  int64_t file_drop_time_us = 0;
  int64_t read_time_us = 0;
};

class Batcher {
 public:
  // The first batch starts at `first_row`. `tracer` (which must outlive every batch cut) starts
  // the batch.send spans. `now` returns monotonic microseconds (injectable for tests of the age
  // bound). `counters` (may be null; must outlive the batcher) counts rows in and batches out, as
  // of the last Cut.
  Batcher(BatcherOptions options, FileBatchInfo info, int64_t first_row, const tracing::Tracer* tracer,
          std::function<int64_t()> now = nullptr, ComponentCounters* counters = nullptr);

  // Each adds the next row of the open batch. AddEvent returns the event to fill (owned by the
  // batch; `raw_bytes` is the row's CSV size, for the byte bound); AddDeadLetter copies the
  // dead letter (a rare row) and counts its reasons.
  v1::Event* AddEvent(size_t raw_bytes, bool late);
  void AddDeadLetter(const v1::DeadLetter& dead_letter);
  void AddDuplicate();

  // True when the open batch has reached max_rows or max_bytes (so a batch exceeds max_bytes by
  // at most its last row), or has held a row for `linger`.
  bool Full() const;

  // Closes the open batch (possibly empty: rows [first_row, first_row - 1]), starts its
  // batch.send span and opens the next. `last` marks the file's final batch and sets
  // total_file_rows.
  std::unique_ptr<OwnedBatch> Cut(bool last, int64_t total_file_rows = 0);

 private:
  void Open();
  // Starts the open batch's age clock on its first row and moves past the row.
  void NextRow();

  BatcherOptions options_;
  FileBatchInfo info_;
  const tracing::Tracer* const tracer_;
  std::function<int64_t()> now_;
  BufferedCounts counts_;  // brought up to date by each Cut
  std::unique_ptr<OwnedBatch> open_;
  int64_t first_row_;
  int64_t next_row_;
  int64_t opened_at_us_ = 0;
  std::array<int64_t, kNumRejectReasons> reason_counts_{};
  int64_t late_ = 0;  // late events in the open batch
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_BATCHER_H_

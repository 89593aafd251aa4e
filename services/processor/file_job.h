// file_job: one claimed file, from its header to its last batch (docs/design.md,
// "delivery"). Reads the file with the streaming CSV reader, validates every row, and hands
// batches of the rows after `resume_after_row` to a sink, the last one flagged last_batch with
// the file's row count. Rows up to resume_after_row are validated but not sent: they rebuild the
// in-file duplicate state that later rows are judged against.
//
// Memory: the reader's buffer, the duplicate state (see row_validator.h) and one open batch;
// the sink bounds the rest. Runs on the caller's thread.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_FILE_JOB_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_FILE_JOB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/trace_context.h"
#include "common/tracer.h"
#include "services/processor/batcher.h"
#include "services/processor/csv_reader.h"
#include "services/processor/file_inspector.h"
#include "services/processor/processor_metrics.h"
#include "services/processor/row_validator.h"
#include "services/processor/rules.h"
#include "services/processor/tap.h"

namespace ecomstream::processor {

// Where batches go (the WriterClient in production). Send may block (backpressure); an error
// stops the job and is returned by it.
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  virtual absl::Status Send(std::unique_ptr<OwnedBatch> batch) = 0;
};

struct FileJobOptions {
  CsvReaderOptions csv;
  BatcherOptions batch;
  int64_t late_after_us = 3600LL * 1000000;
  int64_t max_future_us = 3600LL * 1000000;
  // The catalogues and windows to validate with (the two above are ignored then); null: the
  // built-in catalogues with the windows above.
  std::shared_ptr<const Rules> rules;
  // Gets every row sent when someone watches (may be null); must outlive the job.
  Tap* tap = nullptr;
};

// What ClaimFile granted.
struct FileClaim {
  std::string claim_token;
  int64_t resume_after_row = 0;
  int64_t drop_time_us = 0;
  tracing::TraceContext trace;  // the file.process span's context; batch.send spans are its children
};

struct FileJobResult {
  RowCounts file_counts;  // every row of the file, those before resume_after_row included
  int64_t rows = 0;       // data rows in the file
  int64_t batches = 0;    // batches sent
};

// Adds the validator's current row, classified `outcome`, as the next row of `batcher`.
void AddValidatedRow(const RowValidator& validator, RowOutcome outcome, size_t raw_bytes, Batcher* batcher);

// Runs the job. Each batch goes to `sink` with its batch.send span (from `tracer`) started.
// Checks `cancelled` (may be empty) between batches and returns kCancelled when it says so.
// kDataLoss when the file no longer matches its inspection (header, size, or the row count
// when the inspection knew it); kInternal when claim.resume_after_row is beyond the file's rows
// (the last batch is not sent then); I/O errors from the reader; the sink's error as is.
// `metrics` may be null.
absl::StatusOr<FileJobResult> RunFileJob(const FileFacts& facts, const FileClaim& claim, const FileJobOptions& options,
                                         const tracing::Tracer* tracer, BatchSink* sink,
                                         const std::function<bool()>& cancelled, ProcessorMetrics* metrics);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_FILE_JOB_H_

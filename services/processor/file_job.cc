#include "services/processor/file_job.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/time_util.h"

namespace ecomstream::processor {
namespace {

void CountBatch(const OwnedBatch& owned, ProcessorMetrics* metrics) {
  if (metrics == nullptr) return;
  const v1::Batch& batch = owned.batch();
  RowCounts counts;
  counts.rows = owned.rows();
  counts.events = batch.events_size();
  counts.dead_letters = batch.dead_letters_size();
  counts.duplicates = batch.duplicate_rows();
  counts.late = owned.late_events;
  for (const v1::ReasonCount& rc : batch.reason_counts()) counts.by_reason[rc.reason()] += rc.count();
  metrics->CountRows(counts);
  metrics->row_validator.received.Increment(static_cast<double>(counts.rows));
  metrics->row_validator.sent.Increment(static_cast<double>(counts.events));
  metrics->row_validator.dropped.Increment(static_cast<double>(counts.duplicates));
  metrics->row_validator.failed.Increment(static_cast<double>(counts.dead_letters));
  metrics->batcher.received.Increment(static_cast<double>(counts.rows));
  metrics->batcher.sent.Increment();
}

}  // namespace

absl::StatusOr<FileJobResult> RunFileJob(const FileFacts& facts, const FileClaim& claim, const FileJobOptions& options,
                                         const tracing::Tracer* tracer, BatchSink* sink,
                                         const std::function<bool()>& cancelled, ProcessorMetrics* metrics) {
  ASSIGN_OR_RETURN(std::unique_ptr<FileByteSource> source, FileByteSource::Open(facts.path));
  CsvReader reader(source.get(), options.csv);
  CsvRecord record;
  ASSIGN_OR_RETURN(bool more, reader.Next(&record));
  if (!more || record.flags != 0) return absl::DataLossError(absl::StrCat(facts.path, " lost its header"));
  absl::StatusOr<Schema> schema = SchemaRegistry::Detect(record.fields);
  if (!schema.ok() || schema->index != facts.schema.index) {
    return absl::DataLossError(absl::StrCat(facts.path, " has another header than when it was inspected"));
  }

  RowValidatorOptions validator_options{facts.reference_time_us, options.late_after_us, options.max_future_us,
                                        options.csv.max_row_bytes};
  if (options.rules != nullptr) {
    validator_options.late_after_us = options.rules->late_after_us();
    validator_options.max_future_us = options.rules->max_future_us();
    validator_options.rules = options.rules.get();
  }
  // The duplicate check reads an earlier row again instead of keeping every event id.
  const std::unique_ptr<RereadRows> earlier_rows = RereadRows::ForFile(facts.path, options.csv);
  validator_options.earlier_rows = earlier_rows.get();
  validator_options.file_bytes = facts.size_bytes;
  RowValidator validator(*schema, validator_options);
  FileBatchInfo info{facts.file_id, facts.name, claim.claim_token, claim.trace, claim.drop_time_us, NowMicros()};
  Batcher batcher(options.batch, std::move(info), claim.resume_after_row + 1, tracer);
  FileJobResult result;
  auto send = [&](std::unique_ptr<OwnedBatch> batch) -> absl::Status {
    CountBatch(*batch, metrics);
    ++result.batches;
    return sink->Send(std::move(batch));
  };

  int64_t row = 0;
  for (;;) {
    ASSIGN_OR_RETURN(more, reader.Next(&record));
    if (!more) break;
    ++row;
    const RowOutcome outcome = validator.Validate(record, row);
    RETURN_IF_ERROR(validator.status());
    if (row <= claim.resume_after_row) continue;  // already committed by an earlier claimant
    if (options.tap != nullptr && options.tap->active()) options.tap->Offer(facts.name, row, record, outcome, validator);
    // A full batch is cut when the next row arrives, so the file's last rows always travel in
    // the last batch (no empty trailing batch).
    if (batcher.Full()) {
      if (cancelled && cancelled()) return absl::CancelledError(absl::StrCat("stopped reading ", facts.name));
      RETURN_IF_ERROR(send(batcher.Cut(/*last=*/false)));
    }
    batcher.Add(validator, outcome, record.raw.size());
  }
  if (metrics != nullptr) {
    metrics->csv_reader.received.Increment(static_cast<double>(row));
    metrics->csv_reader.sent.Increment(static_cast<double>(row));
  }
  if ((facts.rows != kRowsUnknown && row != facts.rows) ||
      reader.bytes_read() != static_cast<uint64_t>(facts.size_bytes)) {
    return absl::DataLossError(absl::StrCat(facts.path, " changed after inspection: ", row, " rows and ",
                                            reader.bytes_read(), " bytes now, ", facts.rows, " rows and ",
                                            facts.size_bytes, " bytes before"));
  }
  if (row < claim.resume_after_row) {
    return absl::InternalError(
        absl::StrCat("the writer asked to resume after row ", claim.resume_after_row, " of ", row));
  }
  if (cancelled && cancelled()) return absl::CancelledError(absl::StrCat("stopped reading ", facts.name));
  RETURN_IF_ERROR(send(batcher.Cut(/*last=*/true, row)));
  result.rows = row;
  result.file_counts = validator.counts();
  return result;
}

}  // namespace ecomstream::processor

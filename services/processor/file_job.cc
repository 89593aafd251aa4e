#include "services/processor/file_job.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/time_util.h"

namespace ecomstream::processor {
namespace {

// The processor's rows by outcome, from the batch's own counts.
void CountBatch(const OwnedBatch& owned, ProcessorMetrics* metrics) {
  if (metrics != nullptr) metrics->CountRows(owned.counts);
}

}  // namespace

void AddValidatedRow(const RowValidator& validator, RowOutcome outcome, size_t raw_bytes, Batcher* batcher) {
  switch (outcome) {
    case RowOutcome::kEvent:
      validator.FillEvent(batcher->AddEvent(raw_bytes, validator.late()));
      break;
    case RowOutcome::kDeadLetter: {
      v1::DeadLetter dead_letter;
      validator.FillDeadLetter(&dead_letter);
      batcher->AddDeadLetter(dead_letter);
      break;
    }
    case RowOutcome::kDuplicate:
      batcher->AddDuplicate();
      break;
  }
}

absl::StatusOr<FileJobResult> RunFileJob(const FileFacts& facts, const FileClaim& claim, const FileJobOptions& options,
                                         const tracing::Tracer* tracer, BatchSink* sink,
                                         const std::function<bool()>& cancelled, ProcessorMetrics* metrics) {
  ASSIGN_OR_RETURN(std::unique_ptr<FileByteSource> source, FileByteSource::Open(facts.path));
  CsvReader reader(source.get(), options.csv, metrics != nullptr ? &metrics->csv_reader : nullptr);
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
  validator_options.counters = metrics != nullptr ? &metrics->row_validator : nullptr;
  validator_options.counted_after_row = claim.resume_after_row;
  RowValidator validator(*schema, validator_options);
  FileBatchInfo info{facts.file_id, facts.name, claim.claim_token, claim.trace, claim.drop_time_us, NowMicros()};
  Batcher batcher(options.batch, std::move(info), claim.resume_after_row + 1, tracer, nullptr,
                  metrics != nullptr ? &metrics->batcher : nullptr);
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
    AddValidatedRow(validator, outcome, record.raw.size(), &batcher);
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

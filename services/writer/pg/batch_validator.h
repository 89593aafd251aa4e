// The structural checks a Batch must pass before the writer touches the database. A batch that
// fails is the sender's bug, not bad data: the stream ends with INVALID_ARGUMENT and a message
// naming the field, row and value. (Bad *values* - a negative price the processor missed - are
// the database's to reject, row by row; see pg_sink.h.)
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_BATCH_VALIDATOR_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_BATCH_VALIDATOR_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::writer {

// kInvalidArgument unless:
//  - file_id is "sha256:" + 64 lower-case hex digits, file_name is non-empty, and neither holds
//    a NUL byte or more than 1024 bytes; claim_token is a UUID;
//  - the rows are [first_row, last_row] with first_row >= 1 and last_row >= first_row, except
//    the empty file's only batch (1, 0, last_batch); total_file_rows, when set on the last
//    batch, equals last_row;
//  - rows = events + dead_letters + duplicate_rows, every event's source_row and every dead
//    letter's row lies in the range, and no row appears twice;
//  - every event has a 16-byte event_id, an empty or 16-byte session_id, a known event_type
//    and user_segment; every dead letter has at least one known reason and line >= 0;
//  - reason_counts, when present, equal the per-reason counts of dead_letters.
absl::Status ValidateBatch(const v1::Batch& batch);

// kInvalidArgument unless `value` (the field `field`) is non-empty, at most 1024 bytes and free
// of NUL bytes (PostgreSQL text cannot hold them).
absl::Status ValidateText(absl::string_view field, absl::string_view value);

// kInvalidArgument unless `file_id` is "sha256:<64 lower-case hex>".
absl::Status ValidateFileId(absl::string_view file_id);

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_BATCH_VALIDATOR_H_

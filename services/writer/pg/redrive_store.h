// redrive_store: the writer's side of redrive in PostgreSQL (served as
// ecomstream.v1.DeadLetters by the edge's redrive_service; docs/redrive.md).
//
// List pages through the dead letters not redriven yet (filters: reasons, file name, stored-at
// range), with the header and reference time the file ledger kept for their file.
//
// Redrive commits one request in one transaction: if (run_id, first_seq) is in the batch ledger
// it answers the recorded counts and changes nothing; otherwise it locks the request's dead
// letters, skips those already redriven (or gone), inserts each passing event
// (INSERT ... ON CONFLICT DO NOTHING: a stored event with the same content counts unchanged, one
// with other content leaves the dead letter failing as conflicting_duplicate, since redrive
// never overwrites), marks each redriven dead letter (when, rules version, event), stores the new
// reasons of those still failing, adds the redriven rows to their files' ledger rows and records
// the request in the batch ledger with source 'redrive'; then COMMIT. event_stats_hourly follows
// through the triggers of sql/002_event_stats.sql. A row the database refuses stays a dead
// letter with reason database_rejected and the server's message.
//
// Thread-safe.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_REDRIVE_STORE_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_REDRIVE_STORE_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/writer/pg/pg_pool.h"
#include "services/writer/pg/pg_sink.h"

namespace ecomstream::writer {

inline constexpr int kMaxListLimit = 1000;
inline constexpr int kMaxRedriveItems = 5000;

// kInvalidArgument naming the field for a bad filter or limit.
absl::Status ValidateListRequest(const v1::ListDeadLettersRequest& request);
// kInvalidArgument naming the item for a malformed request.
absl::Status ValidateRedriveRequest(const v1::RedriveRequest& request);

class RedriveStore {
 public:
  explicit RedriveStore(PgPool* pool) : pool_(pool) {}  // `pool` must outlive the store
  absl::StatusOr<v1::ListDeadLettersResponse> List(const v1::ListDeadLettersRequest& request);
  absl::StatusOr<v1::RedriveResponse> Redrive(const v1::RedriveRequest& request);

 private:
  PgPool* pool_;
  SourceIds source_ids_;  // keys of the redriven events' event_sources rows
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_REDRIVE_STORE_H_

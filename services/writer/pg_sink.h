// pg_sink: commits one Batch per PostgreSQL transaction and answers with its Ack.
//
// In one transaction: lock the file's ledger row; if the batch id (file_id, first_row) is in the
// batch ledger, answer with the recorded counts (already_committed) and change nothing; check
// the claim token (lease) and that the batch continues the file's committed rows; dedupe event
// ids inside the batch (the later row wins); upsert the events; COPY the dead letters; record
// the batch in the ledger and advance the file (committing it with its last batch); COMMIT.
//
// The upsert: a probe finds (and row-locks) the event ids already stored; as ids are UUIDv7, only
// ids up to the largest stored one are probed. New ids are COPYed straight into
// ecomstream.events (the fast path, as fast as COPY itself); stored ids are COPYed into a session
// temp table and applied with UPDATE ... FROM it WHERE (content) IS DISTINCT FROM (...), so an
// identical event is "unchanged" and only a different one is "updated". (This is the
// INSERT ... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM upsert split by the probe: each side
// takes the cheaper path - COPY's bulk insert, and a plain UPDATE at half the cost of ON
// CONFLICT's speculative insertion.) event_stats_hourly stays exact: the update trigger of
// sql/002_event_stats.sql applies the UPDATE, and the rows the COPY inserted are summed here
// (event_stats.h) and added with the ledger row (sql/006_writer_event_stats.sql). If a concurrent writer inserts one of the new ids first, the unique
// violation rolls back to a savepoint and the probe runs again. If the database rejects a row (a
// constraint the processor missed, class 22/23), the rows are bisected under savepoints and only
// the offending ones become dead letters with reason database_rejected and the server's message.
// (One transaction per batch: sharing one among consecutive batches was measured slower.)
//
// Thread-safe: each Write borrows its own session from the pool.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_SINK_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_SINK_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tracer.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/writer/copy_encoder.h"
#include "services/writer/pg_pool.h"
#include "services/writer/writer_metrics.h"

namespace ecomstream::writer {

// A batch that passed ValidateBatch, deduplicated (the later row of an event id wins) and
// encoded for COPY: everything a commit needs that does not touch the database.
struct PreparedBatch {
  std::unique_ptr<const v1::Batch> batch;
  std::vector<const v1::Event*> events;  // one per event id, pointing into *batch
  int64_t duplicate_ids = 0;             // rows dropped for a later row with the same id
  std::string trace_id;                  // from batch->traceparent, "" if malformed
  int64_t received_us = 0;
  EncodedEvents encoded;                 // events, in order
};

struct PgSinkOptions {
  // Transactions retried after a deadlock, a serialization failure or a lost session.
  int max_attempts = 3;
};

class PgSink {
 public:
  // `pool`, `metrics` and `tracer` must outlive the sink. Each Write is a span batch.write (a
  // child of the batch's traceparent) with a db.commit span per transaction.
  PgSink(PgPool* pool, WriterMetrics* metrics, const tracing::Tracer* tracer, PgSinkOptions options = {});

  // Returns the Ack once the batch's transaction has committed, or the recorded Ack of a batch
  // committed before (already_committed = true, nothing changed). Errors:
  //   kInvalidArgument     malformed batch (ValidateBatch); the message says what is wrong
  //   kAborted             the claim token is not the file's current holder (lease lost)
  //   kFailedPrecondition  the file was never claimed, is already committed, or the batch does
  //                        not continue its committed rows; or the schema is not migrated
  //   kUnavailable         the database is unreachable or the COMMIT outcome is unknown:
  //                        retrying is safe (the ledger answers already_committed)
  //   kPermissionDenied    the login lacks a grant (see sql/004_roles.sql)
  absl::StatusOr<v1::Ack> Write(const v1::Batch& batch);

  // Write in two steps, so a stream can prepare its next batch while this one commits.
  // Prepare: kInvalidArgument for a malformed batch; no database access. Thread-safe.
  absl::StatusOr<std::unique_ptr<PreparedBatch>> Prepare(v1::Batch batch) const;
  // Commit: the other codes of Write.
  absl::StatusOr<v1::Ack> Commit(const PreparedBatch& prepared);

 private:
  absl::StatusOr<v1::Ack> CommitWithRetries(const PreparedBatch& prepared, const tracing::Span& parent);

  PgPool* pool_;
  WriterMetrics* metrics_;
  const tracing::Tracer* tracer_;
  PgSinkOptions options_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_SINK_H_

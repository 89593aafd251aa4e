// pg_sink: commits one Batch per PostgreSQL transaction and answers with its Ack.
//
// In one transaction: lock the file's ledger row; if the batch id (file_id, first_row) is in the
// batch ledger, answer with the recorded counts (already_committed) and change nothing; check
// the claim token (lease) and that the batch continues the file's committed rows; dedupe event
// ids inside the batch (the later row wins); upsert the events; COPY the dead letters; record
// the batch in the ledger and advance the file (committing it with its last batch); COMMIT.
//
// The upsert: a probe finds which event ids are already stored. New ids are COPYed straight into
// ecomstream.events; stored ids are COPYed into a session temp table and merged with
// INSERT ... ON CONFLICT (event_id) DO UPDATE ... WHERE (content) IS DISTINCT FROM (...), so an
// identical event is "unchanged" and only a different one is "updated". Statement triggers on
// events keep event_stats_hourly exact (sql/002_event_stats.sql). If a concurrent writer inserts
// one of the new ids first, the unique violation rolls back to a savepoint and the probe runs
// again. If the database rejects a row (a constraint the processor missed, class 22/23), the
// rows are bisected under savepoints and only the offending ones become dead letters with
// reason database_rejected and the server's message.
//
// Thread-safe: each Write borrows its own session from the pool.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_SINK_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_SINK_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/tracer.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/writer/pg_pool.h"
#include "services/writer/writer_metrics.h"

namespace ecomstream::writer {

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

 private:
  absl::StatusOr<v1::Ack> WriteWithRetries(const v1::Batch& batch, const tracing::Span& parent);

  PgPool* pool_;
  WriterMetrics* metrics_;
  const tracing::Tracer* tracer_;
  PgSinkOptions options_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_SINK_H_

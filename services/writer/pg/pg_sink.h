// pg_sink: commits one Batch per PostgreSQL transaction and answers with its Ack.
//
// In one transaction: lock the file's ledger row; if the batch id (file_id, first_row) is in the
// batch ledger, answer with the recorded counts (already_committed) and change nothing; check
// the claim token (lease) and that the batch continues the file's committed rows; dedupe event
// ids inside the batch (the later row wins); upsert the events; COPY the dead letters; record
// the batch in the ledger and advance the file (committing it with its last batch); COMMIT.
// Every event row the transaction stores carries the batch's ecomstream.event_sources key
// (source_id), whose row (file name, trace id) the ledger statement inserts.
//
// The upsert: a probe finds (and row-locks) the event ids already stored; as ids are UUIDv7, only
// ids up to the largest stored one are probed (on the fast way: up to the largest this sink
// committed, while that one is still stored). New ids are COPYed straight into
// ecomstream.events (the fast path, as fast as COPY itself); stored ids are COPYed into a session
// temp table and applied with UPDATE ... FROM it WHERE (content) IS DISTINCT FROM (...), so an
// identical event is "unchanged" and only a different one is "updated". (This is the
// INSERT ... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM upsert split by the probe: each side
// takes the cheaper path - COPY's bulk insert, and a plain UPDATE at half the cost of ON
// CONFLICT's speculative insertion.) event_stats_hourly stays exact: the update trigger of
// sql/002_event_stats.sql applies the UPDATE, and the rows the COPY inserted are summed here
// (event_stats.h) and added with the ledger row (sql/006_writer_event_stats.sql).
//
// The careful way (Commit without a begun transaction): the upsert runs under a savepoint. If a
// concurrent writer inserts one of the new ids first, the unique violation rolls back to the
// savepoint and the probe runs again. If the database rejects a row (a constraint the processor
// missed, class 22/23), the rows are bisected under savepoints and only the offending ones become
// dead letters with reason database_rejected and the server's message. (One transaction per
// batch: sharing one among consecutive batches was measured slower.)
//
// The fast way, which Write and a stream take (Begin, then Commit): the probe and the COPY of
// the new events run first, without the file lock and without savepoints (BEGIN is sent with the
// first statement, usually the COPY itself: ids above the largest this sink committed are not
// probed); then the file is locked and order, claim and ledger are checked as above, and the
// stored ids are updated. If any of it fails (a row the database rejects, a concurrent insert of
// a new id, a lost session), the transaction is rolled back and the batch runs again the careful
// way. A stream overlaps its
// consecutive batches this way through CommitPipeline (commit_pipeline.h says why that cannot
// deadlock); Begin and Commit are the steps it puts together.
//
// Thread-safe: each Write borrows its own session from the pool.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_PG_SINK_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_PG_SINK_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/tracer.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/writer/pg/copy_encoder.h"
#include "services/writer/pg/pg_pool.h"
#include "services/writer/pg/writer_metrics.h"

namespace ecomstream::writer {

// Frees a received batch: the arena it was parsed into (which must hold nothing else and have
// been made with new), or the message itself when it has no arena.
struct BatchDeleter {
  void operator()(const v1::Batch* batch) const;
};
using BatchPtr = std::unique_ptr<const v1::Batch, BatchDeleter>;

// A batch that passed ValidateBatch, deduplicated (the later row of an event id wins) and
// encoded for COPY: everything a commit needs that does not touch the database.
struct PreparedBatch {
  BatchPtr batch;
  std::vector<const v1::Event*> events;  // one per event id, pointing into *batch
  int64_t duplicate_ids = 0;             // rows dropped for a later row with the same id
  std::string trace_id;                  // from batch->traceparent, "" if malformed
  std::string largest_event_id;          // the largest of `events`' ids (16 bytes), "" if none
  int64_t received_us = 0;
  EncodedEvents encoded;                 // events, in order
};

// Keys for the event_sources rows of batches, taken from its sequence 64 at a time: one round
// trip per 64 batches, inside whichever batch transaction runs out (a sequence is not
// transactional, so a rolled-back batch only leaves a gap). Thread-safe.
class SourceIds {
 public:
  int64_t Next(pqxx::transaction_base& txn);

 private:
  absl::Mutex mu_;
  std::vector<int64_t> free_ ABSL_GUARDED_BY(mu_);
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

  // Write in steps, so a stream can prepare its next batch, and begin it, while one commits
  // (CommitPipeline orders the steps of a stream's batches):
  // Write(batch) is Commit(*prepared, Begin(*prepared), [] {}) with prepared = Prepare(batch).
  // Prepare: kInvalidArgument for a malformed batch; no database access. Thread-safe.
  absl::StatusOr<std::unique_ptr<PreparedBatch>> Prepare(v1::Batch batch) const;
  absl::StatusOr<std::unique_ptr<PreparedBatch>> Prepare(BatchPtr batch) const;

  // A batch's transaction begun ahead of its Commit: its new events are inserted, its file is
  // not locked yet. Destroying it rolls the transaction back.
  class Begun;
  struct BegunDeleter {
    void operator()(Begun* begun) const;
  };
  using BegunPtr = std::unique_ptr<Begun, BegunDeleter>;
  // Begins `prepared`'s transaction on an idle session; nullptr if none is idle or the insert
  // failed (Commit then runs the whole transaction). Never waits for a session. `prepared` must
  // outlive the result.
  BegunPtr Begin(const PreparedBatch& prepared);
  // Commits `prepared` (the other codes of Write), finishing `begun` (from Begin(prepared)) if
  // given. If the begun transaction cannot be finished it is rolled back, `before_rerun` is
  // called, and the whole transaction runs again.
  absl::StatusOr<v1::Ack> Commit(const PreparedBatch& prepared, BegunPtr begun, absl::FunctionRef<void()> before_rerun);

  // Sets up `sessions` of the pool's sessions for batches now (staging table, settings, prepared
  // statements, the aggregate functions compiled and planned), as each session's first batch
  // would otherwise. Changes no data. For a writer starting: its first batches then cost what
  // later ones do. Errors as Write's (kUnavailable while the database is down: the sessions are
  // then set up by their first batch, as without it).
  absl::Status WarmUp(int sessions);

 private:
  // Finishes `begun`; nullopt if it must run again.
  std::optional<absl::StatusOr<v1::Ack>> Finish(Begun& begun, std::map<std::string, int64_t>* reasons);
  absl::StatusOr<v1::Ack> CommitWithRetries(const PreparedBatch& prepared, const tracing::Span& parent,
                                            int first_attempt);
  void RecordCommitted(const PreparedBatch& prepared, const v1::Ack& ack, const std::map<std::string, int64_t>& reasons,
                       int64_t started_us);

  // The largest event id a batch of this sink committed (16 bytes; "" = none yet): the fast way
  // probes only ids up to it, while it is still stored.
  std::string KnownLargestEventId() const;
  // Forgets `gone`, found no longer stored (deleted or truncated), unless a commit replaced it
  // meanwhile: the next commits record their own largest id. (Kept, every later batch, with
  // ids below it, would find it gone and scan for the largest stored id again: that backward
  // scan walks the index entries the batch begun ahead has inserted, ~5 ms a batch.)
  void ForgetLargestEventId(const std::string& gone);

  PgPool* pool_;
  WriterMetrics* metrics_;
  const tracing::Tracer* tracer_;
  PgSinkOptions options_;
  SourceIds source_ids_;
  mutable absl::Mutex largest_mu_;
  std::string largest_committed_ ABSL_GUARDED_BY(largest_mu_);
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_PG_SINK_H_

// commit_pipeline: commits one Write stream's batches in order, overlapping consecutive batches
// on two sessions (pg_sink's fast way): while batch N locks its file and commits on one session,
// batch N+1 probes and COPYs its new events on another (PgSink::Begin, on a helper thread).
//
// Why this cannot deadlock: a batch is begun only once the previous batch's new events are in
// (Commit asks for the next batch only after its own Begin), and a begun batch holds no lock the
// previous one's commit needs (it locks stored ids the previous batch also locks only after that
// one commits, inserts only ids stored nowhere, and touches no aggregate row before its own
// commit); the one exception, the previous batch running again the careful way, rolls back the
// begun batch first (PgSink::Commit's before_rerun, RollBackAhead here).
//
// Not thread-safe: one thread (the stream's commit thread) calls it.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_COMMIT_PIPELINE_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_COMMIT_PIPELINE_H_

#include <memory>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/writer/pg/pg_sink.h"

namespace ecomstream::writer {

class CommitPipeline {
 public:
  explicit CommitPipeline(PgSink* sink) : sink_(sink) {}  // `sink` must outlive the pipeline
  // Rolls back the batch begun ahead, if any.
  ~CommitPipeline() { DropAhead(); }
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // Asked once the committing batch's new events are in: the stream's next batch, to begin ahead
  // while this one commits, or nullptr (none ready, or the stream is ending).
  using NextBatch = absl::FunctionRef<std::unique_ptr<PreparedBatch>()>;

  struct Committed {
    std::unique_ptr<PreparedBatch> batch;  // handed back, so the caller chooses the thread that frees it
    absl::StatusOr<v1::Ack> ack;           // PgSink::Write's answer
  };

  // Commits `batch`, the stream's next one. Requires !has_ahead().
  Committed Commit(std::unique_ptr<PreparedBatch> batch, NextBatch next);
  // Commits the batch `next` handed to the previous commit. Requires has_ahead().
  Committed CommitAhead(NextBatch next);
  // A batch was handed over by `next` and is not committed yet: it is the next in order.
  bool has_ahead() const { return ahead_ != nullptr; }
  // Rolls back and frees the batch begun ahead (the stream ends before it commits).
  void DropAhead();

 private:
  // The batch after the one committing, begun on `thread`.
  struct Ahead {
    std::unique_ptr<PreparedBatch> batch;
    PgSink::BegunPtr begun;  // declared after `batch`: destroyed (rolled back) before it
    std::thread thread;      // running PgSink::Begin
  };

  Committed Run(std::unique_ptr<PreparedBatch> batch, PgSink::BegunPtr begun, NextBatch next);
  void BeginAhead(NextBatch next);
  // Waits for the ahead batch's Begin and rolls its transaction back; the batch stays ahead and
  // commits the careful way.
  void RollBackAhead();

  PgSink* sink_;
  std::unique_ptr<Ahead> ahead_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_COMMIT_PIPELINE_H_

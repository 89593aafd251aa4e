#include "services/writer/ingest_service.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <google/protobuf/arena.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/trace_context.h"
#include "services/writer/pg/commit_pipeline.h"

namespace ecomstream::writer {
namespace {

// Batches read and prepared ahead of the ones committing, per commit lane (the processor's window
// is larger; gRPC flow control holds the rest).
constexpr size_t kReadAhead = 2;

// Received batches are parsed into an arena each: a batch's thousands of messages and strings
// take a few large blocks, freed at once, instead of a malloc and a free apiece. The blocks are
// kept for later batches (a fresh block costs a page fault per 4 KiB).
constexpr size_t kArenaBlockBytes = 256 << 10;
constexpr size_t kMaxFreeArenaBlocks = 32;

class ArenaBlocks {
 public:
  static void* Allocate(size_t bytes) {
    if (bytes == kArenaBlockBytes) {
      absl::MutexLock lock(&Get().mu_);
      if (!Get().free_.empty()) {
        void* block = Get().free_.back();
        Get().free_.pop_back();
        return block;
      }
    }
    return ::operator new(bytes);
  }

  static void Deallocate(void* block, size_t bytes) {
    if (bytes == kArenaBlockBytes) {
      absl::MutexLock lock(&Get().mu_);
      if (Get().free_.size() < kMaxFreeArenaBlocks) {
        Get().free_.push_back(block);
        return;
      }
    }
    ::operator delete(block);
  }

 private:
  static ArenaBlocks& Get() {
    static ArenaBlocks* blocks = new ArenaBlocks;
    return *blocks;
  }

  absl::Mutex mu_;
  std::vector<void*> free_ ABSL_GUARDED_BY(mu_);
};

// An empty batch on its own arena (BatchDeleter frees both).
v1::Batch* NewArenaBatch() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = kArenaBlockBytes;
  options.max_block_size = kArenaBlockBytes;
  options.block_alloc = &ArenaBlocks::Allocate;
  options.block_dealloc = &ArenaBlocks::Deallocate;
  return google::protobuf::Arena::CreateMessage<v1::Batch>(new google::protobuf::Arena(options));
}

// A stream's batches, parsed on their arenas, are kept for its next reads: gRPC clears a
// message before parsing into it, and a cleared message keeps its events and their strings
// (with their capacity) for the next parse, so a warm stream's reads allocate nothing and free
// nothing, where a fresh arena costs a string object and a cleanup per field and a malloc and a
// free per 16-byte id (past std::string's inline capacity). The events stay laid out in their
// arena's blocks, in order, as the validation, encoding and statistics passes read them.
// A stream keeps about what it holds at once: the read, the read-ahead, and per lane the batch
// committing and the one begun ahead.

using MutableBatchPtr = std::unique_ptr<v1::Batch, BatchDeleter>;

// A stream's spare batches. Thread-safe.
class BatchPool {
 public:
  explicit BatchPool(size_t max_spare) : max_spare_(max_spare) {}

  MutableBatchPtr Take() {
    {
      absl::MutexLock lock(&mu_);
      if (!spare_.empty()) {
        MutableBatchPtr batch = std::move(spare_.back());
        spare_.pop_back();
        return batch;
      }
    }
    return MutableBatchPtr(NewArenaBatch());
  }

  // Takes back a batch made by Take (lent out as const), once nothing points into it.
  void Return(BatchPtr spent) {
    MutableBatchPtr batch(const_cast<v1::Batch*>(spent.release()));
    batch->Clear();
    absl::MutexLock lock(&mu_);
    if (spare_.size() < max_spare_) spare_.push_back(std::move(batch));
  }

 private:
  const size_t max_spare_;
  absl::Mutex mu_;
  std::vector<MutableBatchPtr> spare_ ABSL_GUARDED_BY(mu_);
};

grpc::Status Draining() { return grpc::Status(grpc::StatusCode::UNAVAILABLE, "writer is shutting down"); }

// While the database is down every retry fails alike; the pool logs the outage once.
LogLevel FailureLevel(const absl::Status& status) {
  return absl::IsUnavailable(status) ? LogLevel::kDebug : LogLevel::kWarning;
}

}  // namespace

// One Write stream. gRPC reactions (OnReadDone, OnWriteDone, OnCancel, OnDone) never block: they
// update the state under mu_, hand each received batch to a commit lane and start the next read
// or write. Each lane's thread waits for work, commits, queues the ack; the stream's first thread
// runs lane 0, joins the others, and after OnDone unregisters and deletes the stream.
//
// Lanes: a received batch goes to the lane that already holds a batch of its file (queued, begun
// ahead or committing), otherwise to the lane holding the fewest batches. So a file's batches
// stay in row order on one lane (its CommitPipeline commits them one after the other) while
// batches of different files commit at the same time, as two streams' batches do.
//
// Why lanes add no deadlock PostgreSQL cannot see: a wait PostgreSQL does not know about is a
// transaction begun ahead (idle in its session until its lane commits it) that another
// transaction waits for. Such a transaction holds only event ids: the new ones it inserted and
// the stored ones its probe locked (in id order). Its lane commits it right after the lane's
// current batch, and that batch, having a batch begun after it, is on the fast way (a batch that
// runs the careful way first rolls back the one begun after it, commit_pipeline.h): it waits only
// for its own file's ledger row, which no other lane holds (a file is on one lane at a time),
// and for aggregate and ledger rows, which a transaction takes only in its last statements
// (the update of stored events and the finish statement), after its own waits for event ids are
// over. So a lane waiting on another lane's begun transaction - the same event id in two files,
// an exact duplicate or a late event sent again - waits for a commit that waits for nobody in
// this chain, just as between two streams' pipelines. The one exception is also the one between
// two streams: a careful transaction bisecting rows the database rejects keeps the aggregate rows
// of the halves it has applied while the next half probes; a cycle through them and a begun
// batch needs an exact duplicate across files, a stored event changed and a row PostgreSQL
// rejects in the same batch. Cycles among statements that run (aggregate rows, the same ids
// locked the careful way) are PostgreSQL's to detect: the loser rolls back and runs again the
// careful way (PgSink::Commit), it does not end the stream.
class IngestService::WriteStream final : public grpc::ServerBidiReactor<v1::Batch, v1::Ack> {
 public:
  WriteStream(IngestService* service, grpc::CallbackServerContext* context)
      : service_(service),
        context_(context),
        lanes_(static_cast<size_t>(service->commit_lanes_)),
        read_ahead_(kReadAhead * lanes_.size()),
        batches_(lanes_.size() * (kReadAhead + 2) + 1),
        incoming_(batches_.Take()) {
    service_->metrics_->StreamOpened();
    if (!service_->Register(this)) {
      absl::MutexLock lock(&mu_);
      end_ = Draining();
      read_closed_ = true;
    } else {
      read_outstanding_ = true;
      StartRead(incoming_.get());
    }
    std::thread(&WriteStream::Run, this).detach();
    MaybeFinish();
  }

  void OnReadDone(bool ok) override {
    std::optional<absl::StatusOr<std::unique_ptr<PreparedBatch>>> prepared;
    std::string file_id;
    if (ok) {
      // The next read (started below or by a lane's thread, after mu_) parses into a spare batch.
      BatchPtr received(incoming_.release());
      incoming_ = batches_.Take();
      file_id = received->file_id();
      prepared = service_->sink_->Prepare(std::move(received));  // CPU only: validate, encode
    }
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      read_outstanding_ = false;
      if (!ok) {
        read_closed_ = true;  // the client closed its side (or the call ended)
      } else if (!end_.has_value()) {
        Dispatch(Received{std::move(file_id), *std::move(prepared)});
        read_more = queued_ < read_ahead_;
        read_outstanding_ = read_more;
      }
    }
    if (read_more) StartRead(incoming_.get());
    MaybeFinish();
  }

  void OnWriteDone(bool ok) override {
    const v1::Ack* next = nullptr;
    std::vector<std::unique_ptr<PreparedBatch>> spent;
    {
      absl::MutexLock lock(&mu_);
      spent.swap(spent_);
      write_outstanding_ = false;
      acks_.pop_front();
      if (!ok) {
        // The client went away after the commit: its replay will be answered from the ledger.
        if (!end_.has_value()) end_ = grpc::Status(grpc::StatusCode::CANCELLED, "client gone before the ack was sent");
        acks_.clear();
        DropQueued();
      } else if (!acks_.empty()) {
        write_outstanding_ = true;
        next = &acks_.front();
      }
    }
    if (next != nullptr) StartWrite(next);
    for (std::unique_ptr<PreparedBatch>& prepared : spent) {
      if (prepared == nullptr || prepared->batch == nullptr) continue;
      BatchPtr batch = std::move(prepared->batch);
      prepared.reset();  // points into `batch`
      batches_.Return(std::move(batch));
    }
    MaybeFinish();
  }

  void OnCancel() override { End(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled")); }

  void OnDone() override {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

  // Ends the stream once the batches being committed (if any) are acked.
  void End(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (!end_.has_value()) end_ = std::move(status);
      DropQueued();
    }
    MaybeFinish();
  }

 private:
  // A received batch and its file (kept apart: a batch that failed Prepare has none).
  struct Received {
    std::string file_id;
    absl::StatusOr<std::unique_ptr<PreparedBatch>> prepared;
  };

  struct Lane {
    std::deque<Received> queue;  // dispatched, not taken yet
    int batches = 0;             // queued, begun ahead or committing: not settled
    bool committing = false;
    bool ahead = false;  // the lane's pipeline holds a batch begun ahead
  };

  // A file with batches on a lane, and how many.
  struct FileLane {
    size_t lane = 0;
    int batches = 0;
  };

  // Queues `received` on its file's lane, or on the least loaded lane for a new file. mu_ held.
  void Dispatch(Received received) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto [it, inserted] = files_.try_emplace(received.file_id);
    FileLane& file = it->second;
    if (inserted) {
      for (size_t i = 1; i < lanes_.size(); ++i) {
        if (lanes_[i].batches < lanes_[file.lane].batches) file.lane = i;
      }
    }
    ++file.batches;
    Lane& lane = lanes_[file.lane];
    ++lane.batches;
    lane.queue.push_back(std::move(received));
    ++queued_;
  }

  // A batch of `file_id` on `lane` is settled (committed, failed or dropped). mu_ held.
  void Settle(Lane& lane, const std::string& file_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    --lane.batches;
    auto it = files_.find(file_id);
    if (it != files_.end() && --it->second.batches == 0) files_.erase(it);
  }

  // Drops every queued batch (the stream is ending). mu_ held.
  void DropQueued() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Lane& lane : lanes_) {
      for (const Received& received : lane.queue) Settle(lane, received.file_id);
      lane.queue.clear();
    }
    queued_ = 0;
  }

  // Takes `lane`'s next batch (starting another read if there is room). mu_ held.
  Received PopQueued(Lane& lane, bool* read_more) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Received next = std::move(lane.queue.front());
    lane.queue.pop_front();
    --queued_;
    if (!read_outstanding_ && !read_closed_ && queued_ < read_ahead_) read_outstanding_ = *read_more = true;
    return next;
  }

  // A lane pipeline's NextBatch: the lane's next batch, to begin ahead, unless the stream is ending.
  std::unique_ptr<PreparedBatch> TakeAhead(Lane& lane) {
    std::unique_ptr<PreparedBatch> next;
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      if (end_.has_value() || lane.queue.empty() || !lane.queue.front().prepared.ok()) return nullptr;
      next = *PopQueued(lane, &read_more).prepared;
      lane.ahead = true;
    }
    if (read_more) StartRead(incoming_.get());
    return next;
  }

  void Run() {
    std::vector<std::thread> others;
    for (size_t i = 1; i < lanes_.size(); ++i) others.emplace_back(&WriteStream::CommitLane, this, i);
    CommitLane(0);
    for (std::thread& thread : others) thread.join();
    MaybeFinish();
    {
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
      mu_.Await(absl::Condition(&done));
    }
    service_->metrics_->StreamClosed();
    service_->Unregister(this);
    delete this;
  }

  // Commits lane `index`'s batches in order until the stream ends or the client is done,
  // queueing their acks.
  void CommitLane(size_t index) {
    Lane& lane = lanes_[index];
    CommitPipeline pipeline(service_->sink_);
    auto take_ahead = [this, &lane] { return TakeAhead(lane); };
    while (true) {
      // nullopt: the batch the pipeline holds begun ahead comes next.
      std::optional<Received> next;
      bool read_more = false;
      {
        absl::MutexLock lock(&mu_);
        lane.ahead = pipeline.has_ahead();
        if (!pipeline.has_ahead()) {
          auto ready = [this, &lane]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return end_.has_value() || !lane.queue.empty() || (read_closed_ && !read_outstanding_);
          };
          mu_.Await(absl::Condition(&ready));
          if (end_.has_value() || lane.queue.empty()) break;  // ended, or the client is done
          next = PopQueued(lane, &read_more);
        } else if (end_.has_value()) {
          break;  // the batch begun ahead is rolled back below
        }
        lane.committing = true;
      }
      if (read_more) StartRead(incoming_.get());
      CommitPipeline::Committed committed;
      std::string file_id;
      if (!next.has_value()) {
        committed = pipeline.CommitAhead(take_ahead);
      } else if (next->prepared.ok()) {
        committed = pipeline.Commit(*std::move(next->prepared), take_ahead);
      } else {
        committed.ack = next->prepared.status();
        file_id = std::move(next->file_id);
      }
      if (committed.batch != nullptr) file_id = committed.batch->batch->file_id();
      Acknowledge(lane, file_id, std::move(committed));
    }
    pipeline.DropAhead();
    {
      absl::MutexLock lock(&mu_);
      lane.ahead = false;
    }
    MaybeFinish();
  }

  // Queues the ack of a committed batch and writes it if no write is outstanding; a failed batch
  // ends the stream (unless it is ending already) and names its file in the trailing metadata.
  void Acknowledge(Lane& lane, const std::string& file_id, CommitPipeline::Committed committed) {
    const absl::StatusOr<v1::Ack>& ack = committed.ack;
    if (!ack.ok()) {
      const v1::Batch* batch = committed.batch != nullptr ? committed.batch->batch.get() : nullptr;
      ECOMSTREAM_LOG_(FailureLevel(ack.status()), "Batch failed; ending the stream")
          << Kv("file", batch != nullptr ? batch->file_name() : "") << Kv("file_id", file_id)
          << Kv("rows", batch != nullptr ? absl::StrCat(batch->first_row(), "-", batch->last_row()) : "")
          << Kv("error", ack.status().ToString());
    }
    const v1::Ack* write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      lane.committing = false;
      Settle(lane, file_id);
      if (!ack.ok()) {
        if (!end_.has_value()) {
          end_ = ToGrpcStatus(ack.status());
          refused_file_id_ = file_id;
        }
        DropQueued();
      } else {
        acks_.push_back(*std::move(committed.ack));
        // Clearing a batch for its next read (thousands of events) takes a while: a gRPC thread
        // does it (OnWriteDone), not this one, which goes on to the next transaction.
        spent_.push_back(std::move(committed.batch));
        if (!write_outstanding_) {
          write_outstanding_ = true;
          write = &acks_.front();
        }
      }
    }
    if (write != nullptr) StartWrite(write);
    MaybeFinish();
  }

  // Finishes the RPC once no lane is committing or holds a batch begun ahead, nothing waits to
  // be written, and the stream has ended (an error, a drain, a cancel) or the client closed its
  // side and everything is acked.
  void MaybeFinish() {
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finish_called_ || write_outstanding_ || !acks_.empty()) return;
      for (const Lane& lane : lanes_) {
        if (lane.committing || lane.ahead) return;
      }
      if (!end_.has_value() && !(read_closed_ && !read_outstanding_ && queued_ == 0)) return;
      finish_called_ = true;
      status = end_.value_or(grpc::Status::OK);
      if (!status.ok() && !refused_file_id_.empty()) {
        context_->AddTrailingMetadata(kRefusedFileIdMetadata, refused_file_id_);
      }
    }
    Finish(std::move(status));
  }

  IngestService* service_;
  grpc::CallbackServerContext* const context_;
  std::vector<Lane> lanes_;  // sized once; guarded by mu_ except the pipelines (their threads')
  const size_t read_ahead_;  // batches read and queued ahead of the lanes, at most
  BatchPool batches_;
  MutableBatchPtr incoming_;  // the outstanding read's target

  absl::Mutex mu_;
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // batches in the lanes' queues
  absl::flat_hash_map<std::string, FileLane> files_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Ack> acks_ ABSL_GUARDED_BY(mu_);  // front: being written
  std::vector<std::unique_ptr<PreparedBatch>> spent_ ABSL_GUARDED_BY(mu_);  // committed, to free
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  std::string refused_file_id_ ABSL_GUARDED_BY(mu_);  // the failed batch's file, if one ended the stream
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

IngestService::IngestService(PgSink* sink, FileLedger* ledger, ServerMetrics* metrics, const tracing::Tracer* tracer,
                             int commit_lanes)
    : sink_(sink), ledger_(ledger), metrics_(metrics), tracer_(tracer), commit_lanes_(std::max(commit_lanes, 1)) {}

IngestService::~IngestService() {
  absl::MutexLock lock(&mu_);
  auto gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
  mu_.Await(absl::Condition(&gone));
}

grpc::Status IngestService::ClaimFile(grpc::ServerContext* context, const v1::ClaimFileRequest* request,
                                      v1::ClaimFileResponse* response) {
  tracing::Span span = tracer_->StartSpan("file.claim", tracing::SpanKind::kServer, tracing::ExtractTraceparent(*context));
  span.SetAttribute("file.name", request->file_name());
  span.SetAttribute("claimant", request->claimant());
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      span.SetStatus(absl::UnavailableError("draining"));
      return Draining();
    }
  }
  auto claimed = ledger_->Claim(*request);
  span.SetStatus(claimed.status());
  if (!claimed.ok()) {
    ECOMSTREAM_LOG_(FailureLevel(claimed.status()), "Claim failed")
        << Kv("file", request->file_name()) << Kv("claimant", request->claimant())
        << Kv("error", claimed.status().ToString());
    return ToGrpcStatus(claimed.status());
  }
  span.SetAttribute("claim.outcome", v1::ClaimFileResponse::Outcome_Name(claimed->outcome()));
  span.SetAttribute("claim.resume_after_row", claimed->resume_after_row());
  *response = *std::move(claimed);
  return grpc::Status::OK;
}

grpc::ServerBidiReactor<v1::Batch, v1::Ack>* IngestService::Write(grpc::CallbackServerContext* context) {
  return new WriteStream(this, context);
}

bool IngestService::Register(WriteStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.insert(stream);
  return !draining_;
}

void IngestService::Unregister(WriteStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

bool IngestService::Drain(absl::Duration timeout) {
  std::vector<WriteStream*> streams;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    streams.assign(streams_.begin(), streams_.end());
    // Ending a stream cannot delete it while we hold mu_: deletion unregisters under mu_.
    for (WriteStream* stream : streams) stream->End(Draining());
    auto gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
    return mu_.AwaitWithTimeout(absl::Condition(&gone), timeout);
  }
}

}  // namespace ecomstream::writer

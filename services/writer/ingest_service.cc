#include "services/writer/ingest_service.h"

#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <google/protobuf/arena.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/trace_context.h"
#include "services/writer/pg/commit_pipeline.h"

namespace ecomstream::writer {
namespace {

// Batches read and prepared ahead of the one committing (the processor's window is larger; gRPC
// flow control holds the rest).
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
// Bounds the batches a stream keeps: about what it holds at once (the read, the read-ahead, the
// batch committing, the one begun ahead, an ack's).
constexpr size_t kMaxSpareBatches = kReadAhead + 3;

using MutableBatchPtr = std::unique_ptr<v1::Batch, BatchDeleter>;

// A stream's spare batches. Thread-safe.
class BatchPool {
 public:
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
    if (spare_.size() < kMaxSpareBatches) spare_.push_back(std::move(batch));
  }

 private:
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
// update the state under mu_ and start the next read or write. The commit thread waits for work,
// commits, queues the ack; after OnDone it unregisters and deletes the stream.
class IngestService::WriteStream final : public grpc::ServerBidiReactor<v1::Batch, v1::Ack> {
 public:
  explicit WriteStream(IngestService* service) : service_(service), incoming_(batches_.Take()) {
    service_->metrics_->StreamOpened();
    if (!service_->Register(this)) {
      absl::MutexLock lock(&mu_);
      end_ = Draining();
      read_closed_ = true;
    } else {
      read_outstanding_ = true;
      StartRead(incoming_.get());
    }
    std::thread(&WriteStream::CommitLoop, this).detach();
    MaybeFinish();
  }

  void OnReadDone(bool ok) override {
    std::optional<absl::StatusOr<std::unique_ptr<PreparedBatch>>> prepared;
    if (ok) {
      // The next read (started below or by the commit thread, after mu_) parses into a spare batch.
      BatchPtr received(incoming_.release());
      incoming_ = batches_.Take();
      prepared = service_->sink_->Prepare(std::move(received));  // CPU only: validate, encode
    }
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      read_outstanding_ = false;
      if (!ok) {
        read_closed_ = true;  // the client closed its side (or the call ended)
      } else if (!end_.has_value()) {
        pending_.push_back(*std::move(prepared));
        read_more = pending_.size() < kReadAhead;
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
        pending_.clear();
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

  // Ends the stream once the batch being committed (if any) is acked.
  void End(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (!end_.has_value()) end_ = std::move(status);
      pending_.clear();
    }
    MaybeFinish();
  }

 private:
  // Takes the next batch from pending_ (starting another read if there is room). mu_ held.
  absl::StatusOr<std::unique_ptr<PreparedBatch>> PopPending(bool* read_more) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<std::unique_ptr<PreparedBatch>> next = std::move(pending_.front());
    pending_.pop_front();
    if (!read_outstanding_ && !read_closed_ && pending_.size() < kReadAhead) read_outstanding_ = *read_more = true;
    return next;
  }

  // The pipeline's NextBatch: the next pending batch, to begin ahead, unless the stream is ending.
  std::unique_ptr<PreparedBatch> TakeAhead() {
    std::unique_ptr<PreparedBatch> next;
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      if (end_.has_value() || pending_.empty() || !pending_.front().ok()) return nullptr;
      next = *PopPending(&read_more);
      ahead_ = true;
    }
    if (read_more) StartRead(incoming_.get());
    return next;
  }

  void CommitLoop() {
    CommitAll();
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

  // Commits batches in order until the stream ends or the client is done, queueing their acks.
  void CommitAll() {
    CommitPipeline pipeline(service_->sink_);
    auto take_ahead = [this] { return TakeAhead(); };
    while (true) {
      // nullopt: the batch the pipeline holds begun ahead comes next.
      std::optional<absl::StatusOr<std::unique_ptr<PreparedBatch>>> next;
      bool read_more = false;
      {
        absl::MutexLock lock(&mu_);
        ahead_ = false;
        if (!pipeline.has_ahead()) {
          auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return end_.has_value() || !pending_.empty() || (read_closed_ && !read_outstanding_);
          };
          mu_.Await(absl::Condition(&ready));
          if (end_.has_value() || pending_.empty()) break;  // ended, or the client is done
          next = PopPending(&read_more);
        } else if (end_.has_value()) {
          break;  // the pipeline rolls back its batch begun ahead
        }
        committing_ = true;
      }
      if (read_more) StartRead(incoming_.get());
      CommitPipeline::Committed committed;
      if (!next.has_value()) {
        committed = pipeline.CommitAhead(take_ahead);
      } else if (next->ok()) {
        committed = pipeline.Commit(*std::move(*next), take_ahead);
      } else {
        committed.ack = next->status();
      }
      Acknowledge(std::move(committed));
    }
  }

  // Queues the ack of a committed batch and writes it if no write is outstanding; a failed batch
  // ends the stream.
  void Acknowledge(CommitPipeline::Committed committed) {
    const absl::StatusOr<v1::Ack>& ack = committed.ack;
    if (!ack.ok()) {
      const v1::Batch* batch = committed.batch != nullptr ? committed.batch->batch.get() : nullptr;
      ECOMSTREAM_LOG_(FailureLevel(ack.status()), "Batch failed; ending the stream")
          << Kv("file", batch != nullptr ? batch->file_name() : "")
          << Kv("rows", batch != nullptr ? absl::StrCat(batch->first_row(), "-", batch->last_row()) : "")
          << Kv("error", ack.status().ToString());
    }
    const v1::Ack* write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      committing_ = false;
      if (!ack.ok()) {
        if (!end_.has_value()) end_ = ToGrpcStatus(ack.status());
        pending_.clear();
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

  // Finishes the RPC once nothing is committing or waiting to be written and the stream has
  // ended (an error, a drain, a cancel) or the client closed its side and everything is acked.
  void MaybeFinish() {
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finish_called_ || committing_ || ahead_ || write_outstanding_ || !acks_.empty()) return;
      if (!end_.has_value() && !(read_closed_ && !read_outstanding_ && pending_.empty())) return;
      finish_called_ = true;
      status = end_.value_or(grpc::Status::OK);
    }
    Finish(std::move(status));
  }

  IngestService* service_;
  BatchPool batches_;
  MutableBatchPtr incoming_;  // the outstanding read's target

  absl::Mutex mu_;
  std::deque<absl::StatusOr<std::unique_ptr<PreparedBatch>>> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Ack> acks_ ABSL_GUARDED_BY(mu_);  // front: being written
  std::vector<std::unique_ptr<PreparedBatch>> spent_ ABSL_GUARDED_BY(mu_);  // committed, to free
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool committing_ ABSL_GUARDED_BY(mu_) = false;
  bool ahead_ ABSL_GUARDED_BY(mu_) = false;  // the commit thread's pipeline holds a batch begun ahead
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

IngestService::IngestService(PgSink* sink, FileLedger* ledger, ServerMetrics* metrics, const tracing::Tracer* tracer)
    : sink_(sink), ledger_(ledger), metrics_(metrics), tracer_(tracer) {}

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
  return new WriteStream(this);
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

#include "services/writer/ingest_service.h"

#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/trace_context.h"

namespace ecomstream::writer {
namespace {

// Batches read and prepared ahead of the one committing (the processor's window is larger; gRPC
// flow control holds the rest).
constexpr size_t kReadAhead = 2;

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
  explicit WriteStream(IngestService* service) : service_(service) {
    service_->metrics_->StreamOpened();
    if (!service_->Register(this)) {
      absl::MutexLock lock(&mu_);
      end_ = Draining();
      read_closed_ = true;
    } else {
      read_outstanding_ = true;
      StartRead(&incoming_);
    }
    std::thread(&WriteStream::CommitLoop, this).detach();
    MaybeFinish();
  }

  void OnReadDone(bool ok) override {
    std::optional<absl::StatusOr<std::unique_ptr<PreparedBatch>>> prepared;
    if (ok) prepared = service_->sink_->Prepare(std::move(incoming_));  // CPU only: validate, encode
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
    if (read_more) StartRead(&incoming_);
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
  // The batch after the one committing, begun on a helper thread (PgSink::Begin: its new events
  // are inserted while this one locks its file and commits). Commit thread only.
  struct Ahead {
    std::unique_ptr<PreparedBatch> batch;
    PgSink::BegunPtr begun;
    std::thread thread;  // running Begin
  };

  // Takes the next batch from pending_ (starting another read if there is room). mu_ held.
  absl::StatusOr<std::unique_ptr<PreparedBatch>> PopPending(bool* read_more) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<std::unique_ptr<PreparedBatch>> next = std::move(pending_.front());
    pending_.pop_front();
    if (!read_outstanding_ && !read_closed_ && pending_.size() < kReadAhead) read_outstanding_ = *read_more = true;
    return next;
  }

  // Commits `batch` (finishing `begun`, or beginning it here), and once its new events are in,
  // begins the next pending batch in `ahead` on a helper thread.
  absl::StatusOr<v1::Ack> CommitBatch(const PreparedBatch& batch, PgSink::BegunPtr begun, std::unique_ptr<Ahead>* ahead) {
    if (begun == nullptr) begun = service_->sink_->Begin(batch);
    bool read_more = false;
    if (begun != nullptr) {
      absl::MutexLock lock(&mu_);
      if (!end_.has_value() && !pending_.empty() && pending_.front().ok()) {
        *ahead = std::make_unique<Ahead>();
        (*ahead)->batch = *PopPending(&read_more);
        ahead_ = true;
      }
    }
    if (read_more) StartRead(&incoming_);
    if (*ahead != nullptr) {
      (*ahead)->thread = std::thread([sink = service_->sink_, a = ahead->get()] { a->begun = sink->Begin(*a->batch); });
    }
    return service_->sink_->Commit(batch, std::move(begun), [ahead] {
      // This batch runs again, and could wait for the new rows of the one begun after it.
      if (*ahead == nullptr) return;
      if ((*ahead)->thread.joinable()) (*ahead)->thread.join();
      (*ahead)->begun.reset();
    });
  }

  void CommitLoop() {
    std::unique_ptr<Ahead> ahead;
    while (true) {
      std::optional<absl::StatusOr<std::unique_ptr<PreparedBatch>>> next;
      PgSink::BegunPtr begun;
      bool read_more = false;
      if (ahead != nullptr) {
        if (ahead->thread.joinable()) ahead->thread.join();  // before_rerun may have joined it
        next = std::move(ahead->batch);
        begun = std::move(ahead->begun);
        ahead.reset();
      }
      {
        absl::MutexLock lock(&mu_);
        ahead_ = false;
        if (!next.has_value()) {
          auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return end_.has_value() || !pending_.empty() || (read_closed_ && !read_outstanding_);
          };
          mu_.Await(absl::Condition(&ready));
          if (end_.has_value() || pending_.empty()) break;  // ended, or the client is done
          next = PopPending(&read_more);
        } else if (end_.has_value()) {
          break;  // rolls back `begun`
        }
        committing_ = true;
      }
      if (read_more) StartRead(&incoming_);
      absl::StatusOr<v1::Ack> ack = next->ok() ? CommitBatch(***next, std::move(begun), &ahead) : next->status();
      if (!ack.ok()) {
        const v1::Batch* batch = next->ok() ? (**next)->batch.get() : nullptr;
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
          acks_.push_back(*std::move(ack));
          // Freeing a batch (thousands of protobuf strings) takes about a millisecond: a gRPC
          // thread does it (OnWriteDone), not this one, which goes on to the next transaction.
          if (next->ok()) spent_.push_back(*std::move(*next));
          if (!write_outstanding_) {
            write_outstanding_ = true;
            write = &acks_.front();
          }
        }
      }
      if (write != nullptr) StartWrite(write);
      MaybeFinish();
    }
    MaybeFinish();  // (each iteration takes `ahead` first, so there is none left here)
    {
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
      mu_.Await(absl::Condition(&done));
    }
    service_->metrics_->StreamClosed();
    service_->Unregister(this);
    delete this;
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
  v1::Batch incoming_;  // the outstanding read's target

  absl::Mutex mu_;
  std::deque<absl::StatusOr<std::unique_ptr<PreparedBatch>>> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Ack> acks_ ABSL_GUARDED_BY(mu_);  // front: being written
  std::vector<std::unique_ptr<PreparedBatch>> spent_ ABSL_GUARDED_BY(mu_);  // committed, to free
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool committing_ ABSL_GUARDED_BY(mu_) = false;
  bool ahead_ ABSL_GUARDED_BY(mu_) = false;  // the commit thread holds a batch begun ahead
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

IngestService::IngestService(PgSink* sink, FileLedger* ledger, WriterMetrics* metrics, const tracing::Tracer* tracer)
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

#include "services/writer/ingest_service.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"

namespace ecomstream::writer {
namespace {

grpc::Status Draining() { return grpc::Status(grpc::StatusCode::UNAVAILABLE, "writer is shutting down"); }

}  // namespace

IngestService::IngestService(PgSink* sink, FileLedger* ledger, WriterMetrics* metrics)
    : sink_(sink), ledger_(ledger), metrics_(metrics) {}

grpc::Status IngestService::ClaimFile(grpc::ServerContext* context, const v1::ClaimFileRequest* request,
                                      v1::ClaimFileResponse* response) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return Draining();
  }
  auto claimed = ledger_->Claim(*request);
  if (!claimed.ok()) {
    // While the database is down every retry fails alike; the pool logs the outage once.
    const LogLevel level = absl::IsUnavailable(claimed.status()) ? LogLevel::kDebug : LogLevel::kWarning;
    ECOMSTREAM_LOG_(level, "Claim failed") << Kv("file", request->file_name()) << Kv("claimant", request->claimant())
                                           << Kv("error", claimed.status().ToString());
    return ToGrpcStatus(claimed.status());
  }
  *response = *std::move(claimed);
  return grpc::Status::OK;
}

bool IngestService::SetState(grpc::ServerContext* context, StreamState state) {
  absl::MutexLock lock(&mu_);
  streams_[context] = state;
  return !draining_;
}

grpc::Status IngestService::Write(grpc::ServerContext* context,
                                  grpc::ServerReaderWriter<v1::Ack, v1::Batch>* stream) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return Draining();
    streams_[context] = StreamState::kWaiting;
  }
  metrics_->StreamOpened();
  grpc::Status result = grpc::Status::OK;
  v1::Batch batch;
  while (true) {
    if (!SetState(context, StreamState::kWaiting)) {
      result = Draining();
      break;
    }
    if (!stream->Read(&batch)) break;  // the client closed its side: done
    SetState(context, StreamState::kWriting);
    auto ack = sink_->Write(batch);
    if (!ack.ok()) {
      const LogLevel level = absl::IsUnavailable(ack.status()) ? LogLevel::kDebug : LogLevel::kWarning;
      ECOMSTREAM_LOG_(level, "Batch failed; ending the stream")
          << Kv("file", batch.file_name()) << Kv("rows", absl::StrCat(batch.first_row(), "-", batch.last_row()))
          << Kv("error", ack.status().ToString());
      result = ToGrpcStatus(ack.status());
      break;
    }
    if (!stream->Write(*ack)) {
      // The client went away after the commit: its replay will be answered from the ledger.
      result = grpc::Status(grpc::StatusCode::CANCELLED, "client gone before the ack was sent");
      break;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    streams_.erase(context);
  }
  metrics_->StreamClosed();
  return result;
}

bool IngestService::Drain(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  // A stream blocked in Read() has nothing uncommitted: cancelling it loses nothing. A stream
  // in kWriting finishes its batch and sees draining_ before it reads again.
  for (const auto& [context, state] : streams_) {
    if (state == StreamState::kWaiting) context->TryCancel();
  }
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

}  // namespace ecomstream::writer

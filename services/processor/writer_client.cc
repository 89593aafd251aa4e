#include "services/processor/writer_client.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/atomic_file.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status.h"
#include "common/time_util.h"
#include "services/processor/file_lifecycle.h"

namespace ecomstream::processor {
namespace {

constexpr size_t kMaxPemBytes = 1 << 20;

// How long the channel watcher waits for a state change before it looks again. Stopping waits for
// its wait to run out (a `--once` run's exit, too): 200 ms cost a short run up to a tenth of its
// time; a look every 50 ms costs a few microseconds of CPU.
constexpr absl::Duration kWatchStep = absl::Milliseconds(50);

// A retry on a new stream cannot help these: the writer refused what it was given (ABORTED: the
// claim was lost to another claimant; the file must be claimed again).
bool IsRejection(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::DATA_LOSS:
      return true;
    default:
      return false;
  }
}

bool IsTransportFailure(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

bool SameBatch(const v1::Batch& batch, const v1::Ack& ack) {
  return batch.first_row() == ack.first_row() && batch.last_row() == ack.last_row() && batch.file_id() == ack.file_id();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeWriterChannel(const std::string& address, const TlsFiles& tls,
                                                                 absl::Duration max_reconnect_backoff) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls.ca.empty() && tls.cert.empty() && tls.key.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!tls.ca.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadSmallFile(tls.ca, kMaxPemBytes));
    }
    if (!tls.cert.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadSmallFile(tls.cert, kMaxPemBytes));
    }
    if (!tls.key.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadSmallFile(tls.key, kMaxPemBytes));
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  const int backoff_ms = static_cast<int>(absl::ToInt64Milliseconds(max_reconnect_backoff));
  // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the connect timeout of each attempt.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(backoff_ms, 100));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, backoff_ms);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // the client decides what to resend
  // docs/design.md, "scale-out": writers behind a headless Service, client-side round-robin. Each
  // call (ClaimFile, a new Write stream) goes to the next ready writer; a stream stays on one.
  args.SetLoadBalancingPolicyName("round_robin");
  return grpc::CreateCustomChannel(address, credentials, args);
}

WriterClient::WriterClient(std::shared_ptr<grpc::Channel> channel, WriterClientOptions options, AckHandler* handler,
                           ProcessorMetrics* metrics)
    : channel_(std::move(channel)),
      stub_(v1::Ingest::NewStub(channel_)),
      options_(options),
      handler_(handler),
      metrics_(metrics),
      breaker_(options.breaker, nullptr,
               [metrics](CircuitBreaker::State state) {
                 if (metrics == nullptr) return;
                 metrics->circuit_open.Set(state == CircuitBreaker::State::kOpen ? 1 : 0);
                 if (state == CircuitBreaker::State::kOpen) metrics->circuit_opened.Increment();
               }),
      backoff_(options.backoff, std::random_device{}()) {}

WriterClient::~WriterClient() { Stop(); }

void WriterClient::Start() {
  watching_ = true;
  watcher_ = std::thread([this] {
    while (watching_) {
      const grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
      connected_ = state == GRPC_CHANNEL_READY;
      // Short: Stop joins this thread, and the wait cannot be cut short.
      channel_->WaitForStateChange(state, absl::ToChronoTime(absl::Now() + kWatchStep));
    }
  });
  thread_ = std::thread([this] { Run(); });
}

bool WriterClient::Ready() { return connected_ && breaker_.state() != CircuitBreaker::State::kOpen; }

absl::StatusOr<v1::ClaimFileResponse> WriterClient::ClaimFile(const v1::ClaimFileRequest& request,
                                                               const tracing::TraceContext& trace) {
  return StartClaimFile(request, trace)->Wait();
}

std::unique_ptr<PendingClaim> WriterClient::StartClaimFile(const v1::ClaimFileRequest& request,
                                                           const tracing::TraceContext& trace) {
  std::unique_ptr<PendingClaim> claim(new PendingClaim(&breaker_));
  if (!breaker_.Allow()) {
    claim->answer_ = absl::UnavailableError(absl::StrCat("circuit breaker ", CircuitStateName(breaker_.state()),
                                                         ": the writer failed repeatedly"));
    return claim;
  }
  claim->context_.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  tracing::InjectTraceparent(trace, &claim->context_);
  claim->call_ = stub_->AsyncClaimFile(&claim->context_, request, &claim->queue_);
  claim->call_->Finish(&claim->response_, &claim->status_, claim.get());
  return claim;
}

PendingClaim::~PendingClaim() {
  if (call_ != nullptr && !answer_.has_value()) {
    context_.TryCancel();
    void* tag;
    bool ok;
    (void)queue_.Next(&tag, &ok);  // the call's completion, cancelled or not
  }
  queue_.Shutdown();
  void* tag;
  bool ok;
  while (queue_.Next(&tag, &ok)) {
  }
}

const absl::StatusOr<v1::ClaimFileResponse>& PendingClaim::Wait() {
  if (answer_.has_value()) return *answer_;
  void* tag;
  bool ok;
  if (!queue_.Next(&tag, &ok)) status_ = grpc::Status(grpc::StatusCode::INTERNAL, "completion queue shut down");
  if (IsTransportFailure(status_.error_code())) {
    breaker_->RecordFailure();
  } else {
    breaker_->RecordSuccess();  // the writer answered, whatever it said
  }
  if (!status_.ok()) {
    const absl::Status s = FromGrpcStatus(status_);
    answer_ = absl::Status(s.code(), absl::StrCat("ClaimFile: ", s.message()));
  } else if (!v1::ClaimFileResponse::Outcome_IsValid(response_.outcome()) ||
             response_.outcome() == v1::ClaimFileResponse::OUTCOME_UNSPECIFIED || response_.resume_after_row() < 0) {
    answer_ = absl::InternalError(absl::StrCat("ClaimFile answer outside the contract: outcome ",
                                               response_.outcome(), ", resume_after_row ",
                                               response_.resume_after_row()));
  } else {
    answer_ = std::move(response_);
  }
  return *answer_;
}

absl::Status WriterClient::Send(std::unique_ptr<OwnedBatch> batch) {
  absl::MutexLock lock(&mu_);
  auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || intake_stopped_ || static_cast<int>(window_.size()) < options_.max_in_flight;
  };
  while (!has_room()) changed_.Wait(&mu_);
  absl::Status refused;
  if (stopping_ || intake_stopped_) {
    refused = absl::CancelledError("the writer client is stopping");
  } else if (rejected_files_.contains(batch->batch().file_id())) {
    refused = absl::AbortedError(absl::StrCat("the writer rejected file ", batch->batch().file_id()));
  }
  if (!refused.ok()) {
    batch->span.SetStatus(refused);  // it ends with the batch
    return refused;
  }
  if (metrics_ != nullptr) metrics_->writer_client.received.Increment();
  window_bytes_ += batch->estimated_bytes;
  window_.push_back(Pending{std::shared_ptr<OwnedBatch>(std::move(batch))});
  stats_.max_in_flight_seen = std::max(stats_.max_in_flight_seen, static_cast<int>(window_.size()));
  UpdateWindowMetrics();
  changed_.SignalAll();
  return absl::OkStatus();
}

void WriterClient::ClearRejection(const std::string& file_id) {
  absl::MutexLock lock(&mu_);
  rejected_files_.erase(file_id);
}

bool WriterClient::WaitForAcks(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (!window_.empty() || acks_in_handler_ > 0) {
    if (changed_.WaitWithDeadline(&mu_, deadline) && (!window_.empty() || acks_in_handler_ > 0)) return false;
  }
  return true;
}

void WriterClient::StopIntake() {
  absl::MutexLock lock(&mu_);
  intake_stopped_ = true;
  changed_.SignalAll();
}

void WriterClient::Stop() {
  watching_ = false;  // its last wait runs out while the stream ends
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    intake_stopped_ = true;
    if (stream_context_ != nullptr) stream_context_->TryCancel();
    changed_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  if (watcher_.joinable()) watcher_.join();
  // The unacknowledged batches are dropped now, so their batch.send spans end before the
  // tracer is flushed.
  std::deque<Pending> dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(window_);
    window_bytes_ = 0;
    UpdateWindowMetrics();
    changed_.SignalAll();
  }
  for (Pending& p : dropped) {
    p.batch->span.SetStatus(absl::CancelledError("unacknowledged when the writer client stopped"));
  }
}

WriterClient::Stats WriterClient::stats() const {
  absl::MutexLock lock(&mu_);
  Stats stats = stats_;
  stats.in_flight = static_cast<int>(window_.size());
  return stats;
}

void WriterClient::UpdateWindowMetrics() {
  if (metrics_ == nullptr) return;
  metrics_->in_flight_batches.Set(static_cast<double>(window_.size()));
  metrics_->in_flight_bytes.Set(static_cast<double>(window_bytes_));
}

void WriterClient::Run() {
  absl::MutexLock lock(&mu_);
  // The first stream opens now, before the first batch: the first file does not wait for the
  // call's setup (and the writer's for its side of the stream). Later streams open for a batch.
  bool open_idle = true;
  for (;;) {
    while (!stopping_ && window_.empty() && !open_idle) changed_.Wait(&mu_);
    if (stopping_) return;
    const bool at_start = open_idle;
    open_idle = false;
    const absl::Time not_before = std::max(next_attempt_, breaker_.retry_at());
    if (absl::Now() < not_before) {
      changed_.WaitWithDeadline(&mu_, not_before);
      continue;
    }
    if (!breaker_.Allow()) {
      // A trial call (a ClaimFile) is deciding; look again shortly.
      next_attempt_ = absl::Now() + options_.backoff.initial;
      continue;
    }
    mu_.Unlock();
    const StreamEnd end = RunStream(/*for_waiting_batches=*/!at_start);
    HandleStreamEnd(end);
    mu_.Lock();
  }
}

WriterClient::StreamEnd WriterClient::RunStream(bool for_waiting_batches) {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return StreamEnd{grpc::Status::CANCELLED};
    stream_context_ = &context;
    stream_done_ = false;
    stream_acks_ = 0;
    for (Pending& p : window_) p.written = false;  // a new stream has seen nothing
    // The stream outlives any one batch: its metadata carries the batch.send context of the
    // oldest batch waiting for it, if it was opened for them. The writer follows each Batch's own
    // traceparent.
    if (for_waiting_batches && !window_.empty()) {
      tracing::InjectTraceparent(window_.front().batch->span.context(), &context);
    }
  }
  std::unique_ptr<grpc::ClientReaderWriter<v1::Batch, v1::Ack>> stream = stub_->Write(&context);
  std::thread reader([this, &stream] {
    v1::Ack ack;
    while (stream->Read(&ack)) HandleAck(ack);
    absl::MutexLock lock(&mu_);
    stream_done_ = true;
    changed_.SignalAll();
  });

  StreamEnd end;
  bool write_failed = false;
  bool cancel = true;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      if (stream_done_ || stopping_) break;
      auto next = std::find_if(window_.begin(), window_.end(), [](const Pending& p) { return !p.written; });
      if (next != window_.end()) {
        next->written = true;
        next->written_at_us = MonotonicMicros();
        const bool repeat = next->writes > 0;  // it reached an earlier stream
        std::shared_ptr<OwnedBatch> batch = next->batch;
        batch->batch().set_sent_time_us(NowMicros());
        mu_.Unlock();
        const bool ok = stream->Write(batch->batch());
        mu_.Lock();
        if (!ok) {
          write_failed = true;  // the call is over; the reader sees it end too
          break;
        }
        end.wrote = true;
        ++stats_.batches_sent;
        if (repeat) ++stats_.batches_resent;
        if (metrics_ != nullptr) {
          metrics_->batches_sent.Increment();
          metrics_->writer_client.sent.Increment();
          if (repeat) metrics_->batches_resent.Increment();
        }
        // Found again by identity: `next` may be gone (acked, even, while the lock was released).
        auto it = std::find_if(window_.begin(), window_.end(), [&](const Pending& p) { return p.batch == batch; });
        if (it != window_.end()) ++it->writes;
        continue;
      }
      if (window_.empty() && intake_stopped_) {
        end.graceful = true;
        mu_.Unlock();
        stream->WritesDone();
        mu_.Lock();
        while (!stream_done_ && !stopping_) changed_.Wait(&mu_);
        break;
      }
      // Everything is written; wait for acks, but not forever.
      absl::Time wake = absl::Now() + absl::Seconds(1);
      if (!window_.empty()) {
        const int64_t oldest_us = window_.front().written_at_us;
        const int64_t waited_us = MonotonicMicros() - oldest_us;
        if (waited_us > absl::ToInt64Microseconds(options_.ack_timeout)) {
          end.timed_out = true;
          break;
        }
        wake = std::min(wake, absl::Now() + options_.ack_timeout - absl::Microseconds(waited_us));
      }
      changed_.WaitWithDeadline(&mu_, wake);
    }
  }
  {
    // The writer ended the call (its status is what Finish reports): nothing to cancel. We end it
    // ourselves when stopping or when the writer went silent.
    absl::MutexLock lock(&mu_);
    cancel = !stream_done_ && !write_failed;
  }
  if (cancel) context.TryCancel();
  reader.join();
  end.status = stream->Finish();
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto refused = trailers.find(kRefusedFileIdMetadata); refused != trailers.end()) {
    end.refused_file_id.assign(refused->second.data(), refused->second.size());
  }
  absl::MutexLock lock(&mu_);
  stream_context_ = nullptr;
  end.acked = stream_acks_ > 0;
  if (end.graceful && stream_acks_ == 0 && end.status.error_code() == grpc::StatusCode::CANCELLED) {
    end.status = grpc::Status::OK;
  }
  return end;
}

void WriterClient::HandleAck(const v1::Ack& ack) {
  std::shared_ptr<OwnedBatch> batch;
  int64_t written_at_us = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find_if(window_.begin(), window_.end(),
                           [&ack](const Pending& p) { return SameBatch(p.batch->batch(), ack); });
    if (it == window_.end()) {
      ++stats_.unexpected_acks;
      if (metrics_ != nullptr) metrics_->unexpected_acks.Increment();
      LOG_WARNING("Ignored an ack that matches no unacknowledged batch")
          << Kv("file_id", ack.file_id()) << Kv("first_row", ack.first_row()) << Kv("last_row", ack.last_row());
      return;
    }
    batch = std::move(it->batch);
    written_at_us = it->written_at_us;
    window_bytes_ -= batch->estimated_bytes;
    window_.erase(it);
    ++acks_in_handler_;
    ++stream_acks_;
    ++stats_.batches_acked;
    UpdateWindowMetrics();
    changed_.SignalAll();
  }
  breaker_.RecordSuccess();
  const v1::Batch& b = batch->batch();
  const int64_t accounted = ack.inserted() + ack.updated() + ack.unchanged() + ack.dead_lettered() + ack.duplicates();
  if (!ack.already_committed() && accounted != b.last_row() - b.first_row() + 1) {
    LOG_WARNING("Ack counts do not add up to the batch's rows")
        << Kv("file", b.file_name()) << Kv("first_row", b.first_row()) << Kv("last_row", b.last_row())
        << Kv("accounted", accounted);
  }
  if (metrics_ != nullptr) {
    metrics_->batches_acked.Increment();
    metrics_->batch_ack_latency_seconds.Observe(static_cast<double>(MonotonicMicros() - written_at_us) / 1e6);
    metrics_->CountAck(ack);
  }
  // batch.send ends with its ack, before the handler may end the file's span.
  tracing::Span& span = batch->span;
  span.SetAttribute("rows.inserted", ack.inserted());
  span.SetAttribute("rows.updated", ack.updated());
  span.SetAttribute("rows.unchanged", ack.unchanged());
  span.SetAttribute("rows.dead_lettered", ack.dead_lettered());
  span.SetAttribute("batch.already_committed", ack.already_committed());
  span.End();
  handler_->OnAck(*batch, ack);
  absl::MutexLock lock(&mu_);
  --acks_in_handler_;
  changed_.SignalAll();
}

void WriterClient::HandleStreamEnd(const StreamEnd& end) {
  std::string rejected_file;
  absl::Status rejection;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || (end.graceful && end.status.ok())) return;
    if (!end.wrote && window_.empty()) {
      // A stream that carried nothing ended (the writer is not up yet, or restarted while we
      // were idle): no failure to count, nothing to resend. The next batch opens a new one.
      LOG_DEBUG("Idle write stream ended") << Kv("code", static_cast<int>(end.status.error_code()))
                                           << Kv("error", end.status.error_message());
      return;
    }
    ++stats_.stream_failures;
    if (metrics_ != nullptr) metrics_->writer_client.failed.Increment();
    const grpc::StatusCode code = end.status.error_code();
    if (IsRejection(code) && !window_.empty()) {
      // The writer answered, and refused a batch of the file its trailing metadata names (it
      // commits several files at once); a writer that names none refused the oldest
      // unacknowledged batch, the one it read first.
      rejected_file = window_.front().batch->batch().file_id();
      if (std::any_of(window_.begin(), window_.end(),
                      [&](const Pending& p) { return p.batch->batch().file_id() == end.refused_file_id; })) {
        rejected_file = end.refused_file_id;
      }
      rejection = absl::Status(FromGrpcStatus(end.status).code(),
                               absl::StrCat("the writer refused a batch: ", end.status.error_message()));
      const size_t before = window_.size();
      size_t removed_bytes = 0;
      window_.erase(std::remove_if(window_.begin(), window_.end(),
                                   [&](const Pending& p) {
                                     if (p.batch->batch().file_id() != rejected_file) return false;
                                     p.batch->span.SetStatus(rejection);  // ends as it leaves
                                     removed_bytes += p.batch->estimated_bytes;
                                     return true;
                                   }),
                    window_.end());
      window_bytes_ -= removed_bytes;
      stats_.batches_rejected += static_cast<int64_t>(before - window_.size());
      if (metrics_ != nullptr) metrics_->writer_client.dropped.Increment(static_cast<double>(before - window_.size()));
      rejected_files_.insert(rejected_file);
      UpdateWindowMetrics();
      backoff_.Reset();
      next_attempt_ = absl::InfinitePast();
      changed_.SignalAll();
    } else {
      if (end.acked) {
        backoff_.Reset();  // it was working: reconnect promptly
      } else {
        breaker_.RecordFailure();
      }
      const absl::Duration delay = backoff_.Next();
      next_attempt_ = absl::Now() + delay;
      if (!window_.empty() && metrics_ != nullptr) metrics_->stream_reconnects.Increment();
      LOG_WARNING("Write stream ended; reconnecting")
          << Kv("code", static_cast<int>(code)) << Kv("error", end.status.error_message())
          << Kv("ack_timeout", end.timed_out) << Kv("unacked", window_.size())
          << Kv("retry_in_ms", absl::ToInt64Milliseconds(delay))
          << Kv("breaker", CircuitStateName(breaker_.state()));
    }
  }
  if (!rejected_file.empty()) handler_->OnFileRejected(rejected_file, rejection);
}

}  // namespace ecomstream::processor

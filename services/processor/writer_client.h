// writer_client: the processor's side of the Ingest service (docs/design.md, "wire"; proto/ecomstream/v1/ingest.proto).
//
// ClaimFile is a unary call with a deadline; StartClaimFile sends it and lets the caller work
// (read the file) until it needs the answer. Batches go out on one long-lived bidirectional
// Write stream (Start() opens the first one before any batch is sent), in the order Send()
// queued them, through a bounded window: Send() blocks while `max_in_flight` batches are
// unacknowledged, so a slow writer slows the reader and memory stays bounded (about
// max_in_flight x batch bytes). Each Ack is matched to its batch by file id and row range and
// handed to the AckHandler.
//
// When the stream breaks (writer down, restarted, or silent past `ack_timeout`), the client
// reconnects with exponential backoff and jitter and writes every unacknowledged batch again,
// in order; the writer's batch ledger makes the repeats no-ops. Consecutive failures open a
// circuit breaker: while open, ClaimFile fails fast with kUnavailable and no stream is tried;
// after `open_duration` one trial decides. A stream ended with a non-retryable code
// (INVALID_ARGUMENT, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, ...) is blamed on the file its
// trailing metadata kRefusedFileIdMetadata names (common/grpc_status.h: the writer commits
// several files at once, so acks of other files may come after the oldest unacknowledged batch),
// or on the oldest unacknowledged batch's file when it names none of the window's files: that
// file's batches leave the window and OnFileRejected tells why.
//
// Tracing: each batch's batch.send span (OwnedBatch::span) ends when its ack arrives, before
// OnAck; with an error status when the batch is refused by Send, rejected by the writer, or
// dropped unacknowledged by Stop. ClaimFile's metadata carries the file's traceparent; a Write
// stream opened for waiting batches carries the traceparent of the oldest one in its metadata,
// the stream opened by Start() none (the writer follows each Batch's own traceparent
// field, the stream being shared by many batches and files).
//
// Threads: Send, ClaimFile, StartClaimFile, WaitForAcks, StopIntake, Stop and the accessors are
// thread-safe (a PendingClaim is not: one owner waits for it).
// One internal thread runs the stream (plus a reader thread per stream); AckHandler callbacks
// run on the reader thread, never under the client's lock, and must not block for long.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_WRITER_CLIENT_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_WRITER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/trace_context.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/processor/batcher.h"
#include "services/processor/processor_metrics.h"
#include "services/processor/retry.h"

namespace ecomstream::processor {

class AckHandler {
 public:
  virtual ~AckHandler() = default;
  // An ack that matched an unacknowledged batch (which has left the window; its batch.send
  // span has ended).
  virtual void OnAck(const OwnedBatch& batch, const v1::Ack& ack) = 0;
  // The writer refused a batch of `file_id` with a non-retryable `status`; every unacknowledged
  // batch of that file has left the window, and Send() refuses the file's batches until
  // ClearRejection(file_id).
  virtual void OnFileRejected(const std::string& file_id, const absl::Status& status) = 0;
};

struct WriterClientOptions {
  int max_in_flight = 8;                            // unacknowledged batches
  absl::Duration rpc_timeout = absl::Seconds(10);   // ClaimFile deadline
  absl::Duration ack_timeout = absl::Seconds(60);   // oldest unacked batch older: reconnect
  BackoffOptions backoff;
  CircuitBreakerOptions breaker;
};

struct TlsFiles {
  std::string ca;    // PEM roots; empty = system roots (with cert/key) or plaintext (all empty)
  std::string cert;  // PEM client certificate for mTLS (with key)
  std::string key;
};

// A channel to the writer(s): TLS when any TLS file is given (files read now; kNotFound /
// kPermissionDenied when unreadable), plaintext otherwise. Round-robin over every address the
// target resolves to (a headless Service's "dns:///writer:50051"); reconnect backoff is capped at
// `max_reconnect_backoff` so a returning writer is found quickly.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeWriterChannel(
    const std::string& address, const TlsFiles& tls, absl::Duration max_reconnect_backoff = absl::Seconds(2));

// A ClaimFile call in flight (WriterClient::StartClaimFile). Not thread-safe: one owner.
class PendingClaim {
 public:
  ~PendingClaim();  // cancels the call if its answer was never awaited
  PendingClaim(const PendingClaim&) = delete;
  PendingClaim& operator=(const PendingClaim&) = delete;

  // Blocks until the answer is in; then returns it, the same each time, as ClaimFile would.
  const absl::StatusOr<v1::ClaimFileResponse>& Wait();
  bool answered() const { return answer_.has_value(); }

 private:
  friend class WriterClient;
  explicit PendingClaim(CircuitBreaker* breaker) : breaker_(breaker) {}

  CircuitBreaker* const breaker_;
  grpc::ClientContext context_;
  grpc::CompletionQueue queue_;  // polled by Wait() only: the answer costs no thread switch
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ClaimFileResponse>> call_;
  v1::ClaimFileResponse response_;
  grpc::Status status_;
  std::optional<absl::StatusOr<v1::ClaimFileResponse>> answer_;
};

class WriterClient {
 public:
  // `handler` must outlive the client; `metrics` may be null.
  WriterClient(std::shared_ptr<grpc::Channel> channel, WriterClientOptions options, AckHandler* handler,
               ProcessorMetrics* metrics);
  ~WriterClient();
  WriterClient(const WriterClient&) = delete;
  WriterClient& operator=(const WriterClient&) = delete;

  // Starts the stream thread, which opens a Write stream right away (a stream that ends before
  // any batch was written on it counts as no failure), and a watcher that keeps the channel
  // connected.
  void Start();

  // One ClaimFile call with `trace` in the metadata. kUnavailable when the breaker is open or
  // the writer is unreachable (retry later); other codes as the writer returned them;
  // kInternal for an answer outside the contract (unknown outcome, negative row).
  absl::StatusOr<v1::ClaimFileResponse> ClaimFile(const v1::ClaimFileRequest& request,
                                                  const tracing::TraceContext& trace);
  // The same call, sent now; PendingClaim::Wait() gives its answer. The client must outlive it.
  std::unique_ptr<PendingClaim> StartClaimFile(const v1::ClaimFileRequest& request,
                                               const tracing::TraceContext& trace);

  // Queues `batch` for the stream, blocking while the window is full. kCancelled after
  // StopIntake() or Stop(); kAborted when the batch's file was rejected (see AckHandler).
  absl::Status Send(std::unique_ptr<OwnedBatch> batch);

  // Lets Send() accept batches of `file_id` again.
  void ClearRejection(const std::string& file_id);

  // Waits until no batch is unacknowledged and every OnAck has returned. False if `timeout`
  // passed first.
  bool WaitForAcks(absl::Duration timeout);

  // Refuses further batches (Send returns kCancelled); the window still drains, then the stream
  // is closed cleanly.
  void StopIntake();
  // Cancels the stream and joins the threads; unacknowledged batches are dropped (their spans
  // end with kCancelled).
  void Stop();

  // The writer answers: the channel is connected and the breaker not open.
  bool Ready();
  CircuitBreaker::State breaker_state() const { return breaker_.state(); }

  struct Stats {
    int64_t batches_sent = 0;     // writes, including repeats
    int64_t batches_resent = 0;   // repeats after a reconnect
    int64_t batches_acked = 0;
    int64_t batches_rejected = 0;
    int64_t stream_failures = 0;
    int64_t unexpected_acks = 0;
    int in_flight = 0;
    int max_in_flight_seen = 0;
  };
  Stats stats() const;

 private:
  struct Pending {
    std::shared_ptr<OwnedBatch> batch;
    bool written = false;  // on the current stream
    int writes = 0;
    int64_t written_at_us = 0;  // monotonic
  };
  // How a stream ended, for the reconnect decision.
  struct StreamEnd {
    grpc::Status status;
    bool graceful = false;
    bool acked = false;      // at least one ack arrived on it
    bool timed_out = false;  // the oldest batch waited longer than ack_timeout
    bool wrote = false;      // at least one batch was written on it
    std::string refused_file_id;  // the writer's kRefusedFileIdMetadata, "" if absent
  };

  void Run();
  // One stream, until it ends; `for_waiting_batches` false for the one opened at start.
  StreamEnd RunStream(bool for_waiting_batches);
  void HandleAck(const v1::Ack& ack);
  void HandleStreamEnd(const StreamEnd& end);
  void UpdateWindowMetrics() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
  const WriterClientOptions options_;
  AckHandler* const handler_;
  ProcessorMetrics* const metrics_;
  CircuitBreaker breaker_;

  mutable absl::Mutex mu_;
  absl::CondVar changed_;  // window, stream or stop state changed
  std::deque<Pending> window_ ABSL_GUARDED_BY(mu_);
  // Sum of the window's batches' estimated_bytes, kept with every push and erase.
  size_t window_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<std::string> rejected_files_ ABSL_GUARDED_BY(mu_);
  bool intake_stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t stream_acks_ ABSL_GUARDED_BY(mu_) = 0;
  int acks_in_handler_ ABSL_GUARDED_BY(mu_) = 0;  // acked, AckHandler::OnAck still running
  grpc::ClientContext* stream_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  Backoff backoff_ ABSL_GUARDED_BY(mu_);
  absl::Time next_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  // Keeps the channel connecting and its state fresh: with no call in progress nothing else
  // polls a sync channel (gRPC's backup poller runs every 5 s).
  std::thread watcher_;
  std::atomic<bool> watching_{false};
  std::atomic<bool> connected_{false};
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_WRITER_CLIENT_H_

// FakeWriter: an in-process Ingest server on 127.0.0.1 for the processor's tests, a real gRPC
// server whose behaviour the test scripts: delay or hold acks, fail or drop streams, refuse
// files, answer ClaimFile as told, restart on the same port. It records everything it receives.
//
// Acks follow the writer's contract: one per batch in arrival order, already_committed for a
// batch id seen before, file_committed on a file's last batch. Thread-safe.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_TESTING_FAKE_WRITER_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_TESTING_FAKE_WRITER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ecomstream/v1/ingest.grpc.pb.h"

namespace ecomstream::processor::testing {

class FakeWriter final : public v1::Ingest::Service {
 public:
  struct Received {
    v1::Batch batch;
    int stream = 0;  // 1-based stream number it arrived on
    int64_t received_us = 0;  // NowMicros() when it was read
  };

  FakeWriter();
  ~FakeWriter() override;

  // Starts on 127.0.0.1:0 (or the previous port after Stop()).
  void Start();
  // Shuts the server down, ending every stream and connection.
  void Stop();
  // Stop() then Start() on the same port: clients see their connection drop.
  void Restart();
  std::string address() const { return address_; }
  std::shared_ptr<grpc::Channel> NewChannel() const;

  // --- Behaviour ---
  // Answer for ClaimFile of `file_name` (CLAIMED with a fresh token when not set). `times` < 0:
  // every call; otherwise for the next `times` calls, then the default again.
  void SetClaimResponse(const std::string& file_name, v1::ClaimFileResponse response, int times = -1);
  // Each ClaimFile answers only after `delay` (or once the caller cancels it).
  void SetClaimDelay(absl::Duration delay);
  // Every ClaimFile / Write fails with `status` until cleared with OK.
  void SetClaimStatus(grpc::Status status);
  void SetWriteStatus(grpc::Status status);
  // Held acks are not sent until released; the stream keeps reading.
  void HoldAcks(bool hold);
  void SetAckDelay(absl::Duration delay);
  // After receiving `batches` more batches on one stream, end it with UNAVAILABLE without acking
  // them (once).
  void DropStreamAfter(int batches);
  // Batches of `file_name` end the stream with INVALID_ARGUMENT.
  void RejectFile(const std::string& file_name);
  // Before its next real ack, send an ack that matches no batch.
  void SendBogusAck();
  // Read batches but never ack on the current and next `streams` streams (a silent writer).
  void SwallowStreams(int streams);

  // --- Observations ---
  std::vector<Received> received() const;
  std::vector<v1::ClaimFileRequest> claims() const;
  // NowMicros() when each ClaimFile answer left, in call order (cancelled calls have none).
  std::vector<int64_t> claim_answer_times_us() const;
  // ClaimFile calls the caller cancelled while the fake delayed them.
  int claims_cancelled() const;
  // The `traceparent` metadata of each ClaimFile call ("" when absent or malformed).
  std::vector<std::string> claim_traceparents() const;
  // The `traceparent` metadata of each Write stream, in the order they opened ("" when absent or
  // malformed).
  std::vector<std::string> write_traceparents() const;
  std::vector<v1::Ack> acks() const;
  // Write streams served; write_calls() also counts those refused by SetWriteStatus.
  int streams() const;
  int write_calls() const;
  // Batches received on a stream but not yet acked, at most, over the whole run.
  int max_unacked() const;
  // Files whose last batch was acked.
  std::set<std::string> committed_files() const;
  // Waits until `n` batches were received (total, repeats included).
  bool WaitForReceived(size_t n, absl::Duration timeout) const;

  // Ingest.
  grpc::Status ClaimFile(grpc::ServerContext* context, const v1::ClaimFileRequest* request,
                         v1::ClaimFileResponse* response) override;
  grpc::Status Write(grpc::ServerContext* context, grpc::ServerReaderWriter<v1::Ack, v1::Batch>* stream) override;

 private:
  v1::Ack MakeAck(const v1::Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  std::map<std::string, std::pair<v1::ClaimFileResponse, int>> claim_responses_ ABSL_GUARDED_BY(mu_);
  grpc::Status claim_status_ ABSL_GUARDED_BY(mu_);
  absl::Duration claim_delay_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> claim_answer_times_us_ ABSL_GUARDED_BY(mu_);
  int claims_cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status write_status_ ABSL_GUARDED_BY(mu_);
  bool hold_acks_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration ack_delay_ ABSL_GUARDED_BY(mu_);
  int drop_after_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> rejected_files_ ABSL_GUARDED_BY(mu_);
  bool bogus_ack_ ABSL_GUARDED_BY(mu_) = false;
  int swallow_streams_ ABSL_GUARDED_BY(mu_) = 0;
  int claims_issued_ ABSL_GUARDED_BY(mu_) = 0;

  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ClaimFileRequest> claims_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> claim_traceparents_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> write_traceparents_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Ack> acks_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<std::string, int64_t>> committed_batches_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> committed_files_ ABSL_GUARDED_BY(mu_);
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  int write_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int unacked_now_ ABSL_GUARDED_BY(mu_) = 0;
  int max_unacked_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ecomstream::processor::testing

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_TESTING_FAKE_WRITER_H_

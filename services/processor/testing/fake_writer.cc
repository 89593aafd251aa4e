#include "services/processor/testing/fake_writer.h"

#include <algorithm>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/time_util.h"
#include "common/trace_context.h"
#include "services/processor/writer_client.h"

namespace ecomstream::processor::testing {

FakeWriter::FakeWriter() = default;

FakeWriter::~FakeWriter() { Stop(); }

void FakeWriter::Start() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port_), grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port_);
}

void FakeWriter::Stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now());  // cancels every call now
  server_->Wait();
  server_.reset();
}

void FakeWriter::Restart() {
  Stop();
  Start();
}

std::shared_ptr<grpc::Channel> FakeWriter::NewChannel() const {
  return *MakeWriterChannel(address_, TlsFiles{}, absl::Milliseconds(100));
}

void FakeWriter::SetClaimResponse(const std::string& file_name, v1::ClaimFileResponse response, int times) {
  absl::MutexLock lock(&mu_);
  claim_responses_[file_name] = {std::move(response), times};
}

void FakeWriter::SetClaimDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  claim_delay_ = delay;
}

void FakeWriter::SetClaimStatus(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  claim_status_ = std::move(status);
}

void FakeWriter::SetWriteStatus(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  write_status_ = std::move(status);
}

void FakeWriter::HoldAcks(bool hold) {
  absl::MutexLock lock(&mu_);
  hold_acks_ = hold;
}

void FakeWriter::SetAckDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  ack_delay_ = delay;
}

void FakeWriter::DropStreamAfter(int batches) {
  absl::MutexLock lock(&mu_);
  drop_after_ = batches;
}

void FakeWriter::RejectFile(const std::string& file_name) {
  absl::MutexLock lock(&mu_);
  rejected_files_.insert(file_name);
}

void FakeWriter::SendBogusAck() {
  absl::MutexLock lock(&mu_);
  bogus_ack_ = true;
}

void FakeWriter::SwallowStreams(int streams) {
  absl::MutexLock lock(&mu_);
  swallow_streams_ = streams;
}

std::vector<FakeWriter::Received> FakeWriter::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

std::vector<v1::ClaimFileRequest> FakeWriter::claims() const {
  absl::MutexLock lock(&mu_);
  return claims_;
}

std::vector<int64_t> FakeWriter::claim_answer_times_us() const {
  absl::MutexLock lock(&mu_);
  return claim_answer_times_us_;
}

int FakeWriter::claims_cancelled() const {
  absl::MutexLock lock(&mu_);
  return claims_cancelled_;
}

std::vector<std::string> FakeWriter::claim_traceparents() const {
  absl::MutexLock lock(&mu_);
  return claim_traceparents_;
}

std::vector<std::string> FakeWriter::write_traceparents() const {
  absl::MutexLock lock(&mu_);
  return write_traceparents_;
}

std::vector<v1::Ack> FakeWriter::acks() const {
  absl::MutexLock lock(&mu_);
  return acks_;
}

int FakeWriter::streams() const {
  absl::MutexLock lock(&mu_);
  return streams_;
}

int FakeWriter::write_calls() const {
  absl::MutexLock lock(&mu_);
  return write_calls_;
}

int FakeWriter::max_unacked() const {
  absl::MutexLock lock(&mu_);
  return max_unacked_;
}

std::set<std::string> FakeWriter::committed_files() const {
  absl::MutexLock lock(&mu_);
  return committed_files_;
}

bool FakeWriter::WaitForReceived(size_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return received_.size() >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

grpc::Status FakeWriter::ClaimFile(grpc::ServerContext* context, const v1::ClaimFileRequest* request,
                                   v1::ClaimFileResponse* response) {
  absl::MutexLock lock(&mu_);
  claims_.push_back(*request);
  claim_traceparents_.push_back(tracing::ExtractTraceparent(*context).ToTraceparent());
  const absl::Time answer_at = absl::Now() + claim_delay_;
  while (absl::Now() < answer_at) {
    if (context->IsCancelled()) {
      ++claims_cancelled_;
      return grpc::Status::CANCELLED;
    }
    mu_.Unlock();
    absl::SleepFor(absl::Milliseconds(1));
    mu_.Lock();
  }
  claim_answer_times_us_.push_back(NowMicros());
  if (!claim_status_.ok()) return claim_status_;
  auto it = claim_responses_.find(request->file_name());
  if (it != claim_responses_.end() && it->second.second != 0) {
    *response = it->second.first;
    if (it->second.second > 0) --it->second.second;
    return grpc::Status::OK;
  }
  response->set_outcome(v1::ClaimFileResponse::OUTCOME_CLAIMED);
  response->set_claim_token(absl::StrCat("token-", ++claims_issued_));
  return grpc::Status::OK;
}

v1::Ack FakeWriter::MakeAck(const v1::Batch& batch) {
  v1::Ack ack;
  ack.set_file_id(batch.file_id());
  ack.set_first_row(batch.first_row());
  ack.set_last_row(batch.last_row());
  // Committed now; a repeat of a committed batch changes nothing.
  if (!committed_batches_.insert({batch.file_id(), batch.first_row()}).second) {
    ack.set_already_committed(true);
  } else {
    ack.set_inserted(batch.events_size());
    ack.set_dead_lettered(batch.dead_letters_size());
    ack.set_duplicates(batch.duplicate_rows());
  }
  if (batch.last_batch()) {
    ack.set_file_committed(true);
    committed_files_.insert(batch.file_name());
  }
  ack.set_commit_time_us(NowMicros());
  return ack;
}

grpc::Status FakeWriter::Write(grpc::ServerContext* context, grpc::ServerReaderWriter<v1::Ack, v1::Batch>* stream) {
  int stream_no;
  bool swallow;
  {
    absl::MutexLock lock(&mu_);
    ++write_calls_;
    if (!write_status_.ok()) return write_status_;
    stream_no = ++streams_;
    write_traceparents_.push_back(tracing::ExtractTraceparent(*context).ToTraceparent());
    swallow = swallow_streams_ > 0;
    if (swallow) --swallow_streams_;
  }
  std::deque<v1::Batch> pending;  // guarded by mu_
  bool reading_done = false;      // guarded by mu_
  bool abort = false;             // guarded by mu_

  std::thread acker([&] {
    for (;;) {
      v1::Ack ack;
      bool bogus = false;
      absl::Duration delay;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return abort || (reading_done && pending.empty()) || (!pending.empty() && !hold_acks_ && !swallow);
        };
        while (!mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(10))) {
          if (context->IsCancelled()) return;
        }
        if (abort || pending.empty()) return;
        ack = MakeAck(pending.front());
        pending.pop_front();
        --unacked_now_;  // issued: the client may send the next batch as soon as it reads this
        bogus = bogus_ack_;
        bogus_ack_ = false;
        delay = ack_delay_;
      }
      if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
      if (bogus) {
        v1::Ack stray;
        stray.set_file_id("sha256:not-a-batch-of-yours");
        stray.set_first_row(7);
        stray.set_last_row(9);
        stream->Write(stray);
      }
      const bool written = stream->Write(ack);
      absl::MutexLock lock(&mu_);
      if (!written) return;
      acks_.push_back(ack);
    }
  });

  grpc::Status result = grpc::Status::OK;
  v1::Batch batch;
  while (stream->Read(&batch)) {
    absl::MutexLock lock(&mu_);
    received_.push_back(Received{batch, stream_no, NowMicros()});
    if (rejected_files_.count(batch.file_name()) > 0) {
      result = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the test refuses this file");
      break;
    }
    pending.push_back(batch);
    max_unacked_ = std::max(max_unacked_, ++unacked_now_);
    if (drop_after_ > 0 && --drop_after_ == 0) {
      result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream dropped by the test");
      break;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    reading_done = true;
    if (!result.ok()) abort = true;
  }
  acker.join();
  absl::MutexLock lock(&mu_);
  unacked_now_ -= static_cast<int>(pending.size());  // never acked: the stream is over
  return result;
}

}  // namespace ecomstream::processor::testing

// WriterClient against a real gRPC server on 127.0.0.1 (the FakeWriter).
#include "services/processor/writer_client.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/testing/fake_writer.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::FakeWriter;

constexpr absl::Duration kWait = absl::Seconds(20);
constexpr absl::Duration kPoll = absl::Milliseconds(2);

std::unique_ptr<OwnedBatch> MakeBatch(const std::string& file, int64_t first, int64_t last, bool last_batch = false) {
  auto owned = std::make_unique<OwnedBatch>();
  v1::Batch& b = owned->batch();
  b.set_file_id("sha256:" + file);
  b.set_file_name(file);
  b.set_first_row(first);
  b.set_last_row(last);
  b.set_last_batch(last_batch);
  b.set_claim_token("token");
  for (int64_t row = first; row <= last; ++row) b.add_events()->set_source_row(row);
  owned->estimated_bytes = 100;
  return owned;
}

class RecordingHandler : public AckHandler {
 public:
  void OnAck(const OwnedBatch& owned, const v1::Ack& ack) override {
    const v1::Batch& batch = owned.batch();
    absl::MutexLock lock(&mu_);
    acked_.push_back(absl::StrCat(batch.file_name(), ":", batch.first_row(), "-", batch.last_row()));
  }
  void OnFileRejected(const std::string& file_id, const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    rejected_.push_back(absl::StrCat(file_id, " ", absl::StatusCodeToString(status.code())));
  }
  std::vector<std::string> acked() const {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  std::vector<std::string> rejected() const {
    absl::MutexLock lock(&mu_);
    return rejected_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> acked_;
  std::vector<std::string> rejected_;
};

class WriterClientTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_.Start(); }
  void TearDown() override {
    if (client_ != nullptr) client_->Stop();
    fake_.Stop();
  }
  WriterClient& Client(int max_in_flight = 8, absl::Duration ack_timeout = absl::Seconds(30)) {
    WriterClientOptions options;
    options.max_in_flight = max_in_flight;
    options.rpc_timeout = absl::Seconds(5);
    options.ack_timeout = ack_timeout;
    options.backoff = BackoffOptions{absl::Milliseconds(5), absl::Milliseconds(40), 2.0};
    options.breaker = CircuitBreakerOptions{3, absl::Milliseconds(300)};
    client_ = std::make_unique<WriterClient>(fake_.NewChannel(), options, &handler_, &metrics_);
    client_->Start();
    return *client_;
  }
  bool AckedCount(size_t n) {
    return WaitUntil([&] { return handler_.acked().size() >= n; }, kWait, kPoll);
  }
  std::vector<std::string> ReceivedOnStream(int stream) {
    std::vector<std::string> out;
    for (const FakeWriter::Received& r : fake_.received()) {
      if (r.stream == stream) out.push_back(absl::StrCat(r.batch.first_row(), "-", r.batch.last_row()));
    }
    return out;
  }

  FakeWriter fake_;
  RecordingHandler handler_;
  metrics::Registry registry_;
  ProcessorMetrics metrics_{registry_};
  std::unique_ptr<WriterClient> client_;
};

TEST_F(WriterClientTest, DeliversBatchesInOrderAndHandsEachAckToTheHandler) {
  WriterClient& client = Client();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.Send(MakeBatch("a.csv", 10 * i + 1, 10 * i + 10, i == 4)).ok());
  ASSERT_TRUE(AckedCount(5));
  EXPECT_THAT(handler_.acked(), ElementsAre("a.csv:1-10", "a.csv:11-20", "a.csv:21-30", "a.csv:31-40", "a.csv:41-50"));
  EXPECT_THAT(ReceivedOnStream(1), ElementsAre("1-10", "11-20", "21-30", "31-40", "41-50"));
  EXPECT_TRUE(client.WaitForAcks(absl::Seconds(1)));
  const WriterClient::Stats stats = client.stats();
  EXPECT_EQ(stats.batches_sent, 5);
  EXPECT_EQ(stats.batches_acked, 5);
  EXPECT_EQ(stats.batches_resent, 0);
  EXPECT_EQ(stats.in_flight, 0);
  EXPECT_EQ(fake_.streams(), 1);  // one long-lived stream
  EXPECT_EQ(metrics_.batches_acked.Value(), 5);
  EXPECT_EQ(metrics_.acked_inserted.Value(), 50);
  EXPECT_EQ(metrics_.in_flight_batches.Value(), 0);
  EXPECT_EQ(metrics_.in_flight_bytes.Value(), 0);
}

TEST_F(WriterClientTest, TheWriteStreamIsOpenBeforeTheFirstBatchAndCarriesIt) {
  WriterClient& client = Client();
  ASSERT_TRUE(WaitUntil([&] { return fake_.streams() == 1; }, kWait, kPoll));  // nothing sent yet
  EXPECT_EQ(client.stats().batches_sent, 0);
  ASSERT_TRUE(client.Send(MakeBatch("a.csv", 1, 5, true)).ok());
  ASSERT_TRUE(AckedCount(1));
  EXPECT_THAT(ReceivedOnStream(1), ElementsAre("1-5"));
  EXPECT_EQ(fake_.streams(), 1);
  // Opened for no batch: no batch's context in its metadata.
  EXPECT_THAT(fake_.write_traceparents(), ElementsAre(""));
  EXPECT_EQ(client.stats().stream_failures, 0);
}

TEST_F(WriterClientTest, AStreamRefusedBeforeAnyBatchIsNoFailureAndTheFirstBatchOpensAnother) {
  fake_.SetWriteStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "database down"));
  WriterClient& client = Client();
  ASSERT_TRUE(WaitUntil([&] { return fake_.write_calls() == 1; }, kWait, kPoll));
  absl::SleepFor(absl::Milliseconds(200));  // room for retries (the backoff is 5-40 ms), were there any
  EXPECT_EQ(fake_.write_calls(), 1);  // not retried while there is nothing to send
  EXPECT_EQ(client.stats().stream_failures, 0);
  EXPECT_EQ(metrics_.writer_client.failed.Value(), 0);
  EXPECT_EQ(client.breaker_state(), CircuitBreaker::State::kClosed);

  fake_.SetWriteStatus(grpc::Status::OK);
  ASSERT_TRUE(client.Send(MakeBatch("a.csv", 1, 5, true)).ok());
  ASSERT_TRUE(AckedCount(1));
  EXPECT_THAT(ReceivedOnStream(1), ElementsAre("1-5"));
  EXPECT_EQ(fake_.write_calls(), 2);
  EXPECT_EQ(client.stats().stream_failures, 0);
}

TEST_F(WriterClientTest, WindowBoundsUnackedBatchesAndBlocksTheSender) {
  fake_.HoldAcks(true);
  WriterClient& client = Client(/*max_in_flight=*/3);
  std::atomic<int> queued{0};
  std::thread sender([&] {
    for (int i = 0; i < 10; ++i) {
      if (!client.Send(MakeBatch("a.csv", i + 1, i + 1, i == 9)).ok()) return;
      ++queued;
    }
  });
  ASSERT_TRUE(fake_.WaitForReceived(3, kWait));
  ASSERT_TRUE(WaitUntil([&] { return queued.load() == 3; }, kWait, kPoll));
  // The writer holds its acks: nothing more may be queued or sent.
  EXPECT_FALSE(fake_.WaitForReceived(4, absl::Milliseconds(200)));
  EXPECT_EQ(queued.load(), 3);
  EXPECT_EQ(client.stats().in_flight, 3);
  EXPECT_EQ(metrics_.in_flight_batches.Value(), 3);
  EXPECT_EQ(metrics_.in_flight_bytes.Value(), 300);  // MakeBatch estimates 100 bytes each
  fake_.HoldAcks(false);
  sender.join();
  ASSERT_TRUE(AckedCount(10));
  EXPECT_LE(fake_.max_unacked(), 3);
  EXPECT_EQ(client.stats().max_in_flight_seen, 3);
}

TEST_F(WriterClientTest, UnackedBatchesAreResentInOrderAfterTheStreamDrops) {
  fake_.HoldAcks(true);
  fake_.DropStreamAfter(2);
  WriterClient& client = Client(/*max_in_flight=*/4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client.Send(MakeBatch("a.csv", i + 1, i + 1, i == 3)).ok());
  ASSERT_TRUE(WaitUntil([&] { return fake_.streams() >= 2; }, kWait, kPoll));
  fake_.HoldAcks(false);
  ASSERT_TRUE(AckedCount(4));
  EXPECT_THAT(handler_.acked(), ElementsAre("a.csv:1-1", "a.csv:2-2", "a.csv:3-3", "a.csv:4-4"));
  EXPECT_THAT(ReceivedOnStream(1), ::testing::IsSupersetOf({"1-1", "2-2"}));
  EXPECT_THAT(ReceivedOnStream(2), ElementsAre("1-1", "2-2", "3-3", "4-4"));
  EXPECT_GE(client.stats().batches_resent, 2);
  EXPECT_EQ(metrics_.stream_reconnects.Value(), 1);
}

TEST_F(WriterClientTest, ARestartedWriterGetsTheUnackedBatchesAgainOnANewConnection) {
  fake_.HoldAcks(true);
  WriterClient& client = Client();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.Send(MakeBatch("a.csv", i + 1, i + 1)).ok());
  ASSERT_TRUE(fake_.WaitForReceived(3, kWait));
  fake_.Restart();  // the connection drops with three batches unacknowledged
  fake_.HoldAcks(false);
  ASSERT_TRUE(AckedCount(3));
  EXPECT_THAT(handler_.acked(), ElementsAre("a.csv:1-1", "a.csv:2-2", "a.csv:3-3"));
  EXPECT_EQ(client.stats().batches_resent, 3);
  // The fake records an ack once its Write returns, which may be after the client has read it.
  ASSERT_TRUE(WaitUntil([&] { return fake_.acks().size() >= 3; }, kWait, kPoll));
  EXPECT_EQ(fake_.acks().size(), 3u);
}

TEST_F(WriterClientTest, CircuitBreakerOpensWhileTheWriterFailsAndClosesWhenItRecovers) {
  fake_.SetWriteStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "database down"));
  WriterClient& client = Client();
  ASSERT_TRUE(client.Send(MakeBatch("a.csv", 1, 5, true)).ok());
  ASSERT_TRUE(WaitUntil([&] { return client.breaker_state() == CircuitBreaker::State::kOpen; }, kWait, kPoll));
  EXPECT_EQ(metrics_.circuit_open.Value(), 1);
  EXPECT_FALSE(client.Ready());
  // While open, ClaimFile fails fast without reaching the writer.
  v1::ClaimFileRequest request;
  request.set_file_name("b.csv");
  const size_t claims_before = fake_.claims().size();
  absl::StatusOr<v1::ClaimFileResponse> claim = client.ClaimFile(request, tracing::TraceContext());
  EXPECT_EQ(claim.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(claim.status().message(), HasSubstr("circuit breaker open"));
  EXPECT_EQ(fake_.claims().size(), claims_before);

  fake_.SetWriteStatus(grpc::Status::OK);
  ASSERT_TRUE(AckedCount(1));
  ASSERT_TRUE(WaitUntil([&] { return client.breaker_state() == CircuitBreaker::State::kClosed; }, kWait, kPoll));
  EXPECT_EQ(metrics_.circuit_open.Value(), 0);
  EXPECT_GE(metrics_.circuit_opened.Value(), 1);
  EXPECT_THAT(handler_.acked(), ElementsAre("a.csv:1-5"));
  EXPECT_TRUE(client.ClaimFile(request, tracing::TraceContext()).ok());
}

TEST_F(WriterClientTest, ARefusedFileLeavesTheWindowAndOtherFilesCarryOn) {
  fake_.HoldAcks(true);
  fake_.RejectFile("bad.csv");
  WriterClient& client = Client();
  ASSERT_TRUE(client.Send(MakeBatch("bad.csv", 1, 10)).ok());
  ASSERT_TRUE(client.Send(MakeBatch("good.csv", 1, 10, true)).ok());
  EXPECT_EQ(metrics_.in_flight_bytes.Value(), 200);
  fake_.HoldAcks(false);
  ASSERT_TRUE(AckedCount(1));
  EXPECT_THAT(handler_.acked(), ElementsAre("good.csv:1-10"));
  EXPECT_THAT(handler_.rejected(), ElementsAre("sha256:bad.csv INVALID_ARGUMENT"));
  EXPECT_EQ(client.Send(MakeBatch("bad.csv", 11, 20)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(client.stats().batches_rejected, 1);
  client.ClearRejection("sha256:bad.csv");
  EXPECT_TRUE(client.WaitForAcks(absl::Seconds(5)));
  EXPECT_EQ(metrics_.in_flight_bytes.Value(), 0);  // the refused batch's bytes left with it
}

TEST_F(WriterClientTest, AnAckThatMatchesNoBatchIsIgnored) {
  fake_.SendBogusAck();
  WriterClient& client = Client();
  ASSERT_TRUE(client.Send(MakeBatch("a.csv", 1, 3, true)).ok());
  ASSERT_TRUE(AckedCount(1));
  EXPECT_TRUE(client.WaitForAcks(absl::Seconds(5)));
  EXPECT_THAT(handler_.acked(), ElementsAre("a.csv:1-3"));
  EXPECT_EQ(client.stats().unexpected_acks, 1);
  EXPECT_EQ(metrics_.unexpected_acks.Value(), 1);
}

TEST_F(WriterClientTest, ASilentWriterHitsTheAckTimeoutAndTheBatchIsResent) {
  fake_.SwallowStreams(1);
  WriterClient& client = Client(8, /*ack_timeout=*/absl::Milliseconds(200));
  ASSERT_TRUE(client.Send(MakeBatch("a.csv", 1, 3, true)).ok());
  ASSERT_TRUE(AckedCount(1));
  EXPECT_THAT(ReceivedOnStream(1), ElementsAre("1-3"));
  EXPECT_THAT(ReceivedOnStream(2), ElementsAre("1-3"));
  EXPECT_EQ(client.stats().batches_resent, 1);
  EXPECT_THAT(handler_.acked(), ElementsAre("a.csv:1-3"));
}

TEST_F(WriterClientTest, ClaimFileCarriesTheRequestAndTheTraceparent) {
  v1::ClaimFileResponse resume;
  resume.set_outcome(v1::ClaimFileResponse::OUTCOME_RESUME);
  resume.set_resume_after_row(40);
  resume.set_claim_token("t-9");
  fake_.SetClaimResponse("a.csv", resume);
  WriterClient& client = Client();
  v1::ClaimFileRequest request;
  request.set_file_id("sha256:aa");
  request.set_file_name("a.csv");
  request.set_claimant("host:1:abc");
  const tracing::TraceContext trace(tracing::NewTraceId(), tracing::NewSpanId(), 1);
  absl::StatusOr<v1::ClaimFileResponse> claim = client.ClaimFile(request, trace);
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(claim->outcome(), v1::ClaimFileResponse::OUTCOME_RESUME);
  EXPECT_EQ(claim->resume_after_row(), 40);
  ASSERT_EQ(fake_.claims().size(), 1u);
  EXPECT_EQ(fake_.claims()[0].claimant(), "host:1:abc");
  EXPECT_THAT(fake_.claim_traceparents(), ElementsAre(trace.ToTraceparent()));
}

TEST_F(WriterClientTest, ClaimFileAnswersOutsideTheContractAreInternalErrors) {
  v1::ClaimFileResponse odd;
  odd.set_outcome(static_cast<v1::ClaimFileResponse::Outcome>(42));
  fake_.SetClaimResponse("odd.csv", odd);
  v1::ClaimFileResponse negative;
  negative.set_outcome(v1::ClaimFileResponse::OUTCOME_RESUME);
  negative.set_resume_after_row(-5);
  fake_.SetClaimResponse("negative.csv", negative);
  v1::ClaimFileResponse unspecified;
  fake_.SetClaimResponse("unspecified.csv", unspecified);
  WriterClient& client = Client();
  for (const char* name : {"odd.csv", "negative.csv", "unspecified.csv"}) {
    v1::ClaimFileRequest request;
    request.set_file_name(name);
    EXPECT_EQ(client.ClaimFile(request, tracing::TraceContext()).status().code(), absl::StatusCode::kInternal)
        << name;
  }
  fake_.SetClaimStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad claimant"));
  EXPECT_EQ(client.ClaimFile(v1::ClaimFileRequest(), tracing::TraceContext()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.breaker_state(), CircuitBreaker::State::kClosed);  // the writer answered
}

TEST_F(WriterClientTest, AStartedClaimIsOnItsWayWhileTheCallerWorksAndWaitGivesTheAnswer) {
  fake_.SetClaimDelay(absl::Milliseconds(300));
  WriterClient& client = Client();
  v1::ClaimFileRequest request;
  request.set_file_name("a.csv");
  request.set_claimant("host:1:abc");
  std::unique_ptr<PendingClaim> claim = client.StartClaimFile(request, tracing::TraceContext());
  // Sent at once: the fake holds the call while the caller goes on.
  ASSERT_TRUE(WaitUntil([&] { return fake_.claims().size() == 1; }, absl::Seconds(10), absl::Milliseconds(1)));
  EXPECT_FALSE(claim->answered());
  EXPECT_EQ(fake_.claims()[0].claimant(), "host:1:abc");
  const absl::StatusOr<v1::ClaimFileResponse>& answer = claim->Wait();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->outcome(), v1::ClaimFileResponse::OUTCOME_CLAIMED);
  EXPECT_EQ(answer->claim_token(), "token-1");
  EXPECT_TRUE(claim->answered());
  EXPECT_EQ(claim->Wait()->claim_token(), "token-1");  // the same answer again, no second call
  EXPECT_EQ(fake_.claims().size(), 1u);
}

TEST_F(WriterClientTest, AStartedClaimDroppedBeforeItsAnswerIsCancelled) {
  fake_.SetClaimDelay(absl::Seconds(30));
  WriterClient& client = Client();
  v1::ClaimFileRequest request;
  request.set_file_name("a.csv");
  std::unique_ptr<PendingClaim> claim = client.StartClaimFile(request, tracing::TraceContext());
  ASSERT_TRUE(WaitUntil([&] { return fake_.claims().size() == 1; }, absl::Seconds(10), absl::Milliseconds(1)));
  claim.reset();
  ASSERT_TRUE(WaitUntil([&] { return fake_.claims_cancelled() == 1; }, absl::Seconds(10), absl::Milliseconds(1)));
  EXPECT_THAT(fake_.claim_answer_times_us(), IsEmpty());
  EXPECT_EQ(client.breaker_state(), CircuitBreaker::State::kClosed);
}

TEST_F(WriterClientTest, StopIntakeDrainsTheWindowThenRefusesBatches) {
  fake_.SetAckDelay(absl::Milliseconds(20));
  WriterClient& client = Client();
  ASSERT_TRUE(client.Send(MakeBatch("a.csv", 1, 1)).ok());
  ASSERT_TRUE(client.Send(MakeBatch("a.csv", 2, 2, true)).ok());
  client.StopIntake();
  EXPECT_EQ(client.Send(MakeBatch("b.csv", 1, 1)).code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(client.WaitForAcks(kWait));
  EXPECT_THAT(handler_.acked(), ElementsAre("a.csv:1-1", "a.csv:2-2"));
}

}  // namespace
}  // namespace ecomstream::processor

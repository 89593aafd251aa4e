// The writer over real gRPC on 127.0.0.1:0, backed by a real PostgreSQL.
#include "services/writer/ingest_service.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/status_server.h"
#include "common/uuid.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/processor/batcher.h"
#include "services/processor/writer_client.h"
#include "services/writer/health_probe.h"
#include "services/writer/pg/pg_connection.h"
#include "services/writer/pg/testing/writer_testing.h"
#include "services/writer/writer_server.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::writer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MakeBatch;
using testing::MakeEvent;
using testing::TestFile;

// Polls `done` for up to 10 s.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

class IngestServiceTest : public testing::WriterDbTest {
 protected:
  void SetUp() override {
    WriterDbTest::SetUp();
    config_.listen_address = "127.0.0.1:0";
    config_.metrics_address = "127.0.0.1:0";
    config_.pg_dsn = writer_dsn_;
    config_.max_message_bytes = 256 << 10;
  }
  void StartServer() {
    PgPoolOptions pool;
    pool.check_interval = absl::Milliseconds(100);
    pool.max_backoff = absl::Milliseconds(300);
    server_ = std::make_unique<WriterServer>(config_, &server_registry_, tracer_.get(), pool);
    ASSERT_TRUE(server_->Start().ok());
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    stub_ = v1::Ingest::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_.reset();
    blockers_.clear();
    WriterDbTest::TearDown();
  }
  bool Serving() { return ProbeHealth(address_, grpc::InsecureChannelCredentials(), absl::Seconds(2)).ok(); }

  grpc::Status ClaimRpc(const v1::ClaimFileRequest& request, v1::ClaimFileResponse* response) {
    grpc::ClientContext context;
    return stub_->ClaimFile(&context, request, response);
  }
  TestFile ClaimOverGrpc(absl::string_view name, absl::string_view claimant = "grpc-processor") {
    const v1::ClaimFileRequest request = testing::MakeClaimRequest(name, claimant);
    v1::ClaimFileResponse response;
    const grpc::Status status = ClaimRpc(request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.outcome(), v1::ClaimFileResponse::OUTCOME_CLAIMED);
    return TestFile{request.file_id(), request.file_name(), response.claim_token()};
  }

  // Sends `batches` on one stream and collects the acks; returns the stream's final status.
  grpc::Status Stream(const std::vector<v1::Batch>& batches, std::vector<v1::Ack>* acks) {
    grpc::ClientContext context;
    auto stream = stub_->Write(&context);
    for (const v1::Batch& batch : batches) {
      if (!stream->Write(batch)) break;
    }
    stream->WritesDone();
    v1::Ack ack;
    while (stream->Read(&ack)) acks->push_back(ack);
    return stream->Finish();
  }

  // Holds `file`'s ledger row from another session until the result is destroyed or committed:
  // a batch of the file waits for it in its commit.
  std::unique_ptr<pqxx::work> LockFileRow(const TestFile& file) {
    auto blocker = PgConnection::Open(owner_dsn_);
    EXPECT_TRUE(blocker.ok()) << blocker.status();
    blockers_.push_back(*std::move(blocker));
    auto lock = std::make_unique<pqxx::work>(*blockers_.back());
    lock->exec_params("SELECT 1 FROM ecomstream.ingest_files WHERE file_id = $1 FOR UPDATE", file.file_id);
    return lock;
  }
  // A batch's transaction waits for a row lock.
  bool ABatchWaitsForALock() {
    return Eventually([&] {
      return Sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'") ==
             "1";
    });
  }
  // The file's batches in the ledger, "first-last" in row order.
  std::string LedgerBatches(const TestFile& file) {
    return Sql(absl::StrCat("SELECT coalesce(string_agg(first_row || '-' || last_row, ',' ORDER BY first_row), '') ",
                            "FROM ecomstream.ingest_batches WHERE file_id = '", file.file_id, "'"));
  }
  // Expires `file`'s lease and has another claimant take it: its old token is refused.
  void LoseLease(const TestFile& file) {
    Sql(absl::StrCat("UPDATE ecomstream.ingest_files SET lease_expires_at = now() - interval '1 second' WHERE file_id = '",
                     file.file_id, "'"));
    v1::ClaimFileResponse taken;
    ASSERT_TRUE(ClaimRpc(testing::MakeClaimRequest(file.name, "another-processor"), &taken).ok());
    ASSERT_EQ(taken.outcome(), v1::ClaimFileResponse::OUTCOME_RESUME);
  }
  // The writer has failed `n` batches with `code` (lower case, e.g. "aborted").
  bool BatchErrors(absl::string_view code, int n) {
    const std::string line = absl::StrCat("ecomstream_writer_batch_errors_total{code=\"", code, "\"} ", n, "\n");
    return Eventually([&] { return absl::StrContains(server_registry_.ExportText(), line); });
  }

  std::vector<std::unique_ptr<PgConnection>> blockers_;
  WriterConfig config_;
  metrics::Registry server_registry_;
  std::unique_ptr<WriterServer> server_;
  std::string address_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
};

TEST_F(IngestServiceTest, AcksEveryBatchInOrderOnlyAfterItsCommit) {
  StartServer();
  const TestFile file = ClaimOverGrpc("grpc.csv");
  grpc::ClientContext context;
  auto stream = stub_->Write(&context);
  for (int b = 0; b < 5; ++b) {
    ASSERT_TRUE(stream->Write(MakeBatch(file, 1 + 2 * b, {MakeEvent(2 * b), MakeEvent(2 * b + 1)}, {}, 0, b == 4)));
    v1::Ack ack;
    ASSERT_TRUE(stream->Read(&ack));
    EXPECT_EQ(ack.first_row(), 1 + 2 * b);
    EXPECT_EQ(ack.inserted(), 2);
    EXPECT_EQ(ack.file_committed(), b == 4);
    // The ack came after COMMIT: another session already sees the batch and its events.
    EXPECT_EQ(Sql(absl::StrCat("SELECT count(*) FROM ecomstream.ingest_batches WHERE first_row = ", 1 + 2 * b)), "1");
    EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), absl::StrCat(2 * (b + 1)));
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(IngestServiceTest, PipelinedBatchesAreAckedInOrder) {
  StartServer();
  const TestFile file = ClaimOverGrpc("pipelined.csv");
  std::vector<v1::Batch> batches;
  for (int b = 0; b < 20; ++b) batches.push_back(MakeBatch(file, 1 + 3 * b, {MakeEvent(b)}, {}, 2));
  std::vector<v1::Ack> acks;
  ASSERT_TRUE(Stream(batches, &acks).ok());
  ASSERT_EQ(acks.size(), 20u);
  for (int b = 0; b < 20; ++b) EXPECT_EQ(acks[b].first_row(), 1 + 3 * b);
  // Replaying the whole stream changes nothing and is acked from the ledger.
  std::vector<v1::Ack> replayed;
  ASSERT_TRUE(Stream(batches, &replayed).ok());
  ASSERT_EQ(replayed.size(), 20u);
  for (const v1::Ack& ack : replayed) EXPECT_TRUE(ack.already_committed());
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "20");
}

// Batches that overlap in the writer (the next one's new events go in while this one commits)
// and share event ids, with now and then a stored event changed to a value the database rejects
// (that batch runs again, rolling back the one begun after it): the result is that of committing
// the batches one by one in row order.
TEST_F(IngestServiceTest, OverlappedBatchesSharingIdsEndAsIfCommittedOneByOne) {
  StartServer();
  const TestFile file = ClaimOverGrpc("overlapped.csv");
  std::map<int64_t, int> quantity_of;  // user id (one per event id) -> the stored version
  std::vector<v1::Batch> batches;
  int64_t row = 1;
  int64_t rejected = 0;
  for (int b = 0; b < 30; ++b) {
    std::vector<v1::Event> events;
    for (int i = 0; i < 6; ++i) {
      v1::Event event = MakeEvent(static_cast<uint64_t>((b * 5 + i * 3) % 16));  // ids repeat across batches
      event.set_quantity(b + 1);
      event.set_total_amount_cents(event.price_cents() * event.quantity());
      if ((b * 7 + i) % 23 == 0 && quantity_of.count(event.user_id()) > 0) {
        event.set_geo_country("zz");  // the CHECK rejects it: dead-lettered, the stored row stays
        ++rejected;
      } else {
        quantity_of[event.user_id()] = b + 1;
      }
      events.push_back(event);
    }
    batches.push_back(MakeBatch(file, row, events, {}, 0, b == 29));
    row += 6;
  }
  std::vector<v1::Ack> acks;
  ASSERT_TRUE(Stream(batches, &acks).ok());
  ASSERT_EQ(acks.size(), 30u);
  int64_t inserted = 0;
  int64_t dead_lettered = 0;
  for (size_t b = 0; b < acks.size(); ++b) {
    EXPECT_EQ(acks[b].first_row(), batches[b].first_row());
    EXPECT_EQ(acks[b].inserted() + acks[b].updated() + acks[b].unchanged() + acks[b].dead_lettered(), 6) << b;
    inserted += acks[b].inserted();
    dead_lettered += acks[b].dead_lettered();
  }
  ASSERT_GT(rejected, 0);
  EXPECT_EQ(dead_lettered, rejected);
  EXPECT_EQ(inserted, static_cast<int64_t>(quantity_of.size()));
  std::string expected;
  for (const auto& [user, quantity] : quantity_of) absl::StrAppend(&expected, expected.empty() ? "" : ",", user, ":", quantity);
  EXPECT_EQ(Sql("SELECT string_agg(user_id || ':' || quantity, ',' ORDER BY user_id) FROM ecomstream.events"), expected);
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.dead_letter_events WHERE reasons = '{database_rejected}'"),
            absl::StrCat(rejected));
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(IngestServiceTest, MalformedBatchEndsTheStreamWithInvalidArgument) {
  StartServer();
  const TestFile file = ClaimOverGrpc("malformed.csv");
  v1::Batch bad = MakeBatch(file, 2, {MakeEvent(2)});
  bad.mutable_events(0)->set_event_id(std::string(15, 'x'));
  v1::Batch never = MakeBatch(file, 3, {MakeEvent(3)});
  std::vector<v1::Ack> acks;
  const grpc::Status status = Stream({MakeBatch(file, 1, {MakeEvent(1)}), bad, never}, &acks);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("event 0 (row 2) has a 15-byte event_id; a UUID is 16 bytes"));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "1");
}

// Received batches are parsed into arenas: bytes that are no Batch end the stream after the
// batches before them, commit nothing after them, and leave the writer serving the next stream.
TEST_F(IngestServiceTest, BytesThatAreNoBatchEndTheStreamAndCommitNothingAfterThem) {
  StartServer();
  const TestFile file = ClaimOverGrpc("garbage.csv");
  grpc::GenericStub generic(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue queue;
  auto call = generic.PrepareCall(&context, "/ecomstream.v1.Ingest/Write", &queue);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  // A good batch, a field 4 (events) whose length runs past the end, another good batch.
  const std::string messages[] = {MakeBatch(file, 1, {MakeEvent(1)}).SerializeAsString(), std::string("\x22\x7f\x01", 3),
                                  MakeBatch(file, 2, {MakeEvent(2)}).SerializeAsString()};
  for (const std::string& message : messages) {
    grpc::Slice slice(message);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    if (!queue.Next(&tag, &ok) || !ok) break;
  }
  call->WritesDone(reinterpret_cast<void*>(3));
  queue.Next(&tag, &ok);
  int acks = 0;
  while (true) {
    grpc::ByteBuffer response;
    call->Read(&response, reinterpret_cast<void*>(4));
    if (!queue.Next(&tag, &ok) || !ok) break;
    v1::Ack ack;
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(response.Dump(&slices).ok());
    std::string bytes;
    for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    ASSERT_TRUE(ack.ParseFromString(bytes));
    EXPECT_EQ(ack.first_row(), 1);
    ++acks;
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(queue.Next(&tag, &ok));
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  // gRPC's callback API reports a message that fails to parse like the end of the client's
  // writes, so the status tells nothing here: the acks and the ledger do.
  EXPECT_EQ(acks, 1);
  EXPECT_EQ(Sql("SELECT string_agg(first_row::text, ',') FROM ecomstream.ingest_batches"), "1");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "1");

  std::vector<v1::Ack> next;
  ASSERT_TRUE(Stream({MakeBatch(file, 2, {MakeEvent(2)}, {}, 0, true)}, &next).ok());
  ASSERT_EQ(next.size(), 1u);
  EXPECT_TRUE(next[0].file_committed());
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "2");
}

// A stream parses each batch into a message kept from its earlier batches: a batch with fewer
// events, no dead letters and its optional fields unset, read into a message that held a full
// batch, is stored with nothing of that batch (every unset field NULL, exact counts).
TEST_F(IngestServiceTest, BatchesParsedIntoReusedMessagesKeepNothingOfTheBatchBefore) {
  StartServer();
  const TestFile file = ClaimOverGrpc("reused.csv");
  grpc::ClientContext context;
  auto stream = stub_->Write(&context);
  int64_t row = 1;
  uint64_t n = 0;
  for (int b = 0; b < 12; ++b) {
    const bool full = b % 2 == 0;
    std::vector<v1::Event> events;
    std::vector<v1::DeadLetter> dead_letters;
    if (full) {
      for (int i = 0; i < 3; ++i) events.push_back(MakeEvent(n++));
      dead_letters.push_back(testing::MakeDeadLetter("x,y", {v1::REJECT_REASON_BAD_PRICE, v1::REJECT_REASON_BAD_COUNTRY}));
      dead_letters.push_back(testing::MakeDeadLetter("z", {v1::REJECT_REASON_WRONG_COLUMN_COUNT}));
    } else {
      v1::Event sparse;
      sparse.set_event_id(MakeEvent(n++).event_id());
      sparse.set_user_id(7);
      sparse.set_event_type(v1::EVENT_TYPE_VIEW);
      sparse.set_event_time_us(1'767'225'600'000'000);
      sparse.set_schema_version(1);
      events.push_back(sparse);
    }
    const v1::Batch batch = MakeBatch(file, row, events, dead_letters, 0, b == 11);
    row = batch.last_row() + 1;
    ASSERT_TRUE(stream->Write(batch));
    v1::Ack ack;
    ASSERT_TRUE(stream->Read(&ack));
    EXPECT_EQ(ack.first_row(), batch.first_row());
    EXPECT_EQ(ack.inserted(), full ? 3 : 1) << "batch " << b;
    EXPECT_EQ(ack.dead_lettered(), full ? 2 : 0) << "batch " << b;
  }
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "24");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE user_id = 7 AND event_type = 'view' AND schema_version = 1 "
                "AND session_id IS NULL AND product_id IS NULL AND category IS NULL AND price IS NULL "
                "AND quantity IS NULL AND total_amount IS NULL AND user_segment IS NULL AND device_type IS NULL "
                "AND browser IS NULL AND geo_country IS NULL AND geo_city IS NULL AND referrer IS NULL "
                "AND campaign_id IS NULL"),
            "6");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE session_id IS NOT NULL AND campaign_id = 'spring-sale'"),
            "18");
  EXPECT_EQ(Sql("SELECT string_agg(dead_lettered::text || '/' || (reason_counts->>'bad_price')::text, ',' "
                "ORDER BY first_row) FROM ecomstream.ingest_batches WHERE dead_lettered > 0"),
            "2/1,2/1,2/1,2/1,2/1,2/1");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_batches WHERE dead_lettered = 0 AND reason_counts = '{}'"), "6");
  EXPECT_EQ(Sql("SELECT string_agg(array_to_string(reasons, '+'), ',' ORDER BY row_number) "
                "FROM ecomstream.dead_letter_events WHERE row_number <= 11"),
            "bad_price+bad_country,wrong_column_count,bad_price+bad_country,wrong_column_count");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.dead_letter_events"), "12");
  EXPECT_EQ(Sql("SELECT state || ' ' || rows || ' ' || inserted || ' ' || dead_lettered FROM ecomstream.ingest_files"),
            "committed 36 24 12");
}

TEST_F(IngestServiceTest, RowCountMismatchAndMissingFileIdAreInvalidArgument) {
  StartServer();
  const TestFile file = ClaimOverGrpc("counts.csv");
  v1::Batch mismatch = MakeBatch(file, 1, {MakeEvent(1)});
  mismatch.set_last_row(10);
  std::vector<v1::Ack> acks;
  grpc::Status status = Stream({mismatch}, &acks);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("row count mismatch: rows 1-10 are 10 rows"));
  v1::Batch anonymous = MakeBatch(file, 1, {MakeEvent(1)});
  anonymous.clear_file_id();
  status = Stream({anonymous}, &acks);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("file_id is missing"));
  EXPECT_TRUE(acks.empty());
}

TEST_F(IngestServiceTest, OversizedBatchIsResourceExhausted) {
  config_.max_message_bytes = 64 << 10;
  StartServer();
  const TestFile file = ClaimOverGrpc("big.csv");
  v1::Event huge = MakeEvent(1);
  huge.set_geo_city(std::string(100 << 10, 'x'));
  std::vector<v1::Ack> acks;
  const grpc::Status status = Stream({MakeBatch(file, 1, {huge})}, &acks);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "0");
}

TEST_F(IngestServiceTest, MalformedClaimIsInvalidArgument) {
  StartServer();
  v1::ClaimFileRequest request = testing::MakeClaimRequest("x.csv", "p");
  request.set_file_id("sha256:not-hex");
  v1::ClaimFileResponse response;
  const grpc::Status status = ClaimRpc(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("is not sha256:<64 lower-case hex digits>"));
}

TEST_F(IngestServiceTest, LostLeaseEndsTheStreamWithAborted) {
  StartServer();
  TestFile file = ClaimOverGrpc("lease.csv", "p1");
  Sql("UPDATE ecomstream.ingest_files SET lease_expires_at = now() - interval '1 second'");
  ClaimOverGrpc("other.csv");  // unrelated
  v1::ClaimFileResponse taken;
  ASSERT_TRUE(ClaimRpc(testing::MakeClaimRequest(file.name, "p2"), &taken).ok());
  EXPECT_EQ(taken.outcome(), v1::ClaimFileResponse::OUTCOME_RESUME);
  std::vector<v1::Ack> acks;
  const grpc::Status status = Stream({MakeBatch(file, 1, {MakeEvent(1)})}, &acks);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(status.error_message(), HasSubstr("lease lost"));
}

TEST_F(IngestServiceTest, HealthIsServingAndMetricsCountRows) {
  StartServer();
  EXPECT_TRUE(Eventually([&] { return Serving(); }));
  EXPECT_TRUE(ProbeReady(absl::StrCat("127.0.0.1:", server_->metrics_port())).ok());
  const TestFile file = ClaimOverGrpc("metrics.csv");
  std::vector<v1::Ack> acks;
  ASSERT_TRUE(Stream({MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)},
                                {testing::MakeDeadLetter("bad", {v1::REJECT_REASON_BAD_PRICE})}, 1)},
                     &acks)
                  .ok());
  const std::string text = server_registry_.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_rows_total{outcome=\"inserted\"} 2"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_rows_total{outcome=\"dead_lettered\"} 1"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_rows_total{outcome=\"duplicate\"} 1"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_dead_letters_total{reason=\"bad_price\"} 1"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_batches_total{result=\"committed\"} 1"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_claims_total{outcome=\"claimed\"} 1"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_commit_latency_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("ecomstream_end_to_end_latency_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_database_up 1"));
}

TEST_F(IngestServiceTest, NotServingWhileTheDatabaseIsUnreachable) {
  config_.pg_dsn = absl::StrCat("host=127.0.0.1 port=", ::ecomstream::testing::FreePort(), " dbname=none");
  StartServer();
  const absl::Status health = ProbeHealth(address_, grpc::InsecureChannelCredentials(), absl::Seconds(2));
  EXPECT_EQ(health.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(health.message()), HasSubstr("NOT_SERVING"));
  EXPECT_EQ(ProbeReady(absl::StrCat("127.0.0.1:", server_->metrics_port())).code(), absl::StatusCode::kUnavailable);
  const v1::ClaimFileRequest request = testing::MakeClaimRequest("x.csv", "p");
  v1::ClaimFileResponse response;
  const grpc::Status claim = ClaimRpc(request, &response);
  EXPECT_EQ(claim.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(claim.error_message(), HasSubstr("database unavailable"));
  std::vector<v1::Ack> acks;
  const grpc::Status write =
      Stream({MakeBatch(TestFile{request.file_id(), request.file_name(), FormatUuid(NewUuidV4())}, 1, {MakeEvent(1)})},
             &acks);
  EXPECT_EQ(write.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(acks.empty());
}

TEST_F(IngestServiceTest, DatabaseWithoutTheSchemaIsNotServing) {
  auto bare = ::ecomstream::testing::SharedPgCluster().CreateDatabase("bare");
  ASSERT_TRUE(bare.ok());
  config_.pg_dsn = *bare;
  StartServer();
  EXPECT_FALSE(Serving());
  const v1::ClaimFileRequest request = testing::MakeClaimRequest("x.csv", "p");
  v1::ClaimFileResponse response;
  const grpc::Status claim = ClaimRpc(request, &response);
  EXPECT_EQ(claim.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(claim.error_message(), HasSubstr("not migrated: run ecomstream-writer --migrate"));
}

TEST_F(IngestServiceTest, DrainCommitsTheInFlightBatchAcksItThenEndsTheStream) {
  StartServer();
  const TestFile file = ClaimOverGrpc("drain.csv");
  // Hold the file's ledger row so the batch's transaction waits mid-flight.
  auto blocker = PgConnection::Open(owner_dsn_);
  ASSERT_TRUE(blocker.ok()) << blocker.status();
  auto lock = std::make_unique<pqxx::work>(**blocker);
  lock->exec("SELECT 1 FROM ecomstream.ingest_files FOR UPDATE");

  grpc::ClientContext context;
  auto stream = stub_->Write(&context);
  ASSERT_TRUE(stream->Write(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)})));
  ASSERT_TRUE(Eventually([&] {
    return Sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'") ==
           "1";
  }));
  bool drained = false;
  std::thread shutdown([&] { drained = server_->Shutdown(absl::Seconds(10)); });
  EXPECT_TRUE(Eventually([&] { return !Serving(); }));  // NOT_SERVING while draining
  lock->commit();  // the batch commits now
  v1::Ack ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.inserted(), 2);
  EXPECT_FALSE(stream->Read(&ack));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  shutdown.join();
  EXPECT_TRUE(drained);
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "2");
}

// Commit lanes: while file A's batch waits for A's ledger row (held by another session), file
// B's batches, sent after A's on the same stream, commit on the other lane and are acked; then
// A's commit in row order.
TEST_F(IngestServiceTest, TwoFilesOnOneStreamCommitAtTheSameTime) {
  config_.commit_lanes = 2;
  StartServer();
  const TestFile a = ClaimOverGrpc("lanes-a.csv");
  const TestFile b = ClaimOverGrpc("lanes-b.csv");
  std::unique_ptr<pqxx::work> lock = LockFileRow(a);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub_->Write(&context);
  ASSERT_TRUE(stream->Write(MakeBatch(a, 1, {MakeEvent(1), MakeEvent(2)})));
  ASSERT_TRUE(stream->Write(MakeBatch(a, 3, {MakeEvent(3), MakeEvent(4)}, {}, 0, true)));
  ASSERT_TRUE(ABatchWaitsForALock());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Write(MakeBatch(b, 1 + i, {MakeEvent(10 + i)}, {}, 0, i == 2)));
  }
  std::vector<std::string> acked;
  v1::Ack ack;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Read(&ack));
    acked.push_back(absl::StrCat(ack.file_id() == b.file_id ? "b:" : "a:", ack.first_row(), "-", ack.last_row()));
  }
  EXPECT_THAT(acked, ElementsAre("b:1-1", "b:2-2", "b:3-3"));
  EXPECT_TRUE(ack.file_committed());
  EXPECT_EQ(LedgerBatches(a), "");  // still waiting
  EXPECT_EQ(LedgerBatches(b), "1-1,2-2,3-3");
  lock->commit();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(stream->Read(&ack));
    acked.push_back(absl::StrCat(ack.file_id() == b.file_id ? "b:" : "a:", ack.first_row(), "-", ack.last_row()));
  }
  EXPECT_THAT(acked, ElementsAre("b:1-1", "b:2-2", "b:3-3", "a:1-2", "a:3-4"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(LedgerBatches(a), "1-2,3-4");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_files WHERE state = 'committed'"), "2");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "7");
}

// One lane is the stream of old: B's batches wait behind A's, and the acks come in send order.
TEST_F(IngestServiceTest, OneLaneCommitsTheStreamsBatchesOneAfterTheOther) {
  config_.commit_lanes = 1;
  StartServer();
  const TestFile a = ClaimOverGrpc("lane-a.csv");
  const TestFile b = ClaimOverGrpc("lane-b.csv");
  std::unique_ptr<pqxx::work> lock = LockFileRow(a);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub_->Write(&context);
  ASSERT_TRUE(stream->Write(MakeBatch(a, 1, {MakeEvent(1)}, {}, 0, true)));
  ASSERT_TRUE(ABatchWaitsForALock());
  ASSERT_TRUE(stream->Write(MakeBatch(b, 1, {MakeEvent(2)})));
  ASSERT_TRUE(stream->Write(MakeBatch(b, 2, {MakeEvent(3)}, {}, 0, true)));
  // Two lanes commit B within milliseconds (the test above); one does not while A waits.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(LedgerBatches(b), "");
  lock->commit();
  std::vector<std::string> acked;
  v1::Ack ack;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(stream->Read(&ack));
    acked.push_back(absl::StrCat(ack.file_id() == b.file_id ? "b:" : "a:", ack.first_row()));
  }
  EXPECT_THAT(acked, ElementsAre("a:1", "b:1", "b:2"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// Many files' batches sent interleaved on one stream with three lanes: each file's batches
// commit in row order (the ledger refuses a batch that does not follow its file's committed
// rows, so a file split over two lanes would end the stream), every batch is acked once.
TEST_F(IngestServiceTest, AFilesBatchesStayInRowOrderWhateverLaneTheyTake) {
  config_.commit_lanes = 3;
  StartServer();
  constexpr int kFiles = 8;
  constexpr int kBatches = 5;
  std::vector<TestFile> files;
  for (int f = 0; f < kFiles; ++f) files.push_back(ClaimOverGrpc(absl::StrCat("interleaved-", f, ".csv")));
  std::vector<v1::Batch> batches;
  for (int b = 0; b < kBatches; ++b) {
    for (int f = 0; f < kFiles; ++f) {
      const uint64_t n = 1000 * f + 2 * b;
      batches.push_back(MakeBatch(files[f], 1 + 2 * b, {MakeEvent(n), MakeEvent(n + 1)}, {}, 0, b == kBatches - 1));
    }
  }
  std::vector<v1::Ack> acks;
  const grpc::Status status = Stream(batches, &acks);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(acks.size(), static_cast<size_t>(kFiles * kBatches));
  std::map<std::string, std::vector<int64_t>> first_rows;
  for (const v1::Ack& ack : acks) {
    EXPECT_FALSE(ack.already_committed());
    EXPECT_EQ(ack.inserted(), 2);
    first_rows[ack.file_id()].push_back(ack.first_row());
  }
  for (const TestFile& file : files) {
    EXPECT_THAT(first_rows[file.file_id], ElementsAre(1, 3, 5, 7, 9)) << file.name;
    EXPECT_EQ(LedgerBatches(file), "1-2,3-4,5-6,7-8,9-10") << file.name;
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_files WHERE state = 'committed'"), absl::StrCat(kFiles));
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), absl::StrCat(2 * kFiles * kBatches));
}

// File A's batch is refused (its lease was lost) while file B's batch waits for B's ledger row on
// the other lane: the stream ends with the refusal only once B's batch has committed and been
// acked; the batch of B read after it is rolled back; the trailing metadata names A.
TEST_F(IngestServiceTest, ARefusalOnOneLaneEndsTheStreamAfterTheOtherLanesCommitAndNamesItsFile) {
  config_.commit_lanes = 2;
  StartServer();
  const TestFile a = ClaimOverGrpc("refused.csv");
  const TestFile b = ClaimOverGrpc("committing.csv");
  LoseLease(a);
  std::unique_ptr<pqxx::work> lock = LockFileRow(b);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub_->Write(&context);
  ASSERT_TRUE(stream->Write(MakeBatch(b, 1, {MakeEvent(1)})));
  ASSERT_TRUE(ABatchWaitsForALock());
  ASSERT_TRUE(stream->Write(MakeBatch(b, 2, {MakeEvent(2)})));
  ASSERT_TRUE(stream->Write(MakeBatch(a, 1, {MakeEvent(3)})));
  ASSERT_TRUE(BatchErrors("aborted", 1));
  EXPECT_EQ(LedgerBatches(b), "");
  lock->commit();
  std::vector<std::string> acked;
  v1::Ack ack;
  while (stream->Read(&ack)) acked.push_back(absl::StrCat(ack.file_id() == b.file_id ? "b:" : "a:", ack.first_row()));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(status.error_message(), HasSubstr("lease lost"));
  EXPECT_THAT(acked, ElementsAre("b:1"));
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto refused = trailers.find(kRefusedFileIdMetadata);
  ASSERT_NE(refused, trailers.end());
  EXPECT_EQ(std::string(refused->second.data(), refused->second.size()), a.file_id);
  EXPECT_EQ(LedgerBatches(b), "1-1");
  EXPECT_EQ(LedgerBatches(a), "");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "1");  // B's second batch rolled back
}

// The processor's WriterClient against the real writer: the refused file is the one the writer
// names, not the oldest unacknowledged batch (B's, begun behind B's batch committing on the other
// lane); B's batches are all acked, the second after it is sent again.
TEST_F(IngestServiceTest, TheProcessorSettlesExactlyTheFileTheWriterRefused) {
  config_.commit_lanes = 2;
  StartServer();
  const TestFile a = ClaimOverGrpc("refused-by-writer.csv");
  const TestFile b = ClaimOverGrpc("acked-by-writer.csv");
  LoseLease(a);
  std::unique_ptr<pqxx::work> lock = LockFileRow(b);

  class Handler : public processor::AckHandler {
   public:
    void OnAck(const processor::OwnedBatch& batch, const v1::Ack& ack) override {
      absl::MutexLock hold(&mu);
      acked.push_back(absl::StrCat(batch.batch().file_name(), ":", ack.first_row(), "-", ack.last_row()));
    }
    void OnFileRejected(const std::string& file_id, const absl::Status& status) override {
      absl::MutexLock hold(&mu);
      rejected.push_back(absl::StrCat(file_id, " ", absl::StatusCodeToString(status.code())));
    }
    absl::Mutex mu;
    std::vector<std::string> acked ABSL_GUARDED_BY(mu);
    std::vector<std::string> rejected ABSL_GUARDED_BY(mu);
  } handler;
  processor::WriterClientOptions options;
  options.backoff = processor::BackoffOptions{absl::Milliseconds(5), absl::Milliseconds(40), 2.0};
  processor::WriterClient client(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()), options, &handler,
                                 nullptr);
  client.Start();
  auto owned = [](v1::Batch batch) {
    auto out = std::make_unique<processor::OwnedBatch>();
    out->batch() = std::move(batch);
    out->estimated_bytes = 100;
    return out;
  };
  ASSERT_TRUE(client.Send(owned(MakeBatch(b, 1, {MakeEvent(1)}))).ok());
  ASSERT_TRUE(ABatchWaitsForALock());
  ASSERT_TRUE(client.Send(owned(MakeBatch(b, 2, {MakeEvent(2)}, {}, 0, true))).ok());
  ASSERT_TRUE(client.Send(owned(MakeBatch(a, 1, {MakeEvent(3)}))).ok());
  ASSERT_TRUE(BatchErrors("aborted", 1));
  // B's first batch commits and is acked; its second, begun behind it, is rolled back when the
  // stream ends: the oldest unacknowledged batch is then B's, the refused one A's.
  lock->commit();
  ASSERT_TRUE(client.WaitForAcks(absl::Seconds(20)));  // B's second batch went again on a new stream
  client.Stop();
  absl::MutexLock hold(&handler.mu);
  EXPECT_THAT(handler.acked, ElementsAre("acked-by-writer.csv:1-1", "acked-by-writer.csv:2-2"));
  EXPECT_THAT(handler.rejected, ElementsAre(absl::StrCat(a.file_id, " ABORTED")));
  EXPECT_EQ(client.stats().batches_rejected, 1);
  EXPECT_EQ(LedgerBatches(b), "1-1,2-2");
  EXPECT_EQ(LedgerBatches(a), "");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "2");
}

// A self-signed certificate for 127.0.0.1 (it is also the CA that signs itself).
void MakeCertificate(const std::string& dir) {
  std::string output;
  ASSERT_EQ(::ecomstream::testing::RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                               "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                                               "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"},
                                              &output),
            0)
      << output;
}

TEST_F(IngestServiceTest, TlsServerRefusesPlaintextAndAnswersTls) {
  const ::ecomstream::testing::TempDir tls("tls");
  const std::string dir = tls.path();
  MakeCertificate(dir);
  config_.tls_cert = dir + "/cert.pem";
  config_.tls_key = dir + "/key.pem";
  ASSERT_TRUE(config_.Validate().ok());
  StartServer();
  auto credentials = ProbeCredentials(config_);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_TRUE(Eventually([&] { return ProbeHealth(address_, *credentials, absl::Seconds(2)).ok(); }));
  EXPECT_FALSE(ProbeHealth(address_, grpc::InsecureChannelCredentials(), absl::Seconds(1)).ok());
}

TEST_F(IngestServiceTest, MutualTlsRequiresAClientCertificate) {
  const ::ecomstream::testing::TempDir tls("mtls");
  const std::string dir = tls.path();
  MakeCertificate(dir);
  config_.tls_cert = dir + "/cert.pem";
  config_.tls_key = dir + "/key.pem";
  config_.tls_client_ca = dir + "/cert.pem";
  StartServer();
  auto with_certificate = ProbeCredentials(config_);
  ASSERT_TRUE(with_certificate.ok()) << with_certificate.status();
  EXPECT_TRUE(Eventually([&] { return ProbeHealth(address_, *with_certificate, absl::Seconds(2)).ok(); }));
  grpc::SslCredentialsOptions anonymous;
  anonymous.pem_root_certs = *ReadPemFile("tls_cert", config_.tls_cert);
  const absl::Status refused = ProbeHealth(address_, grpc::SslCredentials(anonymous), absl::Seconds(2));
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("no health answer"));
}

TEST_F(IngestServiceTest, ReflectionListsTheIngestService) {
  StartServer();
  grpc::GenericStub generic(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::CompletionQueue queue;
  auto call = generic.PrepareCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
  grpc::Slice request_slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&request_slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(queue.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_THAT(bytes, HasSubstr("ecomstream.v1.Ingest"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  context.TryCancel();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  queue.Next(&tag, &ok);
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace ecomstream::writer

// The writer over real gRPC on 127.0.0.1:0, backed by a real PostgreSQL.
#include "services/writer/ingest_service.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_server.h"
#include "common/uuid.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/writer/health_probe.h"
#include "services/writer/pg/pg_connection.h"
#include "services/writer/pg/testing/writer_testing.h"
#include "services/writer/writer_server.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::writer {
namespace {

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

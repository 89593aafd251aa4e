// The database restarts while processors stream: nothing is lost, nothing is acked before its
// COMMIT, health follows the database. Alone in its binary: it stops the shared cluster.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/writer/health_probe.h"
#include "services/writer/pg/testing/writer_testing.h"
#include "services/writer/writer_server.h"

namespace ecomstream::writer {
namespace {

using ::ecomstream::testing::SharedPgCluster;
using testing::MakeBatch;
using testing::MakeEvent;
using testing::Sql;
using testing::TestFile;

constexpr int kFiles = 3;
constexpr int kBatchesPerFile = 10;
constexpr int kRowsPerBatch = 50;

bool Eventually(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

v1::Batch FileBatch(const TestFile& file, int f, int b) {
  std::vector<v1::Event> events;
  for (int i = 0; i < kRowsPerBatch; ++i) events.push_back(MakeEvent((f * kBatchesPerFile + b) * kRowsPerBatch + i));
  return MakeBatch(file, 1 + b * kRowsPerBatch, std::move(events), {}, 0, b == kBatchesPerFile - 1);
}

TEST(WriterRestartTest, DatabaseRestartMidStreamLosesNothingAndNeverAcksWithoutCommit) {
  const std::string owner_dsn = testing::CreateMigratedDatabase("restart");
  WriterConfig config;
  config.listen_address = "127.0.0.1:0";
  config.pg_dsn = testing::LoginDsn(owner_dsn, "ecomstream_writer");
  PgPoolOptions pool;
  pool.check_interval = absl::Milliseconds(100);
  pool.max_backoff = absl::Milliseconds(300);
  metrics::Registry registry;
  std::unique_ptr<tracing::Tracer> tracer = tracing::Tracer::Disabled();
  WriterServer server(config, &registry, tracer.get(), pool);
  ASSERT_TRUE(server.Start().ok());
  const std::string address = absl::StrCat("127.0.0.1:", server.port());
  const auto serving = [&] { return ProbeHealth(address, grpc::InsecureChannelCredentials(), absl::Seconds(1)).ok(); };
  ASSERT_TRUE(Eventually(serving));
  auto stub = v1::Ingest::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  std::atomic<int> acked_batches{0};
  std::atomic<bool> saw_not_serving{false};
  std::thread outage([&] {
    // Stop the database in the middle of the second file, keep it down a while, restart it.
    ASSERT_TRUE(Eventually([&] { return acked_batches.load() >= kBatchesPerFile + 3; }));
    ASSERT_TRUE(SharedPgCluster().Stop().ok());
    saw_not_serving = Eventually([&] { return !serving(); }, absl::Seconds(10));
    absl::SleepFor(absl::Milliseconds(500));
    ASSERT_TRUE(SharedPgCluster().Restart().ok());
  });

  std::map<std::pair<std::string, int64_t>, v1::Ack> acks;  // (file, first_row) -> ack
  int stream_failures = 0;
  for (int f = 0; f < kFiles; ++f) {
    const v1::ClaimFileRequest request = testing::MakeClaimRequest(absl::StrCat("restart-", f, ".csv"), "restart-processor");
    TestFile file{request.file_id(), request.file_name(), ""};
    int next = 0;  // next batch index to send
    while (next < kBatchesPerFile) {
      // Claim (again): RESUME says where the committed rows end.
      v1::ClaimFileResponse claim;
      grpc::ClientContext claim_context;
      const grpc::Status claimed = stub->ClaimFile(&claim_context, request, &claim);
      if (!claimed.ok()) {
        ASSERT_EQ(claimed.error_code(), grpc::StatusCode::UNAVAILABLE) << claimed.error_message();
        absl::SleepFor(absl::Milliseconds(100));
        continue;
      }
      ASSERT_NE(claim.outcome(), v1::ClaimFileResponse::OUTCOME_HELD_BY_OTHER);
      if (claim.outcome() == v1::ClaimFileResponse::OUTCOME_ALREADY_COMMITTED) break;
      ASSERT_EQ(claim.resume_after_row() % kRowsPerBatch, 0);
      next = static_cast<int>(claim.resume_after_row() / kRowsPerBatch);
      file.claim_token = claim.claim_token();

      grpc::ClientContext context;
      auto stream = stub->Write(&context);
      for (; next < kBatchesPerFile; ++next) {
        if (!stream->Write(FileBatch(file, f, next))) break;
        v1::Ack ack;
        if (!stream->Read(&ack)) break;
        ASSERT_EQ(ack.first_row(), 1 + next * kRowsPerBatch);
        acks[{file.file_id, ack.first_row()}] = ack;
        ++acked_batches;
        absl::SleepFor(absl::Milliseconds(20));  // a realistic trickle, so the outage lands mid-file
      }
      stream->WritesDone();
      const grpc::Status status = stream->Finish();
      if (!status.ok()) {
        ++stream_failures;
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
      }
    }
  }
  outage.join();
  EXPECT_TRUE(saw_not_serving) << "health never went NOT_SERVING while the database was down";
  EXPECT_GE(stream_failures, 1) << "the outage did not hit a stream";
  EXPECT_TRUE(serving());

  // Nothing lost, nothing twice: every event once, every file committed, aggregates exact.
  EXPECT_EQ(Sql(owner_dsn, "SELECT count(*) FROM ecomstream.events"), absl::StrCat(kFiles * kBatchesPerFile * kRowsPerBatch));
  EXPECT_EQ(Sql(owner_dsn, "SELECT count(*) FROM ecomstream.ingest_files WHERE state = 'committed'"),
            absl::StrCat(kFiles));
  EXPECT_EQ(Sql(owner_dsn, "SELECT count(*), sum(rows), sum(inserted) FROM ecomstream.ingest_batches"),
            absl::StrCat(kFiles * kBatchesPerFile, "|", kFiles * kBatchesPerFile * kRowsPerBatch, "|",
                         kFiles * kBatchesPerFile * kRowsPerBatch));
  // No ack without a commit: every ack matches its ledger row.
  for (const auto& [key, ack] : acks) {
    EXPECT_EQ(Sql(owner_dsn, absl::StrCat("SELECT last_row, inserted FROM ecomstream.ingest_batches WHERE file_id = '",
                                          key.first, "' AND first_row = ", key.second)),
              absl::StrCat(ack.last_row(), "|", ack.inserted()));
  }
  EXPECT_EQ(Sql(owner_dsn, R"sql(
SELECT count(*) FROM (
  (SELECT date_trunc('hour', event_time, 'UTC'), event_type, category, count(*), coalesce(sum(quantity), 0)
   FROM ecomstream.events GROUP BY 1, 2, 3
   EXCEPT SELECT hour, event_type, category, events, quantity FROM ecomstream.event_stats_hourly)
  UNION ALL
  (SELECT hour, event_type, category, events, quantity FROM ecomstream.event_stats_hourly
   EXCEPT SELECT date_trunc('hour', event_time, 'UTC'), event_type, category, count(*), coalesce(sum(quantity), 0)
   FROM ecomstream.events GROUP BY 1, 2, 3)) drift)sql"),
            "0");
  server.Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace ecomstream::writer

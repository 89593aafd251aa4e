// Which file WriterClient settles when the writer refuses a batch: the one the stream's trailing
// metadata names (the writer commits several files at once), else the oldest unacknowledged
// batch's. Real gRPC on 127.0.0.1 against a writer stand-in that refuses its first stream.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/writer_client.h"

namespace ecomstream::processor {
namespace {

using ::testing::ElementsAre;

// Ends its first Write stream with INVALID_ARGUMENT after reading two batches, with the trailing
// metadata given (if any); acks every batch of later streams.
class RefusingWriter final : public v1::Ingest::Service {
 public:
  explicit RefusingWriter(std::optional<std::string> refused_file_id) : refused_file_id_(std::move(refused_file_id)) {}

  grpc::Status Write(grpc::ServerContext* context, grpc::ServerReaderWriter<v1::Ack, v1::Batch>* stream) override {
    bool refuse;
    {
      absl::MutexLock lock(&mu_);
      refuse = streams_++ == 0;
    }
    v1::Batch batch;
    if (refuse) {
      for (int read = 0; read < 2; ++read) {
        if (!stream->Read(&batch)) return grpc::Status::CANCELLED;
      }
      if (refused_file_id_.has_value()) context->AddTrailingMetadata(kRefusedFileIdMetadata, *refused_file_id_);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "refused");
    }
    while (stream->Read(&batch)) {
      v1::Ack ack;
      ack.set_file_id(batch.file_id());
      ack.set_first_row(batch.first_row());
      ack.set_last_row(batch.last_row());
      ack.set_inserted(batch.last_row() - batch.first_row() + 1);
      if (!stream->Write(ack)) break;
    }
    return grpc::Status::OK;
  }

 private:
  const std::optional<std::string> refused_file_id_;
  absl::Mutex mu_;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
};

class Recorder : public AckHandler {
 public:
  void OnAck(const OwnedBatch& batch, const v1::Ack& ack) override {
    absl::MutexLock lock(&mu_);
    acked_.push_back(absl::StrCat(batch.batch().file_id(), ":", ack.first_row()));
  }
  void OnFileRejected(const std::string& file_id, const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    rejected_.push_back(absl::StrCat(file_id, " ", absl::StatusCodeToString(status.code())));
  }
  std::vector<std::string> acked() {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  std::vector<std::string> rejected() {
    absl::MutexLock lock(&mu_);
    return rejected_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> rejected_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<OwnedBatch> MakeBatch(const std::string& file_id, int64_t row) {
  auto owned = std::make_unique<OwnedBatch>();
  v1::Batch& batch = owned->batch();
  batch.set_file_id(file_id);
  batch.set_file_name(file_id + ".csv");
  batch.set_first_row(row);
  batch.set_last_row(row);
  batch.set_claim_token("token");
  batch.add_events()->set_source_row(row);
  owned->estimated_bytes = 100;
  return owned;
}

// Sends a batch of "older" then one of "newer" to a writer that refuses the first stream with
// `refused_file_id` in its trailing metadata; returns the rejected files, and the acks in `acked`.
std::vector<std::string> RejectedFiles(std::optional<std::string> refused_file_id, std::vector<std::string>* acked) {
  RefusingWriter writer(std::move(refused_file_id));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&writer);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  EXPECT_NE(port, 0);
  Recorder recorder;
  WriterClientOptions options;
  options.backoff = BackoffOptions{absl::Milliseconds(5), absl::Milliseconds(40), 2.0};
  WriterClient client(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()),
                      options, &recorder, nullptr);
  client.Start();
  EXPECT_TRUE(client.Send(MakeBatch("older", 1)).ok());
  EXPECT_TRUE(client.Send(MakeBatch("newer", 1)).ok());
  EXPECT_TRUE(client.WaitForAcks(absl::Seconds(20)));
  client.Stop();
  server->Shutdown();
  *acked = recorder.acked();
  return recorder.rejected();
}

TEST(WriterClientRefusalTest, TheFileTheWriterNamesIsRejectedNotTheOldestBatchs) {
  std::vector<std::string> acked;
  EXPECT_THAT(RejectedFiles("newer", &acked), ElementsAre("newer INVALID_ARGUMENT"));
  EXPECT_THAT(acked, ElementsAre("older:1"));
}

TEST(WriterClientRefusalTest, WithoutTheMetadataTheOldestBatchsFileIsRejected) {
  std::vector<std::string> acked;
  EXPECT_THAT(RejectedFiles(std::nullopt, &acked), ElementsAre("older INVALID_ARGUMENT"));
  EXPECT_THAT(acked, ElementsAre("newer:1"));
}

// A name that matches no unacknowledged batch (a stale or garbled answer, an empty value) cannot
// settle a file the window does not hold: the oldest batch's file is rejected, as without it.
TEST(WriterClientRefusalTest, ANameOfNoBatchInTheWindowFallsBackToTheOldestBatchsFile) {
  for (const std::string& name : {std::string("sha256:not-sent"), std::string(), std::string("OLDER")}) {
    std::vector<std::string> acked;
    EXPECT_THAT(RejectedFiles(name, &acked), ElementsAre("older INVALID_ARGUMENT")) << name;
    EXPECT_THAT(acked, ElementsAre("newer:1")) << name;
  }
}

}  // namespace
}  // namespace ecomstream::processor

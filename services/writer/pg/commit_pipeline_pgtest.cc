// commit_pipeline against a real PostgreSQL: a stream's batches commit in order, each next one
// begun ahead, and a batch that runs again first rolls back the one begun after it.
#include "services/writer/pg/commit_pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "services/writer/pg/testing/writer_testing.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;
using testing::MakeBatch;
using testing::MakeEvent;
using testing::TestFile;

class CommitPipelineTest : public testing::WriterDbTest {
 protected:
  std::unique_ptr<PreparedBatch> Prepared(const v1::Batch& batch) {
    auto prepared = sink_->Prepare(batch);
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    return prepared.ok() ? *std::move(prepared) : nullptr;
  }
  // The pipeline's NextBatch over `queue`, counting the calls.
  std::unique_ptr<PreparedBatch> Next() {
    ++asked_;
    if (queue_.empty()) return nullptr;
    std::unique_ptr<PreparedBatch> next = std::move(queue_.front());
    queue_.pop_front();
    return next;
  }

  std::deque<std::unique_ptr<PreparedBatch>> queue_;
  int asked_ = 0;
};

TEST_F(CommitPipelineTest, CommitsAStreamsBatchesInOrderEachBegunWhileTheOneBeforeCommits) {
  const TestFile file = Claim("pipeline.csv");
  queue_.push_back(Prepared(MakeBatch(file, 3, {MakeEvent(3), MakeEvent(4)})));
  queue_.push_back(Prepared(MakeBatch(file, 5, {MakeEvent(5)}, {}, 0, /*last_batch=*/true)));
  CommitPipeline pipeline(sink_.get());
  auto next = [this] { return Next(); };

  CommitPipeline::Committed first = pipeline.Commit(Prepared(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)})), next);
  ASSERT_TRUE(first.ack.ok()) << first.ack.status();
  EXPECT_EQ(first.ack->first_row(), 1);
  EXPECT_EQ(first.ack->inserted(), 2);
  ASSERT_NE(first.batch, nullptr);
  EXPECT_EQ(first.batch->batch->first_row(), 1) << "the committed batch is handed back";
  EXPECT_EQ(asked_, 1);
  EXPECT_TRUE(pipeline.has_ahead());

  CommitPipeline::Committed second = pipeline.CommitAhead(next);
  ASSERT_TRUE(second.ack.ok()) << second.ack.status();
  EXPECT_EQ(second.ack->first_row(), 3);
  EXPECT_EQ(second.ack->inserted(), 2);
  EXPECT_TRUE(pipeline.has_ahead());

  CommitPipeline::Committed third = pipeline.CommitAhead(next);
  ASSERT_TRUE(third.ack.ok()) << third.ack.status();
  EXPECT_EQ(third.ack->first_row(), 5);
  EXPECT_TRUE(third.ack->file_committed());
  EXPECT_EQ(asked_, 3) << "asked once per commit, the last time for nothing";
  EXPECT_FALSE(pipeline.has_ahead());

  EXPECT_EQ(Sql("SELECT state, committed_through, batches FROM ecomstream.ingest_files"), "committed|5|3");
  EXPECT_THAT(registry_.ExportText(), HasSubstr("ecomstream_writer_fast_path_total{result=\"finished\"} 3\n"));
  EXPECT_EQ(StatsDrift(), "");
}

// Batch A inserts new event 2 and fails its update of event 1 (a CHECK), so it runs again the
// careful way; batch B, begun ahead, also holds new event 2. Unless B is rolled back before A
// runs again, A's insert of event 2 would wait for B, which waits for A to commit: a deadlock
// no database detects. B then commits after A, finding event 2 stored and unchanged.
TEST_F(CommitPipelineTest, ABatchRunningAgainRollsBackTheBatchBegunAheadAndBothCommitInOrder) {
  const TestFile file = Claim("pipeline-rerun.csv");
  ASSERT_TRUE(sink_->Write(MakeBatch(file, 1, {MakeEvent(1)})).ok());
  v1::Event bad_update = MakeEvent(1);
  bad_update.set_geo_country("zz");
  queue_.push_back(Prepared(MakeBatch(file, 4, {MakeEvent(2), MakeEvent(3)}, {}, 0, /*last_batch=*/true)));
  CommitPipeline pipeline(sink_.get());
  auto next = [this] { return Next(); };

  CommitPipeline::Committed a = pipeline.Commit(Prepared(MakeBatch(file, 2, {bad_update, MakeEvent(2)})), next);
  ASSERT_TRUE(a.ack.ok()) << a.ack.status();
  EXPECT_EQ(a.ack->inserted(), 1);
  EXPECT_EQ(a.ack->dead_lettered(), 1);
  ASSERT_TRUE(pipeline.has_ahead());
  CommitPipeline::Committed b = pipeline.CommitAhead(next);
  ASSERT_TRUE(b.ack.ok()) << b.ack.status();
  EXPECT_EQ(b.ack->inserted(), 1);
  EXPECT_EQ(b.ack->unchanged(), 1);

  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "3");
  EXPECT_EQ(Sql("SELECT state, committed_through FROM ecomstream.ingest_files"), "committed|5");
  const std::string text = registry_.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_fast_path_total{result=\"ran_again\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_fast_path_total{result=\"finished\"} 1\n"))
      << "the first Write only: B's second Begin meets the stored event 2 and B commits the careful way";
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(CommitPipelineTest, DroppingTheBatchBegunAheadRollsItsInsertsBack) {
  const TestFile file = Claim("pipeline-drop.csv");
  queue_.push_back(Prepared(MakeBatch(file, 2, {MakeEvent(2), MakeEvent(3)}, {}, 0, /*last_batch=*/true)));
  CommitPipeline pipeline(sink_.get());
  CommitPipeline::Committed first = pipeline.Commit(Prepared(MakeBatch(file, 1, {MakeEvent(1)})), [this] { return Next(); });
  ASSERT_TRUE(first.ack.ok()) << first.ack.status();
  ASSERT_TRUE(pipeline.has_ahead());
  pipeline.DropAhead();
  EXPECT_FALSE(pipeline.has_ahead());
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "1");
  EXPECT_EQ(Sql("SELECT state, committed_through FROM ecomstream.ingest_files"), "claimed|1");
  // Resent, the dropped batch commits whole.
  auto resent = sink_->Write(MakeBatch(file, 2, {MakeEvent(2), MakeEvent(3)}, {}, 0, true));
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(resent->inserted(), 2);
  EXPECT_EQ(StatsDrift(), "");
}

}  // namespace
}  // namespace ecomstream::writer

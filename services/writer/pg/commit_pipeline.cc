#include "services/writer/pg/commit_pipeline.h"

#include <utility>

namespace ecomstream::writer {

CommitPipeline::Committed CommitPipeline::Commit(std::unique_ptr<PreparedBatch> batch, NextBatch next) {
  return Run(std::move(batch), nullptr, next);
}

CommitPipeline::Committed CommitPipeline::CommitAhead(NextBatch next) {
  std::unique_ptr<Ahead> ahead = std::move(ahead_);
  if (ahead->thread.joinable()) ahead->thread.join();  // RollBackAhead may have joined it
  return Run(std::move(ahead->batch), std::move(ahead->begun), next);
}

void CommitPipeline::DropAhead() {
  RollBackAhead();
  ahead_.reset();
}

CommitPipeline::Committed CommitPipeline::Run(std::unique_ptr<PreparedBatch> batch, PgSink::BegunPtr begun,
                                              NextBatch next) {
  if (begun == nullptr) begun = sink_->Begin(*batch);
  if (begun != nullptr) BeginAhead(next);  // this batch's new events are in
  // If this batch runs again, it could wait for the new rows of the one begun after it.
  absl::StatusOr<v1::Ack> ack = sink_->Commit(*batch, std::move(begun), [this] { RollBackAhead(); });
  return Committed{std::move(batch), std::move(ack)};
}

void CommitPipeline::BeginAhead(NextBatch next) {
  std::unique_ptr<PreparedBatch> after = next();
  if (after == nullptr) return;
  ahead_ = std::make_unique<Ahead>();
  ahead_->batch = std::move(after);
  ahead_->thread = std::thread([sink = sink_, ahead = ahead_.get()] { ahead->begun = sink->Begin(*ahead->batch); });
}

void CommitPipeline::RollBackAhead() {
  if (ahead_ == nullptr) return;
  if (ahead_->thread.joinable()) ahead_->thread.join();
  ahead_->begun.reset();
}

}  // namespace ecomstream::writer

#include "services/processor/in_flight_files.h"

#include <utility>

#include "common/log.h"

namespace ecomstream::processor {

void InFlightFiles::Add(const std::string& file_id, InFlightFile file) {
  absl::MutexLock lock(&mu_);
  files_[file_id] = std::move(file);
}

bool InFlightFiles::Contains(const std::string& file_id) const {
  absl::MutexLock lock(&mu_);
  return files_.contains(file_id);
}

bool InFlightFiles::empty() const {
  absl::MutexLock lock(&mu_);
  return files_.empty();
}

bool InFlightFiles::CountSent(const std::string& file_id) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(file_id);
  if (it == files_.end()) return false;
  ++it->second.batches_sent;
  return true;
}

void InFlightFiles::UncountSent(const std::string& file_id) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(file_id);
  if (it != files_.end()) --it->second.batches_sent;
}

std::optional<InFlightFiles::Settled> InFlightFiles::Ack(const OwnedBatch& owned, const v1::Ack& ack) {
  const v1::Batch& batch = owned.batch();
  absl::MutexLock lock(&mu_);
  auto it = files_.find(batch.file_id());
  if (it == files_.end()) return std::nullopt;
  InFlightFile& file = it->second;
  ++file.batches_acked;
  file.counts.Add(owned.counts);
  file.inserted += ack.inserted();
  file.updated += ack.updated();
  file.unchanged += ack.unchanged();
  file.dead_lettered += ack.dead_lettered();
  file.duplicates += ack.duplicates();
  Left how;
  if (batch.last_batch()) {
    file.span.SetAttribute("rows", batch.total_file_rows());  // counted by the load
    how = ack.file_committed() ? Left::kCommitted : Left::kNotCommitted;
  } else if (file.abandoned && file.batches_acked >= file.batches_sent) {
    how = Left::kAbandoned;  // its span has the status set when it was abandoned
  } else {
    return std::nullopt;
  }
  Settled settled{how, std::move(file)};
  files_.erase(it);
  return settled;
}

std::optional<InFlightFile> InFlightFiles::Abandon(const std::string& file_id, const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(file_id);
  if (it == files_.end()) return std::nullopt;
  it->second.abandoned = true;
  it->second.span.SetStatus(why);
  if (it->second.batches_acked < it->second.batches_sent) return std::nullopt;
  InFlightFile released = std::move(it->second);
  files_.erase(it);
  return released;
}

std::optional<InFlightFile> InFlightFiles::Remove(const std::string& file_id) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(file_id);
  if (it == files_.end()) return std::nullopt;
  InFlightFile removed = std::move(it->second);
  files_.erase(it);
  return removed;
}

void InFlightFiles::EndSpans() {
  absl::MutexLock lock(&mu_);
  for (auto& [file_id, file] : files_) {
    if (!file.abandoned) file.span.SetStatus(absl::CancelledError("stopped before the file was committed"));
    file.span.End();
  }
}

void LogCommitted(const InFlightFile& file, const std::string& to, const std::string& trace_id, int64_t now_us) {
  const RowCounts& c = file.counts;
  LOG_INFO("File committed") << Kv("file", file.name) << Kv("rows", c.rows) << Kv("events", c.events)
                             << Kv("dead_letters", c.dead_letters) << Kv("duplicates", c.duplicates)
                             << Kv("late", c.late) << Kv("inserted", file.inserted) << Kv("updated", file.updated)
                             << Kv("unchanged", file.unchanged) << Kv("batches", file.batches_acked)
                             << Kv("resumed_after_row", file.resume_after_row) << Kv("reasons", c.ReasonSummary())
                             << Kv("read_to_commit_ms", (now_us - file.started_us) / 1000)
                             << Kv("drop_to_commit_ms", (now_us - file.drop_time_us) / 1000)
                             << Kv("trace_id", trace_id) << Kv("to", to);
}

absl::Status CountingSink::Send(std::unique_ptr<OwnedBatch> batch) {
  if (!files_->CountSent(file_id_)) return absl::AbortedError("the file was released (refused)");
  absl::Status status = writer_->Send(std::move(batch));
  if (!status.ok()) files_->UncountSent(file_id_);
  return status;
}

}  // namespace ecomstream::processor

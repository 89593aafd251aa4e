#include "services/processor/file_queue.h"

#include <algorithm>
#include <random>

#include "absl/time/clock.h"
#include "common/log.h"
#include "common/time_util.h"

namespace ecomstream::processor {
namespace {

constexpr absl::Duration kMaxFileRetry = absl::Minutes(10);

}  // namespace

FileQueue::FileQueue(FileQueueOptions options, ProcessorMetrics* metrics)
    : options_(options),
      metrics_(metrics),
      retry_(BackoffOptions{options_.first_retry, kMaxFileRetry, 2.0}, std::random_device{}()) {}

void FileQueue::StartOnce(const std::vector<DiscoveredFile>& present) {
  absl::MutexLock lock(&mu_);
  for (const DiscoveredFile& file : present) once_open_.insert(file.name);
}

void FileQueue::Merge(const std::vector<DiscoveredFile>& files) {
  absl::MutexLock lock(&mu_);
  for (const DiscoveredFile& file : files) {
    if (in_flight_.contains(file.name)) continue;
    if (options_.once && !once_open_.count(file.name)) continue;  // only what was there at start
    auto [it, inserted] = pending_.try_emplace(file.name);
    if (inserted || file.drop_time_us < it->second.drop_time_us) it->second.drop_time_us = file.drop_time_us;
  }
  metrics_->backlog_files.Set(static_cast<double>(pending_.size() + in_flight_.size()));
}

std::vector<std::string> FileQueue::Due(absl::Time now) const {
  std::vector<std::string> due;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, file] : pending_) {
    if (file.not_before <= now && !in_flight_.contains(name)) due.push_back(name);
  }
  return due;
}

absl::Time FileQueue::NextDue(absl::Time not_before, absl::Time latest) const {
  absl::Time wake = latest;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, file] : pending_) {
    if (in_flight_.contains(name)) continue;
    wake = std::min(wake, std::max(file.not_before, not_before));
  }
  return wake;
}

std::optional<FileQueue::Entry> FileQueue::PickUp(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(name);
  if (it == pending_.end()) return std::nullopt;
  if (!it->second.picked_up && metrics_ != nullptr) {
    metrics_->file_discovery_delay_seconds.Observe(
        std::max<double>(0, static_cast<double>(NowMicros() - it->second.drop_time_us) / 1e6));
  }
  it->second.picked_up = true;
  return it->second;
}

void FileQueue::MarkInFlight(const std::string& name) {
  absl::MutexLock lock(&mu_);
  pending_.erase(name);
  in_flight_.insert(name);
}

void FileQueue::ReleaseInFlight(const std::string& name) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(name);
}

void FileQueue::Done(const std::string& name, bool ok) {
  absl::MutexLock lock(&mu_);
  DoneLocked(name, ok);
}

void FileQueue::DoneLocked(const std::string& name, bool ok) {
  pending_.erase(name);
  in_flight_.erase(name);
  once_open_.erase(name);
  if (!ok && options_.once) once_failed_.insert(name);
}

void FileQueue::RetryAfter(const std::string& name, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  pending_[name].not_before = absl::Now() + delay;
}

void FileQueue::Refused(const std::string& name, int previous_attempts, int64_t drop_time_us,
                        const absl::Status& why) {
  const int attempts = previous_attempts + 1;  // this refused attempt included
  if (metrics_ != nullptr) metrics_->files_failed.Increment();
  absl::MutexLock lock(&mu_);
  if (options_.once && attempts >= options_.once_max_attempts) {
    LOG_WARNING("Giving up on file") << Kv("file", name) << Kv("attempts", attempts) << Kv("error", why.ToString());
    DoneLocked(name, /*ok=*/false);
    return;
  }
  const absl::Duration delay = retry_.Delay(attempts - 1);
  LOG_WARNING("File refused; will retry") << Kv("file", name) << Kv("attempts", attempts)
                                          << Kv("retry_in_s", absl::ToDoubleSeconds(delay))
                                          << Kv("error", why.ToString());
  Entry& file = pending_[name];
  file.attempts = attempts;
  file.not_before = absl::Now() + delay;
  if (file.drop_time_us == 0) file.drop_time_us = drop_time_us;
  file.picked_up = true;
}

bool FileQueue::OnceDone() const {
  absl::MutexLock lock(&mu_);
  return once_open_.empty();
}

std::vector<std::string> FileQueue::OnceUnfinished() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> unfinished(once_failed_.begin(), once_failed_.end());
  unfinished.insert(unfinished.end(), once_open_.begin(), once_open_.end());
  return unfinished;
}

}  // namespace ecomstream::processor

// file_queue: the inbox files waiting for an attempt, by name (oldest name first). Owns each
// waiting file's drop time, refusals so far and the time it may be tried again (a refusal backs
// off with Backoff, retry.h, doubling from the first retry up to 10 minutes); the names of the
// files in flight, which are never picked again until released; and, with once, the files present
// at start that are still to finish and those given up. Nothing here touches the files.
//
// Thread-safe: Run's thread merges scans and picks files; the writer client's thread finishes,
// releases and refuses them.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_FILE_QUEUE_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_FILE_QUEUE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/processor/directory_source.h"
#include "services/processor/processor_metrics.h"
#include "services/processor/retry.h"

namespace ecomstream::processor {

struct FileQueueOptions {
  absl::Duration first_retry = absl::Seconds(5);  // after a file's first refusal
  bool once = false;
  int once_max_attempts = 3;  // with once: refusals of one file before giving it up
};

class FileQueue {
 public:
  struct Entry {
    int64_t drop_time_us = 0;
    absl::Time not_before = absl::InfinitePast();
    int attempts = 0;  // refusals so far
    bool picked_up = false;
  };

  // `metrics` (which must outlive the queue) gets the backlog, discovery delay and refusals.
  FileQueue(FileQueueOptions options, ProcessorMetrics* metrics);

  // With once: the files present at start, the only ones ever queued.
  void StartOnce(const std::vector<DiscoveredFile>& present);
  // Queues the files not queued or in flight yet (keeping the earliest drop time seen).
  void Merge(const std::vector<DiscoveredFile>& files);
  // The names due at `now` and not in flight, oldest first.
  std::vector<std::string> Due(absl::Time now) const;
  // When the first file not in flight is due, but not before `not_before`; `latest` if none is
  // due earlier.
  absl::Time NextDue(absl::Time not_before, absl::Time latest) const;
  // Marks `name` picked up and returns its entry; nullopt when it is no longer queued. The first
  // pick-up of a file observes its discovery delay.
  std::optional<Entry> PickUp(const std::string& name);

  // The file was claimed: it leaves the queue and is in flight.
  void MarkInFlight(const std::string& name);
  // The file is no longer in flight; a later scan may queue it again.
  void ReleaseInFlight(const std::string& name);
  // The file is finished (no longer queued nor in flight): committed, quarantined or gone when
  // `ok`, given up otherwise (once).
  void Done(const std::string& name, bool ok);
  // Asks again about `name` after `delay` (not a refusal).
  void RetryAfter(const std::string& name, absl::Duration delay);
  // A refused attempt (`previous_attempts` + 1 refusals now): the file waits for its backoff, or
  // with once is given up after once_max_attempts.
  void Refused(const std::string& name, int previous_attempts, int64_t drop_time_us, const absl::Status& why);

  // With once: every file present at start is done.
  bool OnceDone() const;
  // With once: the files given up and those not finished, by name.
  std::vector<std::string> OnceUnfinished() const;

 private:
  void DoneLocked(const std::string& name, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const FileQueueOptions options_;
  ProcessorMetrics* const metrics_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> pending_ ABSL_GUARDED_BY(mu_);  // by name: oldest first
  absl::flat_hash_set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> once_open_ ABSL_GUARDED_BY(mu_);  // with once: files still to finish
  std::set<std::string> once_failed_ ABSL_GUARDED_BY(mu_);
  Backoff retry_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_FILE_QUEUE_H_

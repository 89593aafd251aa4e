// directory_source: finds the CSV files dropped into the inbox (docs/design.md, "files").
//
// inotify (IN_MOVED_TO, IN_CLOSE_WRITE) reports a file within milliseconds of its rename; a scan
// at Open() and every `rescan_interval` catches what inotify missed (queue overflow, network
// filesystems, files present before start). Only regular files named `*.csv` that do not start
// with '.' are candidates; manifests, dot-files, `.tmp/` and other names are ignored.
//
// Poll() is called from one thread; Wake() may be called from any thread.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_DIRECTORY_SOURCE_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_DIRECTORY_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/processor/processor_metrics.h"

namespace ecomstream::processor {

struct DiscoveredFile {
  std::string name;            // base name, e.g. events-000001.csv
  int64_t drop_time_us = 0;    // when it became visible: inotify event time, or mtime for a scan
};

struct DirectorySourceOptions {
  std::string dir;
  absl::Duration rescan_interval = absl::Seconds(2);
  bool watch = true;  // false: scans only (the caller polls)
};

class DirectorySource {
 public:
  // `metrics` may be null.
  DirectorySource(DirectorySourceOptions options, ProcessorMetrics* metrics);
  ~DirectorySource();
  DirectorySource(const DirectorySource&) = delete;
  DirectorySource& operator=(const DirectorySource&) = delete;

  // Starts watching. kNotFound / kPermissionDenied when the directory cannot be watched.
  absl::Status Open();

  // Waits up to `timeout` for inotify events, a due rescan, or Wake(). Returns the candidate
  // files reported since the last call: every candidate present when a scan ran, plus those
  // inotify announced. A name may be reported again; callers de-duplicate.
  // Errors: the directory vanished or became unreadable (kNotFound, kPermissionDenied...).
  absl::StatusOr<std::vector<DiscoveredFile>> Poll(absl::Duration timeout);

  // Every candidate file present now, with its mtime as drop time.
  absl::StatusOr<std::vector<DiscoveredFile>> Scan();

  // Makes a blocked Poll() return early. Thread-safe.
  void Wake();

  // The naming rule: "*.csv", not starting with '.'.
  static bool IsCandidateName(absl::string_view name);

 private:
  absl::Status ReadEvents(std::vector<DiscoveredFile>* out);

  DirectorySourceOptions options_;
  ProcessorMetrics* metrics_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  absl::Time next_scan_ = absl::InfinitePast();
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_DIRECTORY_SOURCE_H_

// archive_sweep: when the archive's expired files are deleted. Every archive_retention / 10,
// between a minute and an hour (so files outlive their retention by at most that), it deletes
// the archived files older than the retention (archive_retention.h). Run's thread only.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_ARCHIVE_SWEEP_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_ARCHIVE_SWEEP_H_

#include <string>
#include <utility>

#include "absl/time/time.h"

namespace ecomstream::processor {

class ArchiveSweeper {
 public:
  // An empty `archive_dir` or a zero `retention` sweeps nothing.
  ArchiveSweeper(std::string archive_dir, absl::Duration retention)
      : archive_dir_(std::move(archive_dir)), retention_(retention) {}

  // Sweeps when the last sweep is old enough; errors are logged and retried at the next sweep.
  void MaybeSweep(absl::Time now);

 private:
  const std::string archive_dir_;
  const absl::Duration retention_;
  absl::Time next_sweep_ = absl::InfinitePast();
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_ARCHIVE_SWEEP_H_

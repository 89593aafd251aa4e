#include "services/processor/archive_sweep.h"

#include <algorithm>

#include "absl/status/statusor.h"
#include "common/log.h"
#include "services/processor/archive_retention.h"

namespace ecomstream::processor {

void ArchiveSweeper::MaybeSweep(absl::Time now) {
  if (archive_dir_.empty() || retention_ <= absl::ZeroDuration() || now < next_sweep_) return;
  next_sweep_ = now + std::clamp(retention_ / 10, absl::Minutes(1), absl::Hours(1));
  absl::StatusOr<int> deleted = RemoveExpiredArchivedFiles(archive_dir_, retention_, now);
  if (!deleted.ok()) {
    LOG_WARNING("Cannot sweep the archive; retrying later") << Kv("error", deleted.status().ToString());
  } else if (*deleted > 0) {
    LOG_INFO("Archived files expired") << Kv("archive_dir", archive_dir_) << Kv("deleted", *deleted)
                                       << Kv("archive_retention", absl::FormatDuration(retention_));
  }
}

}  // namespace ecomstream::processor

// archive_retention: bounds the archive. Files the processor moved to the archive are finished
// (their last batch committed); after --archive_retention they are deleted. The inbox and the
// quarantine are never touched, so nothing an unfinished file or a resume needs goes away.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_ARCHIVE_RETENTION_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_ARCHIVE_RETENTION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ecomstream::processor {

// Deletes the regular files directly in `archive_dir` that entered it before `now - retention`
// (by their inode change time, which the move into the archive sets; a file's own mtime is its
// drop time, which can be much older). Subdirectories, symlinks and other entries are left
// alone; a file that vanishes meanwhile (another processor sweeping) is not an error. Returns
// the number deleted; errors name the directory or the file.
absl::StatusOr<int> RemoveExpiredArchivedFiles(const std::string& archive_dir, absl::Duration retention,
                                               absl::Time now);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_ARCHIVE_RETENTION_H_

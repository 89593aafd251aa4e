// file_lifecycle: where a file goes when the processor is done with it (docs/design.md, "delivery"):
// to the archive (or deleted) after the writer committed it, or to quarantine with a reason
// when it cannot be loaded. The manifest `NAME.csv.manifest.json` always travels with its CSV.
//
// Moves are renames (atomic on one filesystem; copy + fsync + unlink across filesystems). The
// manifest moves first, so a crash in between leaves the CSV in the inbox, where it is claimed
// again and found already committed, never a manifest without its CSV in the archive. A name
// already taken in the target directory gets a numeric suffix ("NAME.1.csv"): nothing there is
// overwritten. While a processor moves a file it holds an exclusive flock on the inbox file:
// another processor moving the same file (both found it committed) waits for it and then finds
// it gone, so it never takes the half-moved file's archive name for taken.
//
// Thread-safe (no shared state besides the filesystem); metrics may be null.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_FILE_LIFECYCLE_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_FILE_LIFECYCLE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/file_util.h"  // ReadSmallFile, for this header's users
#include "services/processor/processor_metrics.h"

namespace ecomstream::processor {

inline constexpr absl::string_view kManifestSuffix = ".manifest.json";
inline constexpr absl::string_view kReasonSuffix = ".reason";

struct FileLifecycleOptions {
  std::string input_dir;
  std::string archive_dir;
  std::string quarantine_dir;
  bool delete_after_commit = false;
};

class FileLifecycle {
 public:
  FileLifecycle(FileLifecycleOptions options, ProcessorMetrics* metrics);

  // Creates the input, archive and quarantine directories when missing (a processor may start
  // before anything has written to its inbox). Errors from MakeDirs.
  absl::Status Prepare();

  // After the commit of `name`: moves it (and its manifest) to the archive, or deletes both with
  // delete_after_commit. Returns the new path ("" when deleted). kNotFound if the CSV is gone.
  absl::StatusOr<std::string> Commit(absl::string_view name);

  // Moves `name` (and its manifest) to quarantine and writes `<new name>.reason` holding
  // `reason` and a newline. Returns the quarantined path.
  absl::StatusOr<std::string> Quarantine(absl::string_view name, absl::string_view reason);

 private:
  // A free "<dir>/<stem>[.N].csv" for `name`, checking the sidecar names too.
  std::string FreeTarget(const std::string& dir, absl::string_view name) const;
  absl::Status MoveWithManifest(absl::string_view name, const std::string& target);

  FileLifecycleOptions options_;
  ProcessorMetrics* metrics_;
};

// Renames `from` to `to`; across filesystems copies (fsynced) and unlinks instead.
absl::Status MoveFile(const std::string& from, const std::string& to);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_FILE_LIFECYCLE_H_

// Atomic file drop (docs/design.md, "Files"): write DIR/.tmp/NAME, fsync, rename to
// DIR/NAME, fsync DIR. A reader of DIR never sees a partial file under its final name.
#ifndef ECOMSTREAM_COMMON_ATOMIC_FILE_H_
#define ECOMSTREAM_COMMON_ATOMIC_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ecomstream {

// Not thread-safe. Destroying an uncommitted writer removes its temp file.
class AtomicFileWriter {
 public:
  // `temp_dir` must be on the same filesystem as `final_dir` (default: final_dir/.tmp).
  AtomicFileWriter(std::string final_dir, std::string name, std::string temp_dir = "");
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Creates the temp file (and the temp directory). Errors: kPermissionDenied, kNotFound,
  // kResourceExhausted (ENOSPC/EDQUOT), kInternal.
  absl::Status Open();
  // Buffered append; errors as for Open.
  absl::Status Append(absl::string_view data);
  // Flushes, fsyncs, renames into place and fsyncs the directory. On error the temp file is
  // removed and nothing appears under the final name. Same as Sync(), Publish(), then
  // SyncDirectory(final_dir).
  absl::Status Commit();
  // The first half of Commit: flushes, sets the modification time, fsyncs and closes the temp
  // file, which stays under its temp name. On error the temp file is removed.
  absl::Status Sync();
  // The second half, after Sync(): renames the temp file to its final name. The rename is
  // durable only once the caller has fsynced the final directory (one SyncDirectory may serve
  // several files). On error the temp file is removed.
  absl::Status Publish();
  // Removes the temp file.
  void Abort();
  // Makes Commit() set the file's modification time to `unix_us` before the rename (a reader
  // without other metadata may take the mtime as the file's creation time, e.g. under a
  // simulated clock). Default: the time of the last write.
  void set_modification_time_us(int64_t unix_us) { modification_time_us_ = unix_us; }

  uint64_t bytes_written() const { return bytes_written_; }

 private:
  absl::Status FlushBuffer();
  // Writes `data` to the file descriptor, then asks the kernel to start writing it back, so a
  // later fsync waits for less.
  absl::Status WriteOut(absl::string_view data);

  std::string final_dir_;
  std::string temp_dir_;
  std::string temp_path_;
  std::string final_path_;
  std::string buffer_;
  int fd_ = -1;
  bool synced_ = false;
  uint64_t bytes_written_ = 0;
  uint64_t bytes_flushed_ = 0;
  int64_t modification_time_us_ = -1;
};

// Convenience: the whole content at once.
absl::Status WriteFileAtomically(const std::string& dir, const std::string& name, absl::string_view content,
                                 const std::string& temp_dir = "");

// errno -> canonical status with `what` and strerror in the message.
absl::Status ErrnoToStatus(int err, absl::string_view what);

// mkdir -p.
absl::Status MakeDirs(const std::string& path);

// fsyncs a directory so a rename in it is durable.
absl::Status SyncDirectory(const std::string& dir);

// Removes regular files left in `temp_dir` by a crashed writer. Returns how many were removed.
int RemoveStaleTempFiles(const std::string& temp_dir);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_ATOMIC_FILE_H_

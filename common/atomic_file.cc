#include "common/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ecomstream {
namespace {

constexpr size_t kBufferBytes = 1 << 20;
// An Append at least this large is written directly rather than copied into the buffer.
constexpr size_t kDirectWriteBytes = 64 << 10;

}  // namespace

absl::Status MakeDirs(const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
  }
  const size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    absl::Status parent = MakeDirs(path.substr(0, slash));
    if (!parent.ok()) return parent;
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoToStatus(errno, absl::StrCat("mkdir ", path));
  return absl::OkStatus();
}

absl::Status ErrnoToStatus(int err, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EINTR:
    case EAGAIN:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open directory ", dir));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoToStatus(err, absl::StrCat("fsync directory ", dir));
  return absl::OkStatus();
}

int RemoveStaleTempFiles(const std::string& temp_dir) {
  DIR* d = ::opendir(temp_dir.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (::unlink(absl::StrCat(temp_dir, "/", name).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

AtomicFileWriter::AtomicFileWriter(std::string final_dir, std::string name, std::string temp_dir)
    : final_dir_(std::move(final_dir)),
      temp_dir_(temp_dir.empty() ? absl::StrCat(final_dir_, "/.tmp") : std::move(temp_dir)),
      temp_path_(absl::StrCat(temp_dir_, "/", name)),
      final_path_(absl::StrCat(final_dir_, "/", name)) {}

AtomicFileWriter::~AtomicFileWriter() { Abort(); }

absl::Status AtomicFileWriter::Open() {
  absl::Status status = MakeDirs(temp_dir_);
  if (!status.ok()) return status;
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return ErrnoToStatus(errno, absl::StrCat("create ", temp_path_));
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::WriteOut(absl::string_view data) {
  const uint64_t offset = bytes_flushed_;
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("write ", temp_path_));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  bytes_flushed_ += data.size();
  // Only a hint: an error here leaves the work to fsync.
  (void)::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(data.size()), SYNC_FILE_RANGE_WRITE);
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::FlushBuffer() {
  RETURN_IF_ERROR(WriteOut(buffer_));  // on an error the bytes stay: Sync() reports it again
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Append(absl::string_view data) {
  if (fd_ < 0) return absl::FailedPreconditionError("AtomicFileWriter::Append before Open");
  bytes_written_ += data.size();
  if (data.size() < kDirectWriteBytes && buffer_.size() + data.size() < kBufferBytes) {
    buffer_.append(data.data(), data.size());
    return absl::OkStatus();
  }
  // A large piece goes out as it is, after what is buffered: no copy into the buffer.
  if (!buffer_.empty()) RETURN_IF_ERROR(FlushBuffer());
  absl::Status status = WriteOut(data);
  if (!status.ok()) buffer_.assign(data.data(), data.size());  // for Sync() to report again
  return status;
}

absl::Status AtomicFileWriter::Commit() {
  RETURN_IF_ERROR(Sync());
  RETURN_IF_ERROR(Publish());
  return SyncDirectory(final_dir_);
}

absl::Status AtomicFileWriter::Sync() {
  if (fd_ < 0) return absl::FailedPreconditionError("AtomicFileWriter::Sync before Open");
  absl::Status status = FlushBuffer();
  if (status.ok() && modification_time_us_ >= 0) {
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = static_cast<time_t>(modification_time_us_ / 1000000);
    times[1].tv_nsec = static_cast<long>(modification_time_us_ % 1000000) * 1000;
    if (::futimens(fd_, times) != 0) status = ErrnoToStatus(errno, absl::StrCat("set mtime of ", temp_path_));
  }
  if (status.ok() && ::fsync(fd_) != 0) status = ErrnoToStatus(errno, absl::StrCat("fsync ", temp_path_));
  if (status.ok()) {
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) status = ErrnoToStatus(errno, absl::StrCat("close ", temp_path_));
  }
  if (!status.ok()) {
    Abort();
    return status;
  }
  synced_ = true;
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Publish() {
  if (!synced_ || temp_path_.empty()) return absl::FailedPreconditionError("AtomicFileWriter::Publish before Sync");
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    const absl::Status status = ErrnoToStatus(errno, absl::StrCat("rename ", temp_path_, " to ", final_path_));
    Abort();
    return status;
  }
  temp_path_.clear();
  return absl::OkStatus();
}

void AtomicFileWriter::Abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

absl::Status WriteFileAtomically(const std::string& dir, const std::string& name, absl::string_view content,
                                 const std::string& temp_dir) {
  AtomicFileWriter writer(dir, name, temp_dir);
  absl::Status status = writer.Open();
  if (status.ok()) status = writer.Append(content);
  if (status.ok()) status = writer.Commit();
  return status;
}

}  // namespace ecomstream

#include "common/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ecomstream {
namespace {

constexpr size_t kBufferBytes = 1 << 20;

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
  buffer_.reserve(kBufferBytes);
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::FlushBuffer() {
  const char* data = buffer_.data();
  size_t left = buffer_.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("write ", temp_path_));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Append(absl::string_view data) {
  if (fd_ < 0) return absl::FailedPreconditionError("AtomicFileWriter::Append before Open");
  buffer_.append(data.data(), data.size());
  bytes_written_ += data.size();
  if (buffer_.size() >= kBufferBytes) return FlushBuffer();
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return absl::FailedPreconditionError("AtomicFileWriter::Commit before Open");
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
  if (status.ok() && ::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("rename ", temp_path_, " to ", final_path_));
  }
  if (!status.ok()) {
    Abort();
    return status;
  }
  temp_path_.clear();
  return SyncDirectory(final_dir_);
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

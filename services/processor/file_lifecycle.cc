#include "services/processor/file_lifecycle.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status.h"

namespace ecomstream::processor {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

absl::Status CopyFile(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoToStatus(errno, absl::StrCat("open ", from));
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return ErrnoToStatus(err, absl::StrCat("create ", to));
  }
  auto buffer = std::make_unique<char[]>(1 << 20);
  absl::Status status;
  for (;;) {
    const ssize_t n = ::read(in, buffer.get(), 1 << 20);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoToStatus(errno, absl::StrCat("read ", from));
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buffer.get() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        status = ErrnoToStatus(errno, absl::StrCat("write ", to));
        break;
      }
      done += w;
    }
    if (!status.ok()) break;
  }
  if (status.ok() && ::fsync(out) != 0) status = ErrnoToStatus(errno, absl::StrCat("fsync ", to));
  ::close(in);
  ::close(out);
  if (!status.ok()) ::unlink(to.c_str());
  return status;
}

// An exclusive flock on the inbox file `path` for the life of the object: a processor moving
// the file out holds it, so another one that found the same file committed waits, and then finds
// it gone instead of taking the archive name the first is moving it to for taken.
class MoveLock {
 public:
  explicit MoveLock(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) {
      status_ = ErrnoToStatus(errno, absl::StrCat("open ", path));
      return;
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        status_ = ErrnoToStatus(errno, absl::StrCat("lock ", path));
        return;
      }
    }
    // The lock is on the file we opened; whoever held it before may have moved that file on.
    struct stat held, named;
    if (::fstat(fd_, &held) != 0 || ::lstat(path.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
        held.st_dev != named.st_dev) {
      status_ = absl::NotFoundError(absl::StrCat(path, " is gone"));
    }
  }
  ~MoveLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  MoveLock(const MoveLock&) = delete;
  MoveLock& operator=(const MoveLock&) = delete;
  // kNotFound when the file is gone (moved by another processor).
  const absl::Status& status() const { return status_; }

 private:
  int fd_;
  absl::Status status_;
};

}  // namespace

absl::Status MoveFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
  if (errno != EXDEV) return ErrnoToStatus(errno, absl::StrCat("rename ", from, " to ", to));
  RETURN_IF_ERROR(CopyFile(from, to));
  if (::unlink(from.c_str()) != 0) return ErrnoToStatus(errno, absl::StrCat("unlink ", from));
  return absl::OkStatus();
}

FileLifecycle::FileLifecycle(FileLifecycleOptions options, ProcessorMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

absl::Status FileLifecycle::Prepare() {
  RETURN_IF_ERROR(MakeDirs(options_.input_dir));
  if (!options_.delete_after_commit) RETURN_IF_ERROR(MakeDirs(options_.archive_dir));
  return MakeDirs(options_.quarantine_dir);
}

std::string FileLifecycle::FreeTarget(const std::string& dir, absl::string_view name) const {
  std::string target = absl::StrCat(dir, "/", name);
  absl::string_view stem = name;
  absl::string_view extension;
  if (absl::EndsWith(name, ".csv")) {
    stem = name.substr(0, name.size() - 4);
    extension = ".csv";
  }
  for (int n = 1; Exists(target) || Exists(absl::StrCat(target, kManifestSuffix)) ||
                  Exists(absl::StrCat(target, kReasonSuffix));
       ++n) {
    target = absl::StrCat(dir, "/", stem, ".", n, extension);
  }
  return target;
}

absl::Status FileLifecycle::MoveWithManifest(absl::string_view name, const std::string& target) {
  const std::string source = absl::StrCat(options_.input_dir, "/", name);
  if (!Exists(source)) return absl::NotFoundError(absl::StrCat(source, " is gone"));
  const std::string manifest = absl::StrCat(source, kManifestSuffix);
  if (Exists(manifest)) RETURN_IF_ERROR(MoveFile(manifest, absl::StrCat(target, kManifestSuffix)));
  return MoveFile(source, target);
}

absl::StatusOr<std::string> FileLifecycle::Commit(absl::string_view name) {
  if (metrics_ != nullptr) metrics_->file_lifecycle.received.Increment();
  absl::Status status;
  std::string target;
  if (options_.delete_after_commit) {
    const std::string source = absl::StrCat(options_.input_dir, "/", name);
    const std::string manifest = absl::StrCat(source, kManifestSuffix);
    if (::unlink(manifest.c_str()) != 0 && errno != ENOENT) {
      status = ErrnoToStatus(errno, absl::StrCat("unlink ", manifest));
    } else if (::unlink(source.c_str()) != 0) {
      status = ErrnoToStatus(errno, absl::StrCat("unlink ", source));
    }
  } else {
    MoveLock lock(absl::StrCat(options_.input_dir, "/", name));
    status = lock.status();
    if (status.ok()) {
      target = FreeTarget(options_.archive_dir, name);
      status = MoveWithManifest(name, target);
    }
  }
  if (metrics_ != nullptr) (status.ok() ? metrics_->file_lifecycle.sent : metrics_->file_lifecycle.failed).Increment();
  if (!status.ok()) return status;
  return target;
}

absl::StatusOr<std::string> FileLifecycle::Quarantine(absl::string_view name, absl::string_view reason) {
  if (metrics_ != nullptr) metrics_->file_lifecycle.received.Increment();
  MoveLock lock(absl::StrCat(options_.input_dir, "/", name));
  if (!lock.status().ok()) {
    if (metrics_ != nullptr) metrics_->file_lifecycle.failed.Increment();
    return lock.status();
  }
  const std::string target = FreeTarget(options_.quarantine_dir, name);
  const std::string target_name = target.substr(options_.quarantine_dir.size() + 1);
  // The reason first: whoever finds the CSV in quarantine finds why.
  absl::Status status = WriteFileAtomically(options_.quarantine_dir, absl::StrCat(target_name, kReasonSuffix),
                                            absl::StrCat(reason, "\n"));
  if (status.ok()) status = MoveWithManifest(name, target);
  if (metrics_ != nullptr) (status.ok() ? metrics_->file_lifecycle.sent : metrics_->file_lifecycle.failed).Increment();
  if (!status.ok()) return status;
  return target;
}

}  // namespace ecomstream::processor

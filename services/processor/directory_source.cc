#include "services/processor/directory_source.h"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/atomic_file.h"
#include "common/file_util.h"
#include "common/status.h"
#include "common/time_util.h"

namespace ecomstream::processor {

DirectorySource::DirectorySource(DirectorySourceOptions options, ProcessorMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

DirectorySource::~DirectorySource() {
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool DirectorySource::IsCandidateName(absl::string_view name) {
  return !name.empty() && name[0] != '.' && name.size() > 4 && absl::EndsWith(name, ".csv");
}

absl::Status DirectorySource::Open() {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return ErrnoToStatus(errno, "eventfd");
  struct stat st;
  if (::stat(options_.dir.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("input directory ", options_.dir));
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(absl::StrCat(options_.dir, " is not a directory"));
  if (!options_.watch) return absl::OkStatus();
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return ErrnoToStatus(errno, "inotify_init1");
  if (::inotify_add_watch(inotify_fd_, options_.dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
    return ErrnoToStatus(errno, absl::StrCat("inotify_add_watch ", options_.dir));
  }
  return absl::OkStatus();
}

void DirectorySource::Wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof(one));
}

absl::StatusOr<std::vector<DiscoveredFile>> DirectorySource::Scan() {
  DIR* dir = ::opendir(options_.dir.c_str());
  if (dir == nullptr) {
    if (metrics_ != nullptr) metrics_->directory_source.failed.Increment();
    return ErrnoToStatus(errno, absl::StrCat("scan ", options_.dir));
  }
  std::vector<DiscoveredFile> files;
  while (struct dirent* entry = ::readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (!IsCandidateName(name)) continue;  // also skips "." and ".."
    struct stat st;
    const std::string path = absl::StrCat(options_.dir, "/", name);
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    files.push_back(DiscoveredFile{std::string(name), MtimeMicros(st)});
  }
  ::closedir(dir);
  return files;
}

absl::Status DirectorySource::ReadEvents(std::vector<DiscoveredFile>* out) {
  alignas(struct inotify_event) char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(inotify_fd_, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return absl::OkStatus();
      return ErrnoToStatus(errno, "read inotify");
    }
    if (n == 0) return absl::OkStatus();
    const int64_t now_us = NowMicros();
    for (ssize_t offset = 0; offset < n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        next_scan_ = absl::InfinitePast();  // events were lost: scan now
        continue;
      }
      if (event->mask & IN_IGNORED) {
        return absl::NotFoundError(absl::StrCat("input directory ", options_.dir, " was removed"));
      }
      if (event->len == 0 || (event->mask & IN_ISDIR)) continue;
      const absl::string_view name(event->name);  // NUL-padded
      if (metrics_ != nullptr) metrics_->directory_source.received.Increment();
      if (!IsCandidateName(name)) {
        if (metrics_ != nullptr) metrics_->directory_source.dropped.Increment();
        continue;
      }
      out->push_back(DiscoveredFile{std::string(name), now_us});
    }
  }
}

absl::StatusOr<std::vector<DiscoveredFile>> DirectorySource::Poll(absl::Duration timeout) {
  std::vector<DiscoveredFile> out;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const absl::Time now = absl::Now();
    if (now >= next_scan_) {
      next_scan_ = now + options_.rescan_interval;
      ASSIGN_OR_RETURN(std::vector<DiscoveredFile> scanned, Scan());
      out.insert(out.end(), scanned.begin(), scanned.end());
    }
    if (!out.empty()) break;
    const absl::Time wake_at = std::min(deadline, next_scan_);
    if (now >= deadline) break;
    struct pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const int64_t wait_ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(wake_at - now + absl::Microseconds(999)));
    const int ready = ::poll(fds, inotify_fd_ >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(wait_ms, 60000)));
    if (ready < 0 && errno != EINTR) return ErrnoToStatus(errno, "poll");
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      uint64_t value;
      (void)!::read(wake_fd_, &value, sizeof(value));
      break;
    }
    if (ready > 0 && inotify_fd_ >= 0 && (fds[1].revents & POLLIN)) {
      RETURN_IF_ERROR(ReadEvents(&out));
    }
  }
  if (metrics_ != nullptr) metrics_->directory_source.sent.Increment(static_cast<double>(out.size()));
  return out;
}

}  // namespace ecomstream::processor

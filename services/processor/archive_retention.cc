#include "services/processor/archive_retention.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"

namespace ecomstream::processor {

absl::StatusOr<int> RemoveExpiredArchivedFiles(const std::string& archive_dir, absl::Duration retention,
                                               absl::Time now) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(archive_dir.c_str()), &::closedir);
  if (dir == nullptr) return ErrnoToStatus(errno, absl::StrCat("cannot open the archive ", archive_dir));
  const int dir_fd = ::dirfd(dir.get());
  const absl::Time cutoff = now - retention;
  int deleted = 0;
  errno = 0;
  while (const dirent* entry = ::readdir(dir.get())) {
    const char* name = entry->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoToStatus(errno, absl::StrCat("cannot stat ", archive_dir, "/", name));
    }
    if (!S_ISREG(st.st_mode)) continue;
    if (absl::TimeFromTimespec(st.st_ctim) >= cutoff) continue;
    if (::unlinkat(dir_fd, name, 0) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoToStatus(errno, absl::StrCat("cannot delete ", archive_dir, "/", name));
    }
    ++deleted;
    errno = 0;
  }
  if (errno != 0) return ErrnoToStatus(errno, absl::StrCat("cannot read the archive ", archive_dir));
  return deleted;
}

}  // namespace ecomstream::processor

// Small file-system helpers the services share: what a path is, a file's modification time as
// Unix microseconds, and reading a small file whole with a size limit.
#ifndef ECOMSTREAM_COMMON_FILE_UTIL_H_
#define ECOMSTREAM_COMMON_FILE_UTIL_H_

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ecomstream {

// True when `path` names a directory (a link to one included).
bool IsDirectory(const std::string& path);

// A stat result's modification time as Unix microseconds.
inline int64_t MtimeMicros(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000 + st.st_mtim.tv_nsec / 1000;
}

// The whole content of `path` when it holds at most `limit` bytes (manifests, rules, PEM files).
// kOutOfRange naming the limit for a larger file; the open or read error otherwise (kNotFound,
// kPermissionDenied, ...).
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_FILE_UTIL_H_

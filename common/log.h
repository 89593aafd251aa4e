// A small structured logger: one line per event on stderr, a capitalized sentence followed by
// key=value fields.
//
//   LOG_INFO("File archived") << Kv("file", name) << Kv("rows", rows);
//
// Thread-safe: each line is written with a single write(2). Levels below the minimum
// (SetMinLogLevel, or ECOMSTREAM_LOG_LEVEL=debug|info|warning|error) are discarded cheaply.
#ifndef ECOMSTREAM_COMMON_LOG_H_
#define ECOMSTREAM_COMMON_LOG_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ecomstream {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetMinLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

struct Kv {
  template <typename T>
  Kv(absl::string_view key, const T& value) : key(key), value(absl::StrCat(value)) {}
  Kv(absl::string_view key, absl::string_view value) : key(key), value(value) {}
  Kv(absl::string_view key, const std::string& value) : key(key), value(value) {}
  Kv(absl::string_view key, const char* value) : key(key), value(value) {}
  Kv(absl::string_view key, bool value) : key(key), value(value ? "true" : "false") {}
  absl::string_view key;
  std::string value;
};

class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view message);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  LogLine& operator<<(const Kv& kv);

 private:
  std::string line_;
};

}  // namespace ecomstream

#define ECOMSTREAM_LOG_(level, message)                    \
  if (!::ecomstream::LogEnabled(level)) {                  \
  } else                                                   \
    ::ecomstream::LogLine(level, message)
#define LOG_DEBUG(message) ECOMSTREAM_LOG_(::ecomstream::LogLevel::kDebug, message)
#define LOG_INFO(message) ECOMSTREAM_LOG_(::ecomstream::LogLevel::kInfo, message)
#define LOG_WARNING(message) ECOMSTREAM_LOG_(::ecomstream::LogLevel::kWarning, message)
#define LOG_ERROR(message) ECOMSTREAM_LOG_(::ecomstream::LogLevel::kError, message)

#endif  // ECOMSTREAM_COMMON_LOG_H_

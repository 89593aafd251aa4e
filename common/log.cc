#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ecomstream {
namespace {

LogLevel LevelFromEnvironment() {
  const char* env = std::getenv("ECOMSTREAM_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  std::string level = absl::AsciiStrToLower(env);
  if (level == "debug") return LogLevel::kDebug;
  if (level == "warning" || level == "warn") return LogLevel::kWarning;
  if (level == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& MinLevel() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnvironment())};
  return level;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

bool NeedsQuotes(absl::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

void SetMinLogLevel(LogLevel level) { MinLevel().store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= MinLevel().load(std::memory_order_relaxed); }

LogLine::LogLine(LogLevel level, absl::string_view message) {
  line_ = absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                       LevelName(level), " ", message);
}

LogLine& LogLine::operator<<(const Kv& kv) {
  absl::StrAppend(&line_, " ", kv.key, "=");
  if (!NeedsQuotes(kv.value)) {
    line_.append(kv.value);
    return *this;
  }
  line_.push_back('"');
  for (char c : kv.value) {
    if (c == '"' || c == '\\') {
      line_.push_back('\\');
      line_.push_back(c);
    } else if (c == '\n') {
      line_.append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      line_.push_back(' ');
    } else {
      line_.push_back(c);
    }
  }
  line_.push_back('"');
  return *this;
}

LogLine::~LogLine() {
  line_.push_back('\n');
  const char* data = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, left);
    if (n <= 0) break;
    data += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace ecomstream

#include "common/time_util.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace ecomstream {
namespace {

void CivilParts(int64_t unix_us, std::tm* tm, int* micros) {
  int64_t secs = unix_us / 1000000;
  int64_t us = unix_us % 1000000;
  if (us < 0) {
    us += 1000000;
    secs -= 1;
  }
  const time_t t = static_cast<time_t>(secs);
  gmtime_r(&t, tm);
  *micros = static_cast<int>(us);
}

}  // namespace

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t MonotonicMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string FormatTimestampMicros(int64_t unix_us) {
  std::tm tm;
  int micros = 0;
  CivilParts(unix_us, &tm, &micros);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  return buf;
}

void AppendPgTimestamp(int64_t unix_us, std::string* out) {
  std::tm tm;
  int micros = 0;
  CivilParts(unix_us, &tm, &micros);
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  out->append(buf, static_cast<size_t>(n));
}

}  // namespace ecomstream

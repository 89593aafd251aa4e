// Wall-clock helpers. All times are int64 microseconds since the Unix epoch, UTC.
#ifndef ECOMSTREAM_COMMON_TIME_UTIL_H_
#define ECOMSTREAM_COMMON_TIME_UTIL_H_

#include <cstdint>
#include <string>

namespace ecomstream {

int64_t NowMicros();
// Monotonic clock, microseconds, for durations.
int64_t MonotonicMicros();
// "2026-11-21T05:27:48.123456Z"
std::string FormatTimestampMicros(int64_t unix_us);
// "2026-11-21 05:27:48.123456+00" — PostgreSQL timestamptz COPY text.
void AppendPgTimestamp(int64_t unix_us, std::string* out);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_TIME_UTIL_H_

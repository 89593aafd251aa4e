// field_parsers: allocation-free parsing and cleaning of single CSV fields (docs/rows.md,
// "Cleaning"). Pure functions, thread-safe; none keeps a reference to its input.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_FIELD_PARSERS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_FIELD_PARSERS_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/uuid.h"

namespace ecomstream::processor {

// Removes surrounding ASCII whitespace (space, \t, \n, \v, \f, \r).
absl::string_view TrimField(absl::string_view field);

// True for the NULL spellings: "", "NULL", "null", "N/A", "n/a", "None" (after trimming).
bool IsNullToken(absl::string_view trimmed);

// A base-10 integer: an optional '-' and 1 to 18 digits (no '+', spaces or fraction).
bool ParseInt64(absl::string_view text, int64_t* out);

// A decimal with at most two fraction digits ("12", "-3", "12.5", "12.50") in cents. At least
// one digit before the point and one after it when a point is present; at most 15 integer digits.
bool ParsePriceCents(absl::string_view text, int64_t* cents);

// Microseconds since the Unix epoch, UTC, from:
// - ISO 8601 "YYYY-MM-DD" + 'T' or ' ' + "hh:mm:ss", an optional fraction of 1 to 9 digits
//   (kept to the microsecond), then nothing (UTC), 'Z', or an offset "+hh:mm" / "-hh:mm";
// - epoch seconds (exactly 10 digits) or epoch milliseconds (exactly 13 digits).
// Calendar fields are range-checked (month 1-12, the month's days, hour < 24, minute and
// second < 60, offset below 24:00).
bool ParseTimestampMicros(absl::string_view text, int64_t* unix_us);

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);

// Length of the well-formed UTF-8 sequence that starts at p[0] (a byte >= 0x80): 2 to 4, or 0
// when it is invalid (overlong, surrogate, above U+10FFFF, bad continuation). When the first
// `available` bytes are a valid prefix of a longer sequence, returns 0 with *incomplete = true.
size_t Utf8SequenceLength(const unsigned char* p, size_t available, bool* incomplete);

// True when `text` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view text);

// Case-folds into `buffer` and maps '-' and ' ' to '_' ("Smart-TV" -> "smart_tv"). Returns false
// (and leaves the output unspecified) when `text` is longer than `capacity`.
bool FoldEnumName(absl::string_view text, char* buffer, size_t capacity, absl::string_view* out);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_FIELD_PARSERS_H_

// UUIDs: version 7 (time-ordered, RFC 9562) for event ids, version 4 for sessions and instances.
#ifndef ECOMSTREAM_COMMON_UUID_H_
#define ECOMSTREAM_COMMON_UUID_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace ecomstream {

using Uuid = std::array<uint8_t, 16>;

// Version 7: 48-bit Unix milliseconds, then 74 random bits from `rand_hi`/`rand_lo`
// (deterministic for the same inputs).
Uuid UuidV7(int64_t unix_ms, uint64_t rand_hi, uint64_t rand_lo);
// Version 4 from 128 random bits.
Uuid UuidV4(uint64_t rand_hi, uint64_t rand_lo);
// A v4 from a thread-local random generator.
Uuid NewUuidV4();

// Canonical lower-case 8-4-4-4-12 form.
std::string FormatUuid(const Uuid& uuid);
// Appends the canonical form of 16 raw bytes (e.g. a proto `bytes` field) to `out`.
void AppendUuid(absl::string_view raw16, std::string* out);
// Parses the canonical form (either case); false on anything else (then *out is unspecified).
// Fast enough for per-row validation.
bool ParseUuid(absl::string_view text, Uuid* out);
inline absl::string_view UuidBytes(const Uuid& uuid) {
  return absl::string_view(reinterpret_cast<const char*>(uuid.data()), uuid.size());
}

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_UUID_H_

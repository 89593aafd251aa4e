#include "common/uuid.h"

#include <array>
#include <random>

namespace ecomstream {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Hex digit values; 0xFF for anything else.
constexpr std::array<uint8_t, 256> MakeHexTable() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) v = 0xFF;
  for (int c = 0; c < 10; ++c) table['0' + c] = static_cast<uint8_t>(c);
  for (int c = 0; c < 6; ++c) {
    table['a' + c] = static_cast<uint8_t>(10 + c);
    table['A' + c] = static_cast<uint8_t>(10 + c);
  }
  return table;
}
constexpr std::array<uint8_t, 256> kHexValue = MakeHexTable();

std::mt19937_64& ThreadRng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace

Uuid UuidV7(int64_t unix_ms, uint64_t rand_hi, uint64_t rand_lo) {
  Uuid u;
  const uint64_t ms = static_cast<uint64_t>(unix_ms);
  for (int i = 0; i < 6; ++i) u[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  u[6] = static_cast<uint8_t>(0x70 | ((rand_hi >> 8) & 0x0f));
  u[7] = static_cast<uint8_t>(rand_hi);
  u[8] = static_cast<uint8_t>(0x80 | ((rand_hi >> 16) & 0x3f));
  u[9] = static_cast<uint8_t>(rand_hi >> 24);
  for (int i = 0; i < 6; ++i) u[10 + i] = static_cast<uint8_t>(rand_lo >> (8 * i));
  return u;
}

Uuid UuidV4(uint64_t rand_hi, uint64_t rand_lo) {
  Uuid u;
  for (int i = 0; i < 8; ++i) u[i] = static_cast<uint8_t>(rand_hi >> (8 * i));
  for (int i = 0; i < 8; ++i) u[8 + i] = static_cast<uint8_t>(rand_lo >> (8 * i));
  u[6] = static_cast<uint8_t>(0x40 | (u[6] & 0x0f));
  u[8] = static_cast<uint8_t>(0x80 | (u[8] & 0x3f));
  return u;
}

Uuid NewUuidV4() {
  auto& rng = ThreadRng();
  return UuidV4(rng(), rng());
}

void AppendUuid(absl::string_view raw16, std::string* out) {
  char text[36];  // appended at once: no zero-filled resize first
  char* p = text;
  for (size_t i = 0; i < 16 && i < raw16.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    const auto b = static_cast<uint8_t>(raw16[i]);
    *p++ = kHex[b >> 4];
    *p++ = kHex[b & 0x0f];
  }
  out->append(text, static_cast<size_t>(p - text));
}

std::string FormatUuid(const Uuid& uuid) {
  std::string out;
  AppendUuid(UuidBytes(uuid), &out);
  return out;
}

bool ParseUuid(absl::string_view text, Uuid* out) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') return false;
  // Table-driven and branch-free per digit: the processor parses two UUIDs per row, and a branch
  // per (randomly ordered) hex digit cost a quarter of its validator's time in mispredictions.
  static constexpr uint8_t kPairs[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  uint8_t bad = 0;
  for (int i = 0; i < 16; ++i) {
    const uint8_t hi = kHexValue[p[kPairs[i]]];
    const uint8_t lo = kHexValue[p[kPairs[i] + 1]];
    bad |= static_cast<uint8_t>(hi | lo);  // any 0xFF sets the high bits
    (*out)[i] = static_cast<uint8_t>(hi << 4 | (lo & 0x0F));
  }
  return (bad & 0xF0) == 0;
}

}  // namespace ecomstream

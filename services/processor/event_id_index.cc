#include "services/processor/event_id_index.h"

#include <algorithm>
#include <cstring>

namespace ecomstream::processor {
namespace {

constexpr uint64_t kFirstTableEntries = 1024;

uint64_t Mix(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

uint16_t Tag(uint64_t hash) {
  const uint16_t tag = static_cast<uint16_t>(hash >> 48);
  return tag == 0 ? 1 : tag;
}

// The home slot: the low 32 bits scaled to the capacity (the tag is the top 16).
uint64_t Home(uint64_t hash, uint64_t capacity) { return ((hash & 0xFFFFFFFFULL) * capacity) >> 32; }

}  // namespace

EventIdIndex::EventIdIndex() = default;

uint64_t EventIdIndex::Hash(const Uuid& id) {
  uint64_t hi, lo;
  std::memcpy(&hi, id.data(), 8);
  std::memcpy(&lo, id.data() + 8, 8);
  return Mix(lo ^ Mix(hi + 0x9e3779b97f4a7c15ULL));
}

int64_t EventIdIndex::Find(uint64_t hash, absl::FunctionRef<bool(int64_t)> same) const {
  const uint16_t tag = Tag(hash);
  for (const Table& table : tables_) {
    for (uint64_t i = Home(hash, table.capacity);; i = i + 1 == table.capacity ? 0 : i + 1) {
      const uint16_t t = table.tags[i];
      if (t == 0) break;
      if (t == tag && same(table.rows[i])) return table.rows[i];
    }
  }
  for (const auto& [h, row] : large_rows_) {
    if (h == hash && same(row)) return row;
  }
  return 0;
}

void EventIdIndex::Insert(uint64_t hash, int64_t row) {
  ++size_;
  if (row > kMaxCompactRow) {
    large_rows_.emplace_back(hash, row);
    return;
  }
  if (tables_.empty() || tables_.back().used >= tables_.back().limit) {
    AddTable(std::max<uint64_t>(kFirstTableEntries, 2 * static_cast<uint64_t>(size_)));
  }
  Table& table = tables_.back();
  uint64_t i = Home(hash, table.capacity);
  while (table.tags[i] != 0) i = i + 1 == table.capacity ? 0 : i + 1;
  table.tags[i] = Tag(hash);
  table.rows[i] = static_cast<uint32_t>(row);
  ++table.used;
}

void EventIdIndex::Reserve(int64_t rows) {
  if (rows <= 0) return;
  if (!tables_.empty() && tables_.back().limit - tables_.back().used >= static_cast<uint64_t>(rows)) return;
  AddTable(static_cast<uint64_t>(rows));
}

void EventIdIndex::AddTable(uint64_t entries) {
  Table table;
  table.capacity = entries + entries / 4 + 1;  // at most 80% full
  table.limit = entries;
  table.tags.assign(table.capacity, 0);
  table.rows.resize(table.capacity);
  tables_.push_back(std::move(table));
}

size_t EventIdIndex::memory_bytes() const {
  size_t bytes = large_rows_.capacity() * sizeof(large_rows_[0]);
  for (const Table& table : tables_) bytes += table.capacity * (sizeof(uint16_t) + sizeof(uint32_t));
  return bytes;
}

}  // namespace ecomstream::processor

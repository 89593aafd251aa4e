// event_id_index: the rows of one file's valid events, found by event id, in about 8 bytes per
// event (docs/design.md, "rows": a duplicate event id inside a file).
//
// The index keeps no event id. Each entry is a 16-bit tag of the id's hash and the row (1-based,
// below 2^32) that first carried it; a lookup returns every row whose tag matches, and the caller
// decides, by reading that row again (EarlierRows), whether it is the same id. So a lookup is
// exact, and a tag that matches another id only costs a re-read (about one lookup in 10^4 once
// the index holds millions of ids).
//
// Storage is a list of open-addressing tables (linear probing, at most 80% full). The first is
// small; Reserve() adds one sized for the rows still expected (the validator estimates them from
// the file size and the bytes per row so far), and a full table gets a successor twice the
// size of everything before it. Tables are never rehashed: a table's home slots come from hash
// bits it does not store. Not thread-safe.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_EVENT_ID_INDEX_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_EVENT_ID_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "common/uuid.h"

namespace ecomstream::processor {

class EventIdIndex {
 public:
  // Rows at or above this go to an exact side list (never reached by a real file: 4G rows).
  static constexpr int64_t kMaxCompactRow = 0xFFFFFFFF;

  EventIdIndex();

  static uint64_t Hash(const Uuid& id);

  // The first remembered row with `hash` for which `same(row)` is true, or 0. `same` is asked
  // only for rows whose tag matches, oldest table first.
  int64_t Find(uint64_t hash, absl::FunctionRef<bool(int64_t)> same) const;
  // Remembers `row` (> 0) for `hash`; the caller has made sure Find found none.
  void Insert(uint64_t hash, int64_t row);
  // Makes room for `rows` more entries in one table (no-op when the newest table has it).
  void Reserve(int64_t rows);

  int64_t size() const { return size_; }
  // Bytes held by the tables.
  size_t memory_bytes() const;

 private:
  struct Table {
    std::vector<uint16_t> tags;  // 0: empty slot
    std::vector<uint32_t> rows;
    uint64_t capacity = 0;
    uint64_t used = 0;
    uint64_t limit = 0;  // used may not exceed this (80% of capacity)
  };
  void AddTable(uint64_t entries);

  std::vector<Table> tables_;
  std::vector<std::pair<uint64_t, int64_t>> large_rows_;  // (hash, row) for rows > kMaxCompactRow
  int64_t size_ = 0;
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_EVENT_ID_INDEX_H_

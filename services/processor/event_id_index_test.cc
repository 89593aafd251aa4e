#include "services/processor/event_id_index.h"

#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

TEST(EventIdIndexTest, RowsWithTheSameHashAreAllOfferedAndOnlyTheConfirmedOneIsFound) {
  EventIdIndex index;
  // Three ids that hash alike (forced): the caller's check tells them apart.
  constexpr uint64_t kHash = 0x1234000080000000ULL;
  constexpr uint64_t kOtherTag = 0x5678000080000000ULL;  // same home slot, another top 16 bits
  index.Insert(kHash, 7);
  index.Insert(kHash, 9);
  index.Insert(kHash, 12);
  std::vector<int64_t> offered;
  EXPECT_EQ(index.Find(kHash,
                       [&](int64_t row) {
                         offered.push_back(row);
                         return row == 12;
                       }),
            12);
  EXPECT_EQ(offered, (std::vector<int64_t>{7, 9, 12}));
  EXPECT_EQ(index.Find(kHash, [](int64_t) { return false; }), 0);
  EXPECT_EQ(index.Find(kOtherTag, [](int64_t) { return true; }), 0);  // its tag matches none: nothing offered
}

TEST(EventIdIndexTest, EveryInsertedRowIsFoundAcrossGrowthAndReservedTables) {
  EventIdIndex index;
  std::vector<std::pair<uint64_t, int64_t>> inserted;
  for (int64_t row = 1; row <= 200000; ++row) {
    if (row == 5000) index.Reserve(100000);  // the rest overflows into a table twice the size
    const uint64_t hash = EventIdIndex::Hash(Uuid{static_cast<uint8_t>(row), static_cast<uint8_t>(row >> 8),
                                                  static_cast<uint8_t>(row >> 16), 1});
    inserted.emplace_back(hash, row);
    index.Insert(hash, row);
  }
  for (const auto& [hash, row] : inserted) {
    ASSERT_EQ(index.Find(hash, [&, r = row](int64_t candidate) { return candidate == r; }), row);
  }
  EXPECT_EQ(index.size(), 200000);
  EXPECT_LE(index.memory_bytes(), 200000u * 20);  // 6 bytes a slot, tables at most 80% full
}

TEST(EventIdIndexTest, RowsBeyondTheCompactRangeAreKeptExactly) {
  EventIdIndex index;
  index.Insert(5, EventIdIndex::kMaxCompactRow + 10);
  index.Insert(5, 3);
  EXPECT_EQ(index.Find(5, [](int64_t row) { return row > 3; }), EventIdIndex::kMaxCompactRow + 10);
  EXPECT_EQ(index.Find(5, [](int64_t row) { return row == 3; }), 3);
}

}  // namespace
}  // namespace ecomstream::processor

#include "services/writer/pg/event_stats.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/domain.h"
#include "common/time_util.h"

namespace ecomstream::writer {
namespace {

constexpr int64_t kMicrosPerHour = 3'600'000'000;

// date_trunc('hour', t, 'UTC'), also for times before 1970.
int64_t HourOf(int64_t unix_us) {
  int64_t hours = unix_us / kMicrosPerHour;
  if (unix_us % kMicrosPerHour < 0) --hours;
  return hours * kMicrosPerHour;
}

struct Sums {
  int64_t events = 0;
  int64_t quantity = 0;
  int64_t revenue_cents = 0;
  void Add(const Sums& other) {
    events += other.events;
    quantity += other.quantity;
    revenue_cents += other.revenue_cents;
  }
};

struct UserSums {
  int64_t events = 0;
  int64_t purchases = 0;
  int64_t revenue_cents = 0;
  int64_t priced = 0;
  void Add(const UserSums& other) {
    events += other.events;
    purchases += other.purchases;
    revenue_cents += other.revenue_cents;
    priced += other.priced;
  }
};

// A batch's thousands of rows fall into hundreds of groups. They are grouped in a hash map on
// enum values (hashing the values' names and finding a name per row cost more than the grouping
// itself), then each group is named (`Named` turns a key into its named form) and the named groups
// are put in key order, so that the arrays are the same for the same rows. Values without a name
// (unspecified, or unknown to this build) share one name, so groups whose named keys are equal
// are merged.
template <typename NamedKey, typename Key, typename Value, typename Named, typename Less>
std::vector<std::pair<NamedKey, Value>> SortedNamedGroups(const absl::flat_hash_map<Key, Value>& groups, Named named,
                                                          Less less) {
  std::vector<std::pair<NamedKey, Value>> sorted;
  sorted.reserve(groups.size());
  for (const auto& [key, value] : groups) sorted.emplace_back(named(key), value);
  std::sort(sorted.begin(), sorted.end(), [&less](const auto& a, const auto& b) { return less(a.first, b.first); });
  size_t kept = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (kept > 0 && sorted[kept - 1].first == sorted[i].first) {
      sorted[kept - 1].second.Add(sorted[i].second);
    } else {
      sorted[kept++] = sorted[i];
    }
  }
  sorted.resize(kept);
  return sorted;
}

// a < b for names that are string literals: one name is always the same literal, so equal
// pointers spare the comparison of the bytes (most neighbours in a sort share their name).
bool NameLess(absl::string_view a, absl::string_view b) { return a.data() != b.data() && a < b; }

void AppendCents(int64_t cents, std::string* out) {
  const bool negative = cents < 0;
  const uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  const uint64_t fraction = magnitude % 100;
  absl::StrAppend(out, negative ? "-" : "", magnitude / 100, fraction < 10 ? ".0" : ".", fraction);
}

}  // namespace

std::string ReasonCountsJson(const std::map<std::string, int64_t>& reasons) {
  std::string json = "{";
  for (const auto& [reason, count] : reasons) {
    if (json.size() > 1) json.push_back(',');
    absl::StrAppend(&json, "\"", reason, "\":", count);
  }
  json.push_back('}');
  return json;
}

void AppendQuotedArrayElement(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (char c : text) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

EventStatsArrays InsertedEventStats(const std::vector<const v1::Event*>& events, const std::vector<int>& inserted) {
  // Key: hour, event type, category ("" = NULL, as copy_encoder stores it).
  absl::flat_hash_map<std::tuple<int64_t, int, absl::string_view>, Sums> groups;
  groups.reserve(inserted.size() / 4);
  for (int index : inserted) {
    const v1::Event& event = *events[static_cast<size_t>(index)];
    const int type = event.event_type();
    Sums& sums = groups[{HourOf(event.event_time_us()), type, event.category()}];
    ++sums.events;
    if (event.has_quantity()) sums.quantity += event.quantity();
    if (type == v1::EVENT_TYPE_PURCHASE && event.has_total_amount_cents()) {
      sums.revenue_cents += event.total_amount_cents();
    }
  }
  using NamedKey = std::tuple<int64_t, absl::string_view, absl::string_view>;
  const auto sorted = SortedNamedGroups<NamedKey>(groups, [](const auto& key) {
    const auto& [hour, type, category] = key;
    return NamedKey{hour, domain::EventTypeName(static_cast<v1::EventType>(type)), category};
  }, [](const NamedKey& a, const NamedKey& b) {
    if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) < std::get<0>(b);
    if (std::get<1>(a).data() != std::get<1>(b).data()) return NameLess(std::get<1>(a), std::get<1>(b));
    return std::get<2>(a) < std::get<2>(b);
  });
  EventStatsArrays arrays;
  std::string* const all[] = {&arrays.hours,  &arrays.event_types, &arrays.categories,
                              &arrays.events, &arrays.quantities,  &arrays.revenues};
  for (std::string* array : all) array->push_back('{');
  for (const auto& [key, sums] : sorted) {
    if (arrays.events.size() > 1) {
      for (std::string* array : all) array->push_back(',');
    }
    const auto& [hour, type, category] = key;
    arrays.hours.push_back('"');
    AppendPgTimestamp(hour, &arrays.hours);
    arrays.hours.push_back('"');
    AppendQuotedArrayElement(type, &arrays.event_types);
    if (category.empty()) {
      arrays.categories.append("NULL");
    } else {
      AppendQuotedArrayElement(category, &arrays.categories);
    }
    absl::StrAppend(&arrays.events, sums.events);
    absl::StrAppend(&arrays.quantities, sums.quantity);
    AppendCents(sums.revenue_cents, &arrays.revenues);
  }
  for (std::string* array : all) array->push_back('}');
  return arrays;
}

SegmentUsersArrays InsertedSegmentUsers(const std::vector<const v1::Event*>& events,
                                        const std::vector<int>& inserted) {
  // Key: segment, user id. add_segment_users sorts the elements again in the database's
  // collation before it locks rows.
  absl::flat_hash_map<std::pair<int, int64_t>, UserSums> groups;
  groups.reserve(inserted.size() / 2);
  for (int index : inserted) {
    const v1::Event& event = *events[static_cast<size_t>(index)];
    UserSums& sums = groups[{event.user_segment(), event.user_id()}];
    ++sums.events;
    if (event.event_type() == v1::EVENT_TYPE_PURCHASE) {
      ++sums.purchases;
      if (event.has_total_amount_cents()) {
        sums.revenue_cents += event.total_amount_cents();
        ++sums.priced;
      }
    }
  }
  // Named: segment name ("unknown" for none, as segment_users stores it), user id.
  using NamedKey = std::pair<absl::string_view, int64_t>;
  const auto sorted = SortedNamedGroups<NamedKey>(groups, [](const auto& key) {
    absl::string_view segment = domain::UserSegmentName(static_cast<v1::UserSegment>(key.first));
    if (segment.empty()) segment = "unknown";
    return NamedKey{segment, key.second};
  }, [](const NamedKey& a, const NamedKey& b) {
    if (a.first.data() != b.first.data()) return NameLess(a.first, b.first);
    return a.second < b.second;
  });
  SegmentUsersArrays arrays;
  std::string* const all[] = {&arrays.segments,  &arrays.user_ids, &arrays.events,
                              &arrays.purchases, &arrays.revenues, &arrays.priced};
  for (std::string* array : all) array->push_back('{');
  bool first = true;
  for (const auto& [key, sums] : sorted) {
    if (!first) {
      for (std::string* array : all) array->push_back(',');
    }
    first = false;
    AppendQuotedArrayElement(key.first, &arrays.segments);
    absl::StrAppend(&arrays.user_ids, key.second);
    absl::StrAppend(&arrays.events, sums.events);
    absl::StrAppend(&arrays.purchases, sums.purchases);
    AppendCents(sums.revenue_cents, &arrays.revenues);
    absl::StrAppend(&arrays.priced, sums.priced);
  }
  for (std::string* array : all) array->push_back('}');
  return arrays;
}

}  // namespace ecomstream::writer

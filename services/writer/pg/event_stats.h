// event_stats: the event_stats_hourly change of inserting events, computed by the writer.
//
// sql/002_event_stats.sql keeps event_stats_hourly equal to
//   SELECT date_trunc('hour', event_time, 'UTC'), event_type, category, count(*),
//          coalesce(sum(quantity), 0), coalesce(sum(total_amount) FILTER (WHERE purchase), 0)
//   FROM ecomstream.events GROUP BY 1, 2, 3
// with statement triggers. For the rows the writer COPYs into events it sends these sums itself
// (sql/006_writer_event_stats.sql says why); this computes them from the events as they are
// stored (copy_encoder.h: an empty category is NULL, an unset quantity or amount is NULL).
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_EVENT_STATS_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_EVENT_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::writer {

// The arguments of ecomstream.add_event_stats, as PostgreSQL array literals of one element per
// (hour, event type, category) group: hours timestamptz[], event_types text[], categories
// text[] (NULL for no category), events bigint[], quantities bigint[], revenues numeric[].
struct EventStatsArrays {
  std::string hours;
  std::string event_types;
  std::string categories;
  std::string events;
  std::string quantities;
  std::string revenues;
};

// The sums over `events[i]` for each i in `inserted`.
EventStatsArrays InsertedEventStats(const std::vector<const v1::Event*>& events, const std::vector<int>& inserted);

// The arguments of ecomstream.add_segment_users (sql/010_segment_users.sql), one element per
// (segment, user) in key order: segments text[] ("unknown" for none), user_ids bigint[],
// events bigint[], purchases bigint[], revenues numeric[] (purchase amounts), priced bigint[]
// (purchases with an amount).
struct SegmentUsersArrays {
  std::string segments;
  std::string user_ids;
  std::string events;
  std::string purchases;
  std::string revenues;
  std::string priced;
};

// The per (segment, user) sums over `events[i]` for each i in `inserted`.
SegmentUsersArrays InsertedSegmentUsers(const std::vector<const v1::Event*>& events, const std::vector<int>& inserted);

// The ledger's reason_counts jsonb: {"bad_price":2,...} (reason names are [a-z_], no escaping).
std::string ReasonCountsJson(const std::map<std::string, int64_t>& reasons);

// Appends `text` as a double-quoted array element: "a\"b" (backslash escapes " and \).
void AppendQuotedArrayElement(absl::string_view text, std::string* out);

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_EVENT_STATS_H_

#include "services/writer/pg/event_stats.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ecomstream::writer {
namespace {

constexpr int64_t k2026 = 1'767'225'600'000'000;  // 2026-01-01 00:00:00 UTC
constexpr int64_t kHour = 3'600'000'000;

v1::Event Event(v1::EventType type, const std::string& category, int64_t time_us) {
  v1::Event event;
  event.set_event_type(type);
  event.set_category(category);
  event.set_event_time_us(time_us);
  return event;
}

EventStatsArrays StatsOf(const std::vector<v1::Event>& events, const std::vector<int>& inserted) {
  std::vector<const v1::Event*> pointers;
  for (const v1::Event& event : events) pointers.push_back(&event);
  return InsertedEventStats(pointers, inserted);
}

TEST(EventStatsTest, SumsPerHourTypeAndCategoryOfTheInsertedRowsOnly) {
  std::vector<v1::Event> events = {
      Event(v1::EVENT_TYPE_PURCHASE, "books", k2026 + 59 * int64_t{60'000'000}),  // 00:59
      Event(v1::EVENT_TYPE_PURCHASE, "books", k2026),                    // 00:00, same group
      Event(v1::EVENT_TYPE_PURCHASE, "books", k2026 + kHour),            // 01:00, next hour
      Event(v1::EVENT_TYPE_VIEW, "books", k2026),                        // not inserted
      Event(v1::EVENT_TYPE_ADD_TO_CART, "", k2026),                      // no category: NULL
  };
  events[0].set_quantity(2);
  events[0].set_total_amount_cents(1999);
  events[1].set_quantity(1);
  events[1].set_total_amount_cents(5);
  events[2].set_total_amount_cents(100);  // no quantity: adds 0
  events[4].set_quantity(4);
  events[4].set_total_amount_cents(700);  // not a purchase: no revenue
  const EventStatsArrays stats = StatsOf(events, {0, 1, 2, 4});
  EXPECT_EQ(stats.hours,
            "{\"2026-01-01 00:00:00.000000+00\",\"2026-01-01 00:00:00.000000+00\",\"2026-01-01 01:00:00.000000+00\"}");
  EXPECT_EQ(stats.event_types, "{\"add_to_cart\",\"purchase\",\"purchase\"}");
  EXPECT_EQ(stats.categories, "{NULL,\"books\",\"books\"}");
  EXPECT_EQ(stats.events, "{1,2,1}");
  EXPECT_EQ(stats.quantities, "{4,3,0}");
  EXPECT_EQ(stats.revenues, "{0.00,20.04,1.00}");
}

TEST(EventStatsTest, NothingInsertedIsEmptyArrays) {
  const EventStatsArrays stats = StatsOf({Event(v1::EVENT_TYPE_VIEW, "toys", k2026)}, {});
  for (const std::string* array : {&stats.hours, &stats.event_types, &stats.categories, &stats.events,
                                   &stats.quantities, &stats.revenues}) {
    EXPECT_EQ(*array, "{}");
  }
}

TEST(EventStatsTest, TimesBefore1970TruncateDownToTheirHour) {
  const EventStatsArrays stats = StatsOf({Event(v1::EVENT_TYPE_VIEW, "toys", -1)}, {0});
  EXPECT_EQ(stats.hours, "{\"1969-12-31 23:00:00.000000+00\"}");
}

TEST(EventStatsTest, HostileCategoriesAreQuotedArrayElements) {
  const EventStatsArrays stats =
      StatsOf({Event(v1::EVENT_TYPE_VIEW, "a\"b\\c,{d} NULL", k2026), Event(v1::EVENT_TYPE_VIEW, "NULL", k2026)}, {0, 1});
  EXPECT_EQ(stats.categories, "{\"NULL\",\"a\\\"b\\\\c,{d} NULL\"}");
}

TEST(EventStatsTest, LargeRevenueKeepsEveryCent) {
  v1::Event purchase = Event(v1::EVENT_TYPE_PURCHASE, "toys", k2026);
  purchase.set_total_amount_cents(9'007'199'254'740'993);  // beyond a double's exact integers
  const EventStatsArrays stats = StatsOf({purchase}, {0});
  EXPECT_EQ(stats.revenues, "{90071992547409.93}");
}

TEST(EventStatsTest, EventTypesWithoutANameAreOneGroupPerHourAndCategory) {
  std::vector<v1::Event> events = {
      Event(v1::EVENT_TYPE_UNSPECIFIED, "toys", k2026),
      Event(static_cast<v1::EventType>(42), "toys", k2026),  // unknown to this build
      Event(static_cast<v1::EventType>(43), "toys", k2026 + 1),
      Event(static_cast<v1::EventType>(42), "books", k2026),
      Event(v1::EVENT_TYPE_SEARCH, "toys", k2026),
  };
  events[1].set_quantity(3);
  const EventStatsArrays stats = StatsOf(events, {0, 1, 2, 3, 4});
  EXPECT_EQ(stats.event_types, "{\"\",\"\",\"search\"}");
  EXPECT_EQ(stats.categories, "{\"books\",\"toys\",\"toys\"}");
  EXPECT_EQ(stats.events, "{1,3,1}");
  EXPECT_EQ(stats.quantities, "{0,3,0}");
}

SegmentUsersArrays UsersOf(const std::vector<v1::Event>& events, const std::vector<int>& inserted) {
  std::vector<const v1::Event*> pointers;
  for (const v1::Event& event : events) pointers.push_back(&event);
  return InsertedSegmentUsers(pointers, inserted);
}

v1::Event UserEvent(v1::EventType type, v1::UserSegment segment, int64_t user_id) {
  v1::Event event = Event(type, "toys", k2026);
  event.set_user_segment(segment);
  event.set_user_id(user_id);
  return event;
}

TEST(EventStatsTest, SegmentUsersSumEventsPurchasesAndPricedRevenuePerSegmentAndUserOfTheInsertedRowsOnly) {
  std::vector<v1::Event> events = {
      UserEvent(v1::EVENT_TYPE_VIEW, v1::USER_SEGMENT_PREMIUM, 7),
      UserEvent(v1::EVENT_TYPE_PURCHASE, v1::USER_SEGMENT_PREMIUM, 7),
      UserEvent(v1::EVENT_TYPE_PURCHASE, v1::USER_SEGMENT_PREMIUM, 7),      // no amount: not priced
      UserEvent(v1::EVENT_TYPE_PURCHASE, v1::USER_SEGMENT_NEW, 7),          // same user, other segment
      UserEvent(v1::EVENT_TYPE_SEARCH, v1::USER_SEGMENT_UNSPECIFIED, 0),    // no segment: "unknown"
      UserEvent(v1::EVENT_TYPE_PURCHASE, v1::USER_SEGMENT_PREMIUM, 8),      // not inserted
  };
  events[1].set_total_amount_cents(1999);
  events[3].set_total_amount_cents(5);
  events[0].set_total_amount_cents(700);  // not a purchase: no revenue
  const SegmentUsersArrays users = UsersOf(events, {0, 1, 2, 3, 4});
  EXPECT_EQ(users.segments, "{\"new\",\"premium\",\"unknown\"}");
  EXPECT_EQ(users.user_ids, "{7,7,0}");
  EXPECT_EQ(users.events, "{1,3,1}");
  EXPECT_EQ(users.purchases, "{1,2,0}");
  EXPECT_EQ(users.revenues, "{0.05,19.99,0.00}");
  EXPECT_EQ(users.priced, "{1,1,0}");
}

TEST(EventStatsTest, SegmentValuesWithoutANameAreOneUnknownGroupPerUser) {
  std::vector<v1::Event> events = {
      UserEvent(v1::EVENT_TYPE_VIEW, v1::USER_SEGMENT_UNSPECIFIED, 7),
      UserEvent(v1::EVENT_TYPE_PURCHASE, static_cast<v1::UserSegment>(42), 7),  // unknown to this build
      UserEvent(v1::EVENT_TYPE_VIEW, static_cast<v1::UserSegment>(43), 7),
      UserEvent(v1::EVENT_TYPE_VIEW, static_cast<v1::UserSegment>(42), 6),
      UserEvent(v1::EVENT_TYPE_VIEW, v1::USER_SEGMENT_AT_RISK, 7),
  };
  events[1].set_total_amount_cents(250);
  const SegmentUsersArrays users = UsersOf(events, {0, 1, 2, 3, 4});
  EXPECT_EQ(users.segments, "{\"at_risk\",\"unknown\",\"unknown\"}");
  EXPECT_EQ(users.user_ids, "{7,6,7}");
  EXPECT_EQ(users.events, "{1,1,3}");
  EXPECT_EQ(users.purchases, "{0,0,1}");
  EXPECT_EQ(users.revenues, "{0.00,0.00,2.50}");
  EXPECT_EQ(users.priced, "{0,0,1}");
}

TEST(EventStatsTest, NoSegmentUserInsertedIsEmptyArrays) {
  const SegmentUsersArrays users = UsersOf({UserEvent(v1::EVENT_TYPE_VIEW, v1::USER_SEGMENT_NEW, 1)}, {});
  for (const std::string* array :
       {&users.segments, &users.user_ids, &users.events, &users.purchases, &users.revenues, &users.priced}) {
    EXPECT_EQ(*array, "{}");
  }
}

TEST(EventStatsTest, ReasonCountsAreAJsonObjectInReasonOrder) {
  EXPECT_EQ(ReasonCountsJson({}), "{}");
  EXPECT_EQ(ReasonCountsJson({{"unknown_category", 3}, {"bad_price", 12}}), R"({"bad_price":12,"unknown_category":3})");
}

}  // namespace
}  // namespace ecomstream::writer

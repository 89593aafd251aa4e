// The SQL that keeps event_stats_hourly, segment_users and segment_totals exact: the writer's
// entry add_segment_users called with hostile arrays, and updates by other sessions that change
// aggregated columns, event ids, or nothing the aggregates count.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "services/writer/pg/testing/writer_testing.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;

class AggregatesTest : public testing::WriterDbTest {
 protected:
  // Calls add_segment_users as the writer role with the six array literals in `args`.
  absl::StatusOr<std::string> AddSegmentUsers(const std::string& args) {
    return testing::SqlAs(writer_dsn_, absl::StrCat("SELECT ecomstream.add_segment_users(", args, ")"));
  }
  std::string SegmentUsers() {
    return Sql("SELECT coalesce(string_agg(concat_ws(':', user_segment, user_id, events, purchases, revenue, "
               "priced_purchases), ',' ORDER BY user_segment, user_id), '') FROM ecomstream.segment_users");
  }
  std::string SegmentTotals() {
    return Sql("SELECT coalesce(string_agg(concat_ws(':', user_segment, users, buyers, events, purchases, revenue, "
               "priced_purchases), ',' ORDER BY user_segment), '') FROM ecomstream.segment_totals");
  }
  std::string Aggregates() {
    return absl::StrCat(
        Sql("SELECT coalesce(string_agg(concat_ws(':', hour, event_type, category, events, quantity, revenue), ',' "
            "ORDER BY hour, event_type, category), '') FROM ecomstream.event_stats_hourly"),
        "/", SegmentUsers(), "/", SegmentTotals());
  }
  // 60 events of the owner: users 0-5 in three segments and none, four hours, some purchases
  // without an amount, some without a category or quantity.
  void InsertOwnersEvents() {
    Sql("INSERT INTO ecomstream.events (event_id, user_id, event_type, category, quantity, total_amount, event_time, "
        "user_segment, browser, schema_version) "
        "SELECT ('019b7000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, i % 6, "
        "CASE WHEN i % 3 = 0 THEN 'purchase' ELSE 'view' END, CASE WHEN i % 5 = 0 THEN NULL ELSE 'books' END, "
        "CASE WHEN i % 7 = 0 THEN NULL ELSE i % 4 END, CASE WHEN i % 9 = 0 THEN NULL ELSE i * 1.25 END, "
        "'2026-01-01 00:00:00+00'::timestamptz + i * interval '4 minutes', "
        "(ARRAY['new', 'premium', 'at_risk', NULL])[1 + i % 4], 'chrome', 3 FROM generate_series(1, 60) i");
  }
};

TEST_F(AggregatesTest, AddSegmentUsersRefusesHostileArraysAndWritesNothing) {
  const char* const kRefused[] = {
      "'{new}', '{NULL}', '{1}', '{0}', '{0}', '{0}'",                 // no user id
      "'{new,premium}', '{1}', '{1,1}', '{0,0}', '{0,0}', '{0,0}'",    // arrays of unequal length
      "NULL, '{1}', '{1}', '{0}', '{0}', '{0}'",                       // no segments at all
      "'{new}', '{1}', '{1}', '{1}', '{NaN}', '{1}'",                  // an amount that is not a number
      "'{new}', '{1}', '{1}', '{1}', '{1.005}', '{1}'",                // finer than a cent
      "'{new}', '{1}', '{1}', '{1}', '{1.00}', '{2}'",                 // more priced than purchases
      "'{new}', '{1}', '{-3}', '{0}', '{0}', '{0}'",                   // a subtraction
      "'{new,premium}', '{1,1}', '{1,0}', '{0,0}', '{0,0}', '{0,0}'",  // one good element, one empty
  };
  for (const char* args : kRefused) {
    auto result = AddSegmentUsers(args);
    EXPECT_FALSE(result.ok()) << args;
    EXPECT_THAT(result.status().ToString(), HasSubstr("every count must be positive and consistent")) << args;
  }
  // The same (segment, user) twice in one call: PostgreSQL refuses to add to a row twice.
  auto twice = AddSegmentUsers("'{new,new}', '{1,1}', '{1,1}', '{0,0}', '{0,0}', '{0,0}'");
  EXPECT_FALSE(twice.ok());
  EXPECT_THAT(twice.status().ToString(), HasSubstr("cannot affect row a second time"));
  EXPECT_EQ(SegmentUsers(), "");
  EXPECT_EQ(SegmentTotals(), "");
  // A sum that overflows what is stored fails the whole call: its first element stays out too.
  ASSERT_TRUE(AddSegmentUsers("'{new}', '{2}', '{9223372036854775806}', '{0}', '{0}', '{0}'").ok());
  const std::string before = Aggregates();
  auto overflow = AddSegmentUsers("'{new,new}', '{1,2}', '{1,5}', '{0,0}', '{0,0}', '{0,0}'");
  EXPECT_FALSE(overflow.ok());
  EXPECT_THAT(overflow.status().ToString(), HasSubstr("bigint out of range"));
  EXPECT_EQ(Aggregates(), before);
}

TEST_F(AggregatesTest, AddSegmentUsersStoresASegmentNameAsDataWhateverItHolds) {
  auto result = AddSegmentUsers(R"('{"x'');DROP TABLE ecomstream.events;--","a\"b"}', '{1,2}', '{2,1}', '{1,0}', )"
                                R"('{9.50,0}', '{1,0}')");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, "2");
  EXPECT_EQ(SegmentUsers(), "a\"b:2:1:0:0.00:0,x');DROP TABLE ecomstream.events;--:1:2:1:9.50:1");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "0");
}

// Users and buyers of a segment move exactly when a (segment, user) row starts having events or
// purchases, whatever the order of the elements and however the calls split a user's events.
TEST_F(AggregatesTest, AddSegmentUsersCountsEachNewUserAndBuyerOnceInAnyElementOrder) {
  ASSERT_TRUE(AddSegmentUsers("'{premium,new,new}', '{7,3,1}', '{1,2,1}', '{0,1,0}', '{0,4.50,0}', '{0,1,0}'").ok());
  EXPECT_EQ(SegmentTotals(), "new:2:1:3:1:4.50:1,premium:1:0:1:0:0.00:0");
  // User 1 becomes a buyer (priced), user 3 buys again (unpriced), user 7 views again, user 9 is new.
  auto second = AddSegmentUsers("'{new,premium,new,new}', '{9,7,3,1}', '{1,1,1,2}', '{0,0,1,1}', '{0,0,0,2.25}', "
                                "'{0,0,0,1}'");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, "4");
  EXPECT_EQ(SegmentUsers(), "new:1:3:1:2.25:1,new:3:3:2:4.50:1,new:9:1:0:0.00:0,premium:7:2:0:0.00:0");
  EXPECT_EQ(SegmentTotals(), "new:3:2:7:3:6.75:2,premium:1:0:2:0:0.00:0");
}

// An update that changes no aggregated column (the writer's upsert of a new browser, say) leaves
// every aggregate row as it was.
TEST_F(AggregatesTest, UpdatesOfColumnsNoAggregateCountsLeaveTheAggregatesAsTheyWere) {
  InsertOwnersEvents();
  ASSERT_EQ(StatsDrift(), "");
  const std::string before = Aggregates();
  const std::string stamps = Sql("SELECT string_agg(updated_at::text, ',' ORDER BY hour, event_type, category) "
                                 "FROM ecomstream.event_stats_hourly");
  Sql("UPDATE ecomstream.events SET browser = 'firefox', referrer = 'search'");
  EXPECT_EQ(Aggregates(), before);
  EXPECT_EQ(Sql("SELECT string_agg(updated_at::text, ',' ORDER BY hour, event_type, category) "
                "FROM ecomstream.event_stats_hourly"),
            stamps);
  EXPECT_EQ(StatsDrift(), "");
}

// One statement that changes only browsers of some rows, aggregated columns of others (moving
// events between hours, categories, types, segments and users, emptying groups), and the event
// ids of others (their old and new versions find no partner): the aggregates stay equal to a
// fresh GROUP BY, and no emptied row is left behind.
TEST_F(AggregatesTest, OneUpdateMixingUnchangedMovedAndRenumberedEventsStaysExact) {
  InsertOwnersEvents();
  Sql("UPDATE ecomstream.events SET "
      "browser = 'safari', "
      "event_id = CASE WHEN user_id = 1 THEN overlay(event_id::text PLACING '9' FROM 20 FOR 1)::uuid ELSE event_id END, "
      "event_time = CASE WHEN user_id = 2 THEN event_time + interval '3 hours' ELSE event_time END, "
      "category = CASE WHEN user_id = 3 THEN NULL WHEN user_id = 4 THEN 'toys' ELSE category END, "
      "event_type = CASE WHEN user_id = 4 AND event_type = 'view' THEN 'purchase' ELSE event_type END, "
      "total_amount = CASE WHEN user_id = 5 THEN NULL ELSE total_amount END, "
      "user_segment = CASE WHEN user_id = 0 THEN 'returning' ELSE user_segment END, "
      "user_id = CASE WHEN user_id = 3 THEN 4 ELSE user_id END");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE event_id::text LIKE '019b7000-0000-7000-9000-%'"), "10");
  EXPECT_EQ(StatsDrift(), "");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.segment_users WHERE user_segment = 'new' AND user_id = 0"), "0");
  EXPECT_EQ(Sql("SELECT (SELECT count(*) FROM ecomstream.event_stats_hourly WHERE events = 0) + "
                "(SELECT count(*) FROM ecomstream.segment_users WHERE events = 0)"),
            "0");
  // Everything back in one statement: still exact.
  Sql("UPDATE ecomstream.events SET event_time = event_time - interval '1 hour', category = 'books', "
      "user_segment = NULL");
  EXPECT_EQ(StatsDrift(), "");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.event_stats_hourly WHERE events = 0"), "0");
}

}  // namespace
}  // namespace ecomstream::writer

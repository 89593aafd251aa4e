// pg_sink against a real PostgreSQL, logged in as a member of ecomstream_writer only.
#include "services/writer/pg/pg_sink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/time_util.h"
#include "common/uuid.h"
#include "services/writer/pg/file_ledger.h"
#include "services/writer/pg/pg_connection.h"
#include "services/writer/pg/testing/writer_testing.h"
#include "tests/testing/ports.h"
#include "tests/testing/wait.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;
using testing::MakeBatch;
using testing::MakeDeadLetter;
using testing::MakeEvent;
using testing::TestFile;

class PgSinkTest : public testing::WriterDbTest {
 protected:
  v1::Ack WriteOk(const v1::Batch& batch) {
    auto ack = sink_->Write(batch);
    EXPECT_TRUE(ack.ok()) << ack.status();
    return ack.ok() ? *ack : v1::Ack();
  }
  std::string EventCount() { return Sql("SELECT count(*) FROM ecomstream.events"); }
};

TEST_F(PgSinkTest, CommitsNewEventsAndAcksTheirCounts) {
  const TestFile file = Claim("new.csv");
  const v1::Ack ack = WriteOk(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2), MakeEvent(3)}, {}, 2));
  EXPECT_EQ(ack.first_row(), 1);
  EXPECT_EQ(ack.last_row(), 5);
  EXPECT_EQ(ack.inserted(), 3);
  EXPECT_EQ(ack.updated(), 0);
  EXPECT_EQ(ack.unchanged(), 0);
  EXPECT_EQ(ack.duplicates(), 2);
  EXPECT_EQ(ack.dead_lettered(), 0);
  EXPECT_FALSE(ack.already_committed());
  EXPECT_FALSE(ack.file_committed());
  EXPECT_GT(ack.commit_time_us(), 0);
  EXPECT_EQ(EventCount(), "3");
  EXPECT_EQ(Sql("SELECT first_row, last_row, rows, inserted, duplicates, trace_id FROM ecomstream.ingest_batches"),
            "1|5|5|3|2|4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Sql("SELECT state, committed_through, batches, rows, inserted FROM ecomstream.ingest_files"),
            "claimed|5|1|5|3");
  // Stored exactly as sent: uuid, money, time, NULL-able strings, trace id.
  const v1::Event first = MakeEvent(1);
  std::string id;
  AppendUuid(first.event_id(), &id);
  EXPECT_EQ(Sql(absl::StrCat("SELECT user_id, event_type, price, quantity, total_amount, event_time AT TIME ZONE 'UTC', "
                             "user_segment, geo_country, schema_version, source_file, trace_id "
                             "FROM ecomstream.v_events WHERE event_id = '", id, "'")),
            absl::StrCat(first.user_id(), "|purchase|20.00|2|40.00|2026-01-01 00:01:00|returning|DE|3|new.csv|"
                                          "4bf92f3577b34da6a3ce929d0e0e4736"));
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, SameBatchTwiceChangesNothingAndIsAckedAsAlreadyCommitted) {
  const TestFile file = Claim("twice.csv");
  const v1::Batch batch = MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)}, {MakeDeadLetter("x,y", {v1::REJECT_REASON_BAD_PRICE})});
  const v1::Ack first = WriteOk(batch);
  const std::string before = Sql(
      "SELECT string_agg(event_id || ':' || xmin::text, ',' ORDER BY event_id) FROM ecomstream.events");
  const std::string stats_before = Sql("SELECT string_agg(s::text, ',') FROM ecomstream.event_stats_hourly s");
  const v1::Ack second = WriteOk(batch);
  EXPECT_TRUE(second.already_committed());
  EXPECT_EQ(second.inserted(), first.inserted());
  EXPECT_EQ(second.dead_lettered(), 1);
  EXPECT_EQ(second.commit_time_us(), first.commit_time_us()) << "the replay answers with the original commit";
  // Not a row touched (xmin unchanged), nothing added anywhere.
  EXPECT_EQ(Sql("SELECT string_agg(event_id || ':' || xmin::text, ',' ORDER BY event_id) FROM ecomstream.events"),
            before);
  EXPECT_EQ(Sql("SELECT string_agg(s::text, ',') FROM ecomstream.event_stats_hourly s"), stats_before);
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.dead_letter_events"), "1");
  EXPECT_EQ(Sql("SELECT count(*), sum(batches) FROM ecomstream.ingest_batches, ecomstream.ingest_files"), "1|1");
}

TEST_F(PgSinkTest, UpdateChangesTheRowAndMovesItsAggregatesBetweenHoursAndCategories) {
  const TestFile file = Claim("update.csv");
  v1::Event event = MakeEvent(7);  // purchase, electronics, 2026-01-01 00:07
  WriteOk(MakeBatch(file, 1, {event}));
  EXPECT_EQ(Sql("SELECT hour AT TIME ZONE 'UTC', category, events, quantity, revenue FROM ecomstream.event_stats_hourly"),
            "2026-01-01 00:00:00|electronics|1|2|40.12");
  event.set_category("books");
  event.set_event_time_us(event.event_time_us() + 3 * 3600 * 1'000'000LL);  // 03:07
  event.set_quantity(3);
  event.set_total_amount_cents(event.price_cents() * 3);
  const v1::Ack ack = WriteOk(MakeBatch(file, 2, {event}));
  EXPECT_EQ(ack.updated(), 1);
  EXPECT_EQ(ack.inserted(), 0);
  EXPECT_EQ(Sql("SELECT category, quantity, total_amount FROM ecomstream.events"), "books|3|60.18");
  // The electronics hour is gone (zero events), the books hour holds the event.
  EXPECT_EQ(Sql("SELECT hour AT TIME ZONE 'UTC', category, events, quantity, revenue FROM ecomstream.event_stats_hourly"),
            "2026-01-01 03:00:00|books|1|3|60.18");
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, ManyUpdatesThroughOneSessionStayExactAcrossStagingTruncation) {
  // More stored-event rows than the staging table keeps between truncations (10000).
  const TestFile file = Claim("many-updates.csv");
  std::vector<v1::Event> events;
  for (int i = 0; i < 4000; ++i) events.push_back(MakeEvent(10'000 + i));
  ASSERT_EQ(WriteOk(MakeBatch(file, 1, events)).inserted(), 4000);
  int64_t row = 4001;
  for (int round = 1; round <= 4; ++round) {
    for (v1::Event& event : events) event.set_quantity(10 + round);
    for (v1::Event& event : events) event.set_total_amount_cents(event.price_cents() * event.quantity());
    const v1::Ack ack = WriteOk(MakeBatch(file, row, events));
    row = ack.last_row() + 1;
    EXPECT_EQ(ack.updated(), 4000) << "round " << round;
    EXPECT_EQ(ack.unchanged(), 0) << "round " << round;
  }
  const v1::Ack same = WriteOk(MakeBatch(file, row, events));
  EXPECT_EQ(same.unchanged(), 4000);
  EXPECT_EQ(Sql("SELECT count(*), min(quantity), max(quantity) FROM ecomstream.events"), "4000|14|14");
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, IdenticalEventAgainIsUnchangedAndKeepsItsFirstIngestion) {
  const TestFile first = Claim("first.csv");
  WriteOk(MakeBatch(first, 1, {MakeEvent(1), MakeEvent(2)}));
  constexpr char kSourceAndVersion[] =
      "SELECT string_agg(s.source_file || e.xmin::text, ',') "
      "FROM ecomstream.events e JOIN ecomstream.event_sources s USING (source_id)";
  const std::string stored = Sql(kSourceAndVersion);
  const TestFile again = Claim("again.csv");
  const v1::Ack ack = WriteOk(MakeBatch(again, 1, {MakeEvent(1), MakeEvent(2), MakeEvent(3)}));
  EXPECT_EQ(ack.inserted(), 1);
  EXPECT_EQ(ack.unchanged(), 2);
  EXPECT_EQ(ack.updated(), 0);
  EXPECT_EQ(Sql(absl::StrCat(kSourceAndVersion, " WHERE s.source_file = 'first.csv'")), stored);
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, EachBatchIsOneEventSourcesRowThatItsStoredEventsPointTo) {
  const TestFile file = Claim("sources.csv");
  WriteOk(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)}));
  v1::Batch second = MakeBatch(file, 3, {MakeEvent(3)});
  second.set_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  WriteOk(second);
  EXPECT_EQ(Sql("SELECT string_agg(source_file || ':' || trace_id, ',' ORDER BY source_id) FROM ecomstream.event_sources"),
            "sources.csv:4bf92f3577b34da6a3ce929d0e0e4736,sources.csv:0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(Sql("SELECT string_agg(e.user_id || ':' || s.trace_id, ',' ORDER BY e.event_time) "
                "FROM ecomstream.events e JOIN ecomstream.event_sources s USING (source_id)"),
            absl::StrCat(MakeEvent(1).user_id(), ":4bf92f3577b34da6a3ce929d0e0e4736,", MakeEvent(2).user_id(),
                         ":4bf92f3577b34da6a3ce929d0e0e4736,", MakeEvent(3).user_id(),
                         ":0af7651916cd43dd8448eb211c80319c"));
  // The retired columns stay empty.
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE source_file IS NOT NULL OR trace_id IS NOT NULL"), "0");
}

TEST_F(PgSinkTest, AnUpdatedEventTakesTheUpdatingBatchsSourceAndAnUnchangedOneKeepsItsOwn) {
  const TestFile first = Claim("before.csv");
  WriteOk(MakeBatch(first, 1, {MakeEvent(1), MakeEvent(2)}));
  const TestFile later = Claim("after.csv");
  v1::Event changed = MakeEvent(2);
  changed.set_quantity(9);
  changed.set_total_amount_cents(changed.price_cents() * 9);
  const v1::Ack ack = WriteOk(MakeBatch(later, 1, {MakeEvent(1), changed}));
  EXPECT_EQ(ack.updated(), 1);
  EXPECT_EQ(ack.unchanged(), 1);
  EXPECT_EQ(Sql("SELECT string_agg(quantity || ':' || source_file, ',' ORDER BY event_time) FROM ecomstream.v_events"),
            "2:before.csv,9:after.csv");
  EXPECT_EQ(Sql("SELECT string_agg(source_file, ',' ORDER BY source_id) FROM ecomstream.event_sources"),
            "before.csv,after.csv");
}

TEST_F(PgSinkTest, ABatchThatStoresNoEventRecordsNoSource) {
  const TestFile file = Claim("nothing.csv");
  WriteOk(MakeBatch(file, 1, {}, {MakeDeadLetter("x,y", {v1::REJECT_REASON_BAD_PRICE})}));
  WriteOk(MakeBatch(file, 2, {MakeEvent(1)}));
  const TestFile again = Claim("again.csv");
  EXPECT_EQ(WriteOk(MakeBatch(again, 1, {MakeEvent(1)})).unchanged(), 1);
  EXPECT_EQ(Sql("SELECT string_agg(source_file, ',') FROM ecomstream.event_sources"), "nothing.csv");
}

TEST_F(PgSinkTest, DuplicateEventIdsInsideABatchKeepTheLaterRow) {
  const TestFile file = Claim("dup-ids.csv");
  v1::Event early = MakeEvent(5);
  v1::Event late = MakeEvent(5);
  late.set_geo_city("Hamburg");
  const v1::Ack ack = WriteOk(MakeBatch(file, 1, {early, MakeEvent(6), late}, {}, 1));
  EXPECT_EQ(ack.inserted(), 2);
  EXPECT_EQ(ack.duplicates(), 2);  // one exact duplicate in the file + one repeated id
  EXPECT_EQ(ack.inserted() + ack.updated() + ack.unchanged() + ack.duplicates() + ack.dead_lettered(),
            ack.last_row() - ack.first_row() + 1);
  EXPECT_EQ(Sql("SELECT string_agg(geo_city, ',' ORDER BY geo_city) FROM ecomstream.events"), "Berlin,Hamburg");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE geo_city = 'Hamburg'"), "1");
}

TEST_F(PgSinkTest, DeadLettersAreStoredByteExact) {
  const TestFile file = Claim("hostile.csv");
  const std::vector<std::string> raws = {
      "a,\"quoted \"\"twice\"\"\",c",
      "back\\slash\\\\,\\N,\\.",
      "1,2'); DROP TABLE ecomstream.events; --",
      "tab\there,new\nline,cr\r\n",
      std::string("nul\0byte,x", 10),
      "invalid \xff\xfe utf8 \xc3\x28 bytes",
      "",
  };
  std::vector<v1::DeadLetter> dead_letters;
  for (const std::string& raw : raws) {
    dead_letters.push_back(MakeDeadLetter(raw, {v1::REJECT_REASON_BAD_PRICE, v1::REJECT_REASON_BAD_COUNTRY}, 7));
  }
  dead_letters.back().set_detail(std::string("detail with \0 NUL", 17));
  const v1::Ack ack = WriteOk(MakeBatch(file, 1, {}, dead_letters));
  EXPECT_EQ(ack.dead_lettered(), 7);
  const std::vector<std::string> stored =
      absl::StrSplit(Sql("SELECT row_number || ':' || encode(raw, 'hex') FROM ecomstream.dead_letter_events "
                         "ORDER BY row_number"),
                     '\n');
  ASSERT_EQ(stored.size(), raws.size());
  for (size_t i = 0; i < raws.size(); ++i) EXPECT_EQ(stored[i], absl::StrCat(i + 1, ":", absl::BytesToHexString(raws[i])));
  EXPECT_EQ(Sql("SELECT row_number, line_number, reasons, column_name, file_name FROM ecomstream.dead_letter_events "
                "WHERE row_number = 3"),
            "3|7|{bad_price,bad_country}|price|hostile.csv");
  EXPECT_EQ(Sql("SELECT detail FROM ecomstream.dead_letter_events WHERE row_number = 7"), "detail with \xEF\xBF\xBD NUL");
  EXPECT_EQ(Sql("SELECT reason_counts FROM ecomstream.ingest_batches"), R"({"bad_price": 7, "bad_country": 7})");
  EXPECT_EQ(EventCount(), "0");  // the SQL-looking row did nothing
}

TEST_F(PgSinkTest, RowsTheDatabaseRejectsAreBisectedOutAsDeadLetters) {
  const TestFile file = Claim("rejects.csv");
  std::vector<v1::Event> events;
  for (int i = 0; i < 12; ++i) events.push_back(MakeEvent(100 + i));
  events[2].set_geo_country("Germany");                  // events_geo_country_check
  events[7].set_price_cents(-500);                       // events_price_check
  events[9].set_geo_city(std::string("Ber\0lin", 7));    // text cannot hold NUL (22021)
  events[11].set_price_cents(std::numeric_limits<int64_t>::max());  // numeric(12,2) overflow (22003)
  const v1::Ack ack = WriteOk(MakeBatch(file, 1, events));
  EXPECT_EQ(ack.inserted(), 8);
  EXPECT_EQ(ack.dead_lettered(), 4);
  EXPECT_EQ(EventCount(), "8");
  EXPECT_EQ(Sql("SELECT string_agg(row_number::text, ',' ORDER BY row_number) FROM ecomstream.dead_letter_events "
                "WHERE reasons = '{database_rejected}'"),
            "3,8,10,12");
  EXPECT_THAT(Sql("SELECT detail FROM ecomstream.dead_letter_events WHERE row_number = 3"),
              HasSubstr("events_geo_country_check"));
  EXPECT_THAT(Sql("SELECT detail FROM ecomstream.dead_letter_events WHERE row_number = 8"),
              HasSubstr("events_price_check"));
  EXPECT_THAT(Sql("SELECT detail FROM ecomstream.dead_letter_events WHERE row_number = 10"),
              HasSubstr("invalid byte sequence"));
  EXPECT_THAT(Sql("SELECT detail FROM ecomstream.dead_letter_events WHERE row_number = 12"),
              HasSubstr("numeric field overflow"));
  // The raw text is the event as a v3 CSV record, so it can be fixed and dropped again.
  std::string id;
  AppendUuid(events[7].event_id(), &id);
  EXPECT_THAT(Sql("SELECT convert_from(raw, 'UTF8') FROM ecomstream.dead_letter_events WHERE row_number = 8"),
              HasSubstr(absl::StrCat(id, ",", events[7].user_id(), ",purchase,100107,-5.00,")));
  EXPECT_EQ(Sql("SELECT reason_counts FROM ecomstream.ingest_batches"), R"({"database_rejected": 4})");
  // The rows stored under the bisecting savepoints carry the batch's source.
  EXPECT_EQ(Sql("SELECT count(*), count(DISTINCT source_id), min(source_file) FROM ecomstream.v_events"),
            "8|1|rejects.csv");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.event_sources"), "1");
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, ExtremeTimestampsAreDeadLetteredNotFatal) {
  const TestFile file = Claim("times.csv");
  std::vector<v1::Event> events = {MakeEvent(1), MakeEvent(2), MakeEvent(3)};
  events[0].set_event_time_us(std::numeric_limits<int64_t>::max());
  events[1].set_event_time_us(std::numeric_limits<int64_t>::min());
  const v1::Ack ack = WriteOk(MakeBatch(file, 1, events));
  EXPECT_EQ(ack.inserted(), 1);
  EXPECT_EQ(ack.dead_lettered(), 2);
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE event_time = 'infinity' OR event_time = '-infinity'"), "0");
  EXPECT_THAT(Sql("SELECT detail FROM ecomstream.dead_letter_events WHERE row_number = 1"),
              HasSubstr("events_event_time_check"));
  EXPECT_THAT(Sql("SELECT detail FROM ecomstream.dead_letter_events WHERE row_number = 2"),
              HasSubstr("timestamp out of range"));
}

TEST_F(PgSinkTest, EventStatsEqualAFreshGroupByAfterRandomInsertsUpdatesReplaysAndDeadLetters) {
  std::mt19937_64 rng(20261121);
  std::mt19937_64 moves(20261204);
  const std::vector<std::string> categories = {"electronics", "books", "toys", ""};
  const std::vector<v1::EventType> types = {v1::EVENT_TYPE_VIEW, v1::EVENT_TYPE_ADD_TO_CART, v1::EVENT_TYPE_PURCHASE,
                                            v1::EVENT_TYPE_SEARCH};
  std::vector<v1::Batch> sent;
  int64_t inserted = 0;
  for (int f = 0; f < 6; ++f) {
    const TestFile file = Claim(absl::StrCat("random-", f, ".csv"));
    int64_t row = 1;
    for (int b = 0; b < 6; ++b) {
      std::vector<v1::Event> events;
      const int n = static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) {
        v1::Event event = MakeEvent(rng() % 60);  // a small id space: many updates and repeats
        if (rng() % 2 == 0) {
          event.set_category(categories[rng() % categories.size()]);
          event.set_event_type(types[rng() % types.size()]);
          event.set_event_time_us(event.event_time_us() + static_cast<int64_t>(rng() % 5) * 3'600'000'000);
          if (rng() % 3 == 0) event.clear_quantity();
          event.set_total_amount_cents(event.price_cents() * (event.has_quantity() ? event.quantity() : 1));
          // Moves the event to another (segment, user), or to no segment at all (its own
          // generator, so the batches above stay as they were).
          event.set_user_segment(static_cast<v1::UserSegment>(moves() % 6));
          event.set_user_id(static_cast<int64_t>(moves() % 4));
          if (moves() % 5 == 0) event.clear_total_amount_cents();
        }
        // Now and then minutes into the hour, or a row only the database rejects (bisected out).
        if (rng() % 4 == 0) event.set_event_time_us(event.event_time_us() + static_cast<int64_t>(rng() % 3600) * 1'000'000);
        if (rng() % 15 == 0) event.set_geo_country("zz");
        events.push_back(event);
      }
      std::vector<v1::DeadLetter> dead_letters;
      for (int i = static_cast<int>(rng() % 3); i > 0; --i) {
        dead_letters.push_back(MakeDeadLetter("junk", {v1::REJECT_REASON_BAD_TIMESTAMP}));
      }
      const int64_t duplicates = static_cast<int64_t>(rng() % 2);
      if (events.empty() && dead_letters.empty() && duplicates == 0) continue;
      const v1::Batch batch = MakeBatch(file, row, events, dead_letters, duplicates, b == 5);
      row = batch.last_row() + 1;
      const v1::Ack ack = WriteOk(batch);
      ASSERT_FALSE(ack.already_committed());
      inserted += ack.inserted();
      EXPECT_EQ(ack.inserted() + ack.updated() + ack.unchanged() + ack.duplicates() + ack.dead_lettered(),
                batch.last_row() - batch.first_row() + 1);
      sent.push_back(batch);
      // Replay an earlier batch now and then: acked from the ledger, nothing changes.
      if (rng() % 3 == 0) {
        const v1::Ack replay = WriteOk(sent[rng() % sent.size()]);
        EXPECT_TRUE(replay.already_committed());
      }
    }
  }
  EXPECT_EQ(EventCount(), absl::StrCat(inserted));
  EXPECT_EQ(StatsDrift(), "");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_batches"), absl::StrCat(sent.size()));
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_files WHERE state = 'committed'"), "6");
  EXPECT_EQ(Sql("SELECT sum(dead_lettered) = (SELECT count(*) FROM ecomstream.dead_letter_events) "
                "FROM ecomstream.ingest_batches"),
            "t");
}

TEST_F(PgSinkTest, InsertsByAnotherSessionStillGoThroughTheStatsTrigger) {
  const TestFile file = Claim("mixed.csv");
  WriteOk(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)}));
  // The owner inserts by hand, without the writer's session setting: the insert trigger counts it.
  Sql("INSERT INTO ecomstream.events (event_id, user_id, event_type, category, quantity, total_amount, event_time, "
      "schema_version) VALUES ('019b7000-0000-7000-8000-000000000001', 7, 'purchase', 'books', 3, 12.34, "
      "'2026-01-01 05:30:00+00', 3)");
  EXPECT_EQ(Sql("SELECT events, quantity, revenue FROM ecomstream.event_stats_hourly "
                "WHERE hour = '2026-01-01 05:00:00+00' AND category = 'books'"),
            "1|3|12.34");
  WriteOk(MakeBatch(file, 3, {MakeEvent(3)}, {}, 0, true));
  EXPECT_EQ(StatsDrift(), "");
}

// The writer's transactions skip the insert trigger by a setting of their own, not of the
// session: behind a transaction pooler the next transaction may run on a session where it is
// off, and the inserted rows must still be counted once, on the fast and on the careful way.
TEST_F(PgSinkTest, InsertsCountOnceWhateverTheSessionSaysAboutTheSetting) {
  const TestFile file = Claim("pooled.csv");
  const auto turn_off_on_the_idle_session = [&] {
    auto lease = pool_->Acquire();  // the most recently returned session, which Begin takes next
    ASSERT_TRUE(lease.ok()) << lease.status();
    pqxx::nontransaction(**lease).exec("SET ecomstream.writer_event_stats = off");
  };
  turn_off_on_the_idle_session();
  WriteOk(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)}));  // Begin + Commit
  EXPECT_EQ(StatsDrift(), "");
  turn_off_on_the_idle_session();
  auto prepared = sink_->Prepare(MakeBatch(file, 3, {MakeEvent(3)}, {}, 0, true));
  ASSERT_TRUE(prepared.ok());
  ASSERT_TRUE(sink_->Commit(**prepared, nullptr, [] {}).ok());  // the careful way
  EXPECT_EQ(Sql("SELECT sum(events) FROM ecomstream.event_stats_hourly"), "3");
  EXPECT_EQ(StatsDrift(), "");
}

// Other sessions' inserts reach the aggregates through the statement triggers, the writer's
// through its finish statement: mixed with multi-row inserts, updates and deletes of another
// session, the aggregates stay equal to a fresh GROUP BY.
TEST_F(PgSinkTest, AggregatesStayExactThroughWriterBatchesAndAnotherSessionsMultiRowInsertsUpdatesAndDeletes) {
  const TestFile file = Claim("mixed-sessions.csv");
  std::vector<v1::Event> first;
  for (int n = 1; n <= 8; ++n) {
    v1::Event event = MakeEvent(n);
    event.set_user_id(n % 3);  // users 0-2, shared with the owner's rows below
    if (n % 2 == 0) event.set_event_type(v1::EVENT_TYPE_VIEW);
    if (n % 4 == 0) event.clear_user_segment();
    first.push_back(event);
  }
  WriteOk(MakeBatch(file, 1, first));
  // The owner: 40 rows in one statement, users 0-4 in four segments (and none), some purchases
  // without an amount, some without a category.
  Sql("INSERT INTO ecomstream.events (event_id, user_id, event_type, category, quantity, total_amount, event_time, "
      "user_segment, schema_version) "
      "SELECT ('019b7000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, i % 5, "
      "CASE WHEN i % 3 = 0 THEN 'purchase' ELSE 'view' END, CASE WHEN i % 4 = 0 THEN NULL ELSE 'books' END, i % 4, "
      "CASE WHEN i % 6 = 0 THEN NULL ELSE i * 1.25 END, '2026-01-01 00:00:00+00'::timestamptz + i * interval '13 minutes', "
      "(ARRAY['new', 'returning', 'premium', NULL])[1 + i % 4], 3 FROM generate_series(1, 40) i");
  EXPECT_EQ(EventCount(), "48");
  EXPECT_EQ(StatsDrift(), "");
  // Another session moves user 1's events to user 2 (as purchases), then deletes user 2's.
  Sql("UPDATE ecomstream.events SET user_id = 2, event_type = 'purchase' WHERE user_id = 1");
  Sql("DELETE FROM ecomstream.events WHERE user_id = 2");
  EXPECT_EQ(EventCount(), "26");
  EXPECT_EQ(StatsDrift(), "");
  // The writer again: four new events, and the owner's ids 1-4, of which 1 and 2 are deleted
  // (inserted again) and 3 and 4 stored with other content (updated).
  std::vector<v1::Event> second;
  for (int n = 9; n <= 12; ++n) second.push_back(MakeEvent(n));
  for (int i = 1; i <= 4; ++i) {
    v1::Event event = MakeEvent(100 + i);
    Uuid id;
    ASSERT_TRUE(ParseUuid(absl::StrCat("019b7000-0000-7000-8000-00000000000", i), &id));
    event.set_event_id(std::string(UuidBytes(id)));
    event.set_user_id(4);
    second.push_back(event);
  }
  const v1::Ack ack = WriteOk(MakeBatch(file, 9, second, {}, 0, true));
  EXPECT_EQ(ack.inserted(), 6);
  EXPECT_EQ(ack.updated(), 2);
  EXPECT_EQ(EventCount(), "32");
  EXPECT_EQ(StatsDrift(), "");
}

// The largest id this sink committed bounds the ids the fast way probes while it is stored.
// Once it is deleted, the next batch finds it gone and forgets it; later batches probe up to
// their own committed ids, and every stored id among theirs is still found.
TEST_F(PgSinkTest, AfterItsLargestCommittedIdIsDeletedLaterBatchesStillFindTheirStoredIds) {
  const TestFile top = Claim("top.csv");
  WriteOk(MakeBatch(top, 1, {MakeEvent(100), MakeEvent(101), MakeEvent(102)}, {}, 0, true));
  Sql("DELETE FROM ecomstream.events");
  const TestFile file = Claim("after-delete.csv");
  const v1::Ack first = WriteOk(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2), MakeEvent(3)}));
  EXPECT_EQ(first.inserted(), 3);
  v1::Event changed = MakeEvent(3);
  changed.set_browser("firefox");
  const v1::Ack second =
      WriteOk(MakeBatch(file, 4, {MakeEvent(2), changed, MakeEvent(4), MakeEvent(5)}, {}, 0, true));
  EXPECT_EQ(second.inserted(), 2);
  EXPECT_EQ(second.unchanged(), 1);
  EXPECT_EQ(second.updated(), 1);
  EXPECT_EQ(EventCount(), "5");
  EXPECT_EQ(Sql("SELECT browser FROM ecomstream.events ORDER BY event_id OFFSET 2 LIMIT 1"), "firefox");
  EXPECT_EQ(StatsDrift(), "");
}

// A batch whose ids are all above the largest id this sink committed is not probed on the fast
// way (its COPY, sent with the BEGIN, is the transaction's first statement). An id another writer
// stored above that one trips the unique index: the begun transaction rolls back, its session
// stays usable, and the careful way finds the id stored and updates it.
TEST_F(PgSinkTest, AnIdAnotherWriterStoredAboveTheKnownLargestRunsAgainTheCarefulWayAndIsUpdated) {
  const TestFile file = Claim("known.csv");
  WriteOk(MakeBatch(file, 1, {MakeEvent(1)}));  // this sink's largest committed id: 1
  PgSink other(pool_.get(), metrics_.get(), tracer_.get());
  const TestFile other_file = Claim("other-writer.csv");
  ASSERT_TRUE(other.Write(MakeBatch(other_file, 1, {MakeEvent(5)}, {}, 0, true)).ok());
  v1::Event changed = MakeEvent(5);
  changed.set_browser("firefox");
  auto prepared = sink_->Prepare(MakeBatch(file, 2, {changed, MakeEvent(6)}, {}, 0, true));
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(sink_->Begin(**prepared), nullptr) << "id 5 is stored: the fast way's COPY trips the unique index";
  EXPECT_EQ(EventCount(), "2") << "the begun insert was rolled back";
  int reruns = 0;
  auto ack = sink_->Commit(**prepared, nullptr, [&] { ++reruns; });
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(reruns, 1);
  EXPECT_EQ(ack->inserted(), 1);
  EXPECT_EQ(ack->updated(), 1);
  EXPECT_EQ(EventCount(), "3");
  EXPECT_EQ(Sql("SELECT browser FROM ecomstream.events ORDER BY event_id OFFSET 1 LIMIT 1"), "firefox");
  EXPECT_EQ(Sql("SELECT state, committed_through FROM ecomstream.ingest_files WHERE file_name = 'known.csv'"),
            "committed|3");
  EXPECT_EQ(StatsDrift(), "");
}

// A batch with many ids below the largest stored one (the case where the probe first scans the
// batch's id range for stored ids): the stored ids among its 400 (every tenth, a quarter of them
// changed) are updated or unchanged, the other 360 inserted. (Which way the ids were found does
// not show in the outcome: a stored id left unprobed still ends right, through the careful way.)
TEST_F(PgSinkTest, StoredIdsAmongManyNewOnesInABatchsIdRangeAreUpdatedAndTheRestInserted) {
  const TestFile file = Claim("sparse-stored.csv");
  std::vector<v1::Event> stored;
  for (int n = 10; n <= 400; n += 10) stored.push_back(MakeEvent(n));
  ASSERT_EQ(WriteOk(MakeBatch(file, 1, stored)).inserted(), 40);
  std::vector<v1::Event> batch;
  for (int n = 1; n <= 400; ++n) {
    v1::Event event = MakeEvent(n);
    if (n % 40 == 0) event.set_browser("firefox");  // 10 of the stored 40 change
    batch.push_back(event);
  }
  const v1::Ack ack = WriteOk(MakeBatch(file, 41, batch, {}, 0, true));
  EXPECT_EQ(ack.inserted(), 360);
  EXPECT_EQ(ack.updated(), 10);
  EXPECT_EQ(ack.unchanged(), 30);
  EXPECT_EQ(EventCount(), "400");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE browser = 'firefox'"), "10");
  EXPECT_EQ(StatsDrift(), "");
}

// The same when the batch's id range holds more stored ids than the batch has (ids 1-1000
// stored, a batch of 67 spread over them and 30 new above: the range scan stops at its limit and
// every id is probed): the 67 are found, 7 of them changed.
TEST_F(PgSinkTest, ABatchWhoseIdRangeIsCrowdedWithOtherStoredIdsStillFindsEachOfItsStoredIds) {
  const TestFile file = Claim("crowded.csv");
  std::vector<v1::Event> stored;
  for (int n = 1; n <= 1000; ++n) stored.push_back(MakeEvent(n));
  ASSERT_EQ(WriteOk(MakeBatch(file, 1, stored)).inserted(), 1000);
  std::vector<v1::Event> batch;
  for (int n = 1; n <= 1000; n += 1000 / 70 + 1) {
    v1::Event event = MakeEvent(n);
    if (batch.size() % 10 == 0) event.set_browser("firefox");
    batch.push_back(event);
  }
  ASSERT_EQ(batch.size(), 67u);
  for (int n = 1001; n <= 1030; ++n) batch.push_back(MakeEvent(n));
  const v1::Ack ack = WriteOk(MakeBatch(file, 1001, batch, {}, 0, true));
  EXPECT_EQ(ack.inserted(), 30);
  EXPECT_EQ(ack.updated(), 7);
  EXPECT_EQ(ack.unchanged(), 60);
  EXPECT_EQ(EventCount(), "1030");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE browser = 'firefox'"), "7");
  EXPECT_EQ(StatsDrift(), "");
}

// A fast-way batch that sends nothing before its file lock (no events, and the sink knows its
// largest id) still runs in one transaction with the writer's setting: its dead letter and the
// ledger commit together, and the events counted once.
TEST_F(PgSinkTest, ABatchOfOnlyDeadLettersAfterEventsCommitsTheFileTheFastWay) {
  const TestFile file = Claim("dead-tail.csv");
  WriteOk(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)}));
  auto prepared = sink_->Prepare(
      MakeBatch(file, 3, {}, {MakeDeadLetter("x,y", {v1::REJECT_REASON_BAD_PRICE}, 4)}, 0, true));
  ASSERT_TRUE(prepared.ok());
  PgSink::BegunPtr begun = sink_->Begin(**prepared);
  ASSERT_NE(begun, nullptr);
  auto ack = sink_->Commit(**prepared, std::move(begun), [] { ADD_FAILURE() << "must not run again"; });
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->dead_lettered(), 1);
  EXPECT_TRUE(ack->file_committed());
  EXPECT_EQ(Sql("SELECT row_number, convert_from(raw, 'UTF8'), reasons FROM ecomstream.dead_letter_events"),
            "3|x,y|{bad_price}");
  EXPECT_EQ(Sql("SELECT state, committed_through, batches FROM ecomstream.ingest_files"), "committed|3|2");
  EXPECT_THAT(registry_.ExportText(), HasSubstr("ecomstream_writer_fast_path_total{result=\"finished\"} 2\n"));
  EXPECT_EQ(StatsDrift(), "");
}

// v_user_segment_analysis reads segment_users: distinct users and buyers per segment stay exact
// when the writer inserts events and when an update moves an event to another segment and user.
TEST_F(PgSinkTest, SegmentAnalysisCountsDistinctUsersAndBuyersThroughInsertsAndUpdatesThatMoveEvents) {
  const TestFile file = Claim("segments.csv");
  v1::Event a = MakeEvent(1);  // purchase of 40.00 by user 2, returning
  v1::Event b = MakeEvent(2);  // purchase of 40.00 by user 3, returning
  b.set_total_amount_cents(4000);
  v1::Event c = MakeEvent(3);
  c.set_user_id(2);  // user 2 again: two events, one user
  c.set_event_type(v1::EVENT_TYPE_VIEW);
  WriteOk(MakeBatch(file, 1, {a, b, c}));
  // concat_ws skips NULLs: no avg_order_value without a purchase.
  const char kView[] = "SELECT string_agg(concat_ws('|', user_segment, users, events, purchases, buyers, revenue, "
                       "avg_order_value, buyer_rate), ',' ORDER BY user_segment) FROM ecomstream.v_user_segment_analysis";
  EXPECT_EQ(Sql(kView), "returning|2|3|2|2|80.00|40.00|1.0000");
  // b moves to premium and becomes a view; a's user becomes anonymous with no segment.
  b.set_user_segment(v1::USER_SEGMENT_PREMIUM);
  b.set_event_type(v1::EVENT_TYPE_VIEW);
  a.set_user_segment(v1::USER_SEGMENT_UNSPECIFIED);
  a.set_user_id(0);
  WriteOk(MakeBatch(file, 4, {b, a}, {}, 0, true));
  EXPECT_EQ(Sql(kView), "premium|1|1|0|0|0.00|0.0000,returning|1|1|0|0|0.00|0.0000,unknown|1|1|1|1|40.00|40.00|1.0000");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.segment_users"), "3");
  EXPECT_EQ(StatsDrift(), "");
  // A delete by the owner goes through the delete trigger: the user's row goes with its last event.
  Sql("DELETE FROM ecomstream.events WHERE user_id = 0");
  EXPECT_EQ(Sql(kView), "premium|1|1|0|0|0.00|0.0000,returning|1|1|0|0|0.00|0.0000");
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, AddSegmentUsersRefusesCountsThatAreNotPositiveOrInconsistent) {
  for (const char* args : {"'{new}', '{1}', '{0}', '{0}', '{0}', '{0}'", "'{new}', '{1}', '{1}', '{2}', '{0}', '{0}'",
                           "'{new}', '{1}', '{1}', '{1}', '{-5}', '{1}'", "'{NULL}', '{1}', '{1}', '{0}', '{0}', '{0}'"}) {
    auto result = testing::SqlAs(writer_dsn_, absl::StrCat("SELECT ecomstream.add_segment_users(", args, ")"));
    EXPECT_FALSE(result.ok()) << args;
    EXPECT_THAT(result.status().ToString(), HasSubstr("every count must be positive and consistent")) << args;
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.segment_users"), "0");
  // The writer cannot subtract through the internal function either.
  auto internal = testing::SqlAs(writer_dsn_, "SELECT ecomstream.apply_segment_users('{new}', '{1}', '{-1}', '{0}', "
                                              "'{0}', '{0}')");
  EXPECT_FALSE(internal.ok());
  EXPECT_THAT(internal.status().ToString(), HasSubstr("permission denied"));
}

TEST_F(PgSinkTest, AddEventStatsRefusesCountsThatAreNotPositive) {
  auto result = testing::SqlAs(
      writer_dsn_, "SELECT ecomstream.add_event_stats('{2026-01-01 00:00:00+00}', '{view}', '{NULL}', '{0}', '{0}', '{0}')");
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.status().ToString(), HasSubstr("every count must be positive"));
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.event_stats_hourly"), "0");
}

// The next batch of a stream begins (inserts its new events) while this one is not committed.
// A new id in both waits for this one's commit, then trips the unique index: Begin gives up and
// the batch commits the careful way, its later row of the id winning.
TEST_F(PgSinkTest, BatchBegunAheadWaitsForTheOneBeforeAndItsLaterRowOfASharedIdWins) {
  const TestFile file = Claim("ahead.csv");
  v1::Event shared = MakeEvent(1);
  auto first = sink_->Prepare(MakeBatch(file, 1, {shared, MakeEvent(2)}));
  shared.set_quantity(9);
  shared.set_total_amount_cents(shared.price_cents() * 9);
  auto second = sink_->Prepare(MakeBatch(file, 3, {shared, MakeEvent(3)}, {}, 0, true));
  ASSERT_TRUE(first.ok() && second.ok());
  PgSink::BegunPtr first_begun = sink_->Begin(**first);
  ASSERT_NE(first_begun, nullptr);
  absl::Notification second_begun_done;
  PgSink::BegunPtr second_begun;
  std::thread ahead([&] {
    second_begun = sink_->Begin(**second);
    second_begun_done.Notify();
  });
  EXPECT_FALSE(second_begun_done.WaitForNotificationWithTimeout(absl::Milliseconds(300)))
      << "the second batch's insert of the shared id must wait for the first batch";
  int reruns = 0;
  auto first_ack = sink_->Commit(**first, std::move(first_begun), [&] { ++reruns; });
  ahead.join();
  ASSERT_TRUE(first_ack.ok()) << first_ack.status();
  EXPECT_EQ(first_ack->inserted(), 2);
  EXPECT_EQ(second_begun, nullptr) << "the shared id is stored now: Begin gave up";
  auto second_ack = sink_->Commit(**second, std::move(second_begun), [&] { ++reruns; });
  ASSERT_TRUE(second_ack.ok()) << second_ack.status();
  EXPECT_EQ(second_ack->inserted(), 1);
  EXPECT_EQ(second_ack->updated(), 1);
  EXPECT_EQ(reruns, 1) << "without a begun transaction Commit runs the whole one";
  EXPECT_EQ(Sql("SELECT string_agg(user_id || ':' || quantity, ',' ORDER BY user_id) FROM ecomstream.events"),
            absl::StrCat(MakeEvent(1).user_id(), ":9,", MakeEvent(2).user_id(), ":", MakeEvent(2).quantity(), ",",
                         MakeEvent(3).user_id(), ":", MakeEvent(3).quantity()));
  EXPECT_EQ(Sql("SELECT state, committed_through FROM ecomstream.ingest_files"), "committed|4");
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, BegunBatchWhoseLeaseIsLostCommitsNothing) {
  TestFile file = Claim("begun-stolen.csv", "processor-a", /*lease_ms=*/1);
  WriteOk(MakeBatch(file, 1, {MakeEvent(1)}));
  auto prepared = sink_->Prepare(MakeBatch(file, 2, {MakeEvent(2), MakeEvent(3)}));
  ASSERT_TRUE(prepared.ok());
  PgSink::BegunPtr begun = sink_->Begin(**prepared);
  ASSERT_NE(begun, nullptr);
  absl::SleepFor(absl::Milliseconds(20));
  // The claim goes through while the begun batch is open: it holds no lock on the file's row.
  auto taken = ledger_->Claim(testing::MakeClaimRequest(file.name, "processor-b"));
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->outcome(), v1::ClaimFileResponse::OUTCOME_RESUME);
  auto ack = sink_->Commit(**prepared, std::move(begun), [] {});
  EXPECT_EQ(ack.status().code(), absl::StatusCode::kAborted) << ack.status();
  EXPECT_EQ(EventCount(), "1") << "the begun inserts were rolled back";
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, BegunBatchUpdatingAStoredEventToARejectedValueRunsAgainOnceAndDeadLettersOnlyIt) {
  const TestFile file = Claim("begun-rejected.csv");
  WriteOk(MakeBatch(file, 1, {MakeEvent(1)}));
  v1::Event bad = MakeEvent(1);
  bad.set_geo_country("zz");  // only the UPDATE of the stored row meets the CHECK
  auto prepared = sink_->Prepare(MakeBatch(file, 2, {bad, MakeEvent(2)}, {}, 0, true));
  ASSERT_TRUE(prepared.ok());
  PgSink::BegunPtr begun = sink_->Begin(**prepared);
  ASSERT_NE(begun, nullptr) << "the new event inserts fine; the stored one waits for the update";
  int reruns = 0;
  auto ack = sink_->Commit(**prepared, std::move(begun), [&] { ++reruns; });
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(reruns, 1);
  EXPECT_EQ(ack->inserted(), 1);
  EXPECT_EQ(ack->updated(), 0);
  EXPECT_EQ(ack->dead_lettered(), 1);
  EXPECT_EQ(EventCount(), "2");
  EXPECT_EQ(Sql("SELECT string_agg(geo_country, ',') FROM ecomstream.events"), "DE,DE");
  EXPECT_EQ(Sql("SELECT row_number, reasons FROM ecomstream.dead_letter_events"), "2|{database_rejected}");
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, BeginGivesUpWithoutAnIdleSessionAndCommitStillWrites) {
  const TestFile file = Claim("busy.csv");
  std::vector<PgPool::Lease> held;
  for (int i = 0; i < 8; ++i) {  // the fixture's max_connections
    auto lease = pool_->Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    held.push_back(*std::move(lease));
  }
  auto prepared = sink_->Prepare(MakeBatch(file, 1, {MakeEvent(1)}));
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(sink_->Begin(**prepared), nullptr);
  held.clear();
  int reruns = 0;
  auto ack = sink_->Commit(**prepared, nullptr, [&] { ++reruns; });
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->inserted(), 1);
  EXPECT_EQ(reruns, 1);
}

// Every table a batch writes, and the event_sources key sequence, as one line.
constexpr char kWrittenState[] = R"sql(
SELECT (SELECT count(*) FROM ecomstream.events) || ',' || (SELECT count(*) FROM ecomstream.ingest_files) || ',' ||
       (SELECT count(*) FROM ecomstream.ingest_batches) || ',' || (SELECT count(*) FROM ecomstream.event_sources) || ',' ||
       (SELECT count(*) FROM ecomstream.event_stats_hourly) || ',' || (SELECT count(*) FROM ecomstream.segment_users) || ',' ||
       (SELECT count(*) FROM ecomstream.segment_totals) || ',' || (SELECT count(*) FROM ecomstream.dead_letter_events) ||
       ' seq ' || (SELECT last_value || ',' || is_called FROM ecomstream.event_sources_source_id_seq))sql";

TEST_F(PgSinkTest, WarmUpRehearsesABatchOnEachSessionAsTheWriterRoleAndChangesNoDataNorSequence) {
  // Sessions that log in from now on count their PL/pgSQL calls.
  Sql(absl::StrCat("ALTER DATABASE ", testing::DatabaseName(owner_dsn_), " SET track_functions = 'pl'"));
  PgPoolOptions options;
  options.dsn = writer_dsn_;  // a member of ecomstream_writer only
  options.max_connections = 4;
  options.required_schema_version = testing::LatestSchemaVersion();
  PgPool pool(options);
  ASSERT_TRUE(pool.Start().ok()) << pool.last_error();
  PgSink sink(&pool, metrics_.get(), tracer_.get());
  FileLedger ledger(&pool, metrics_.get());
  const std::string before = Sql(kWrittenState);
  ASSERT_EQ(before.substr(0, before.find(' ')), "0,0,0,0,0,0,0,0");

  ASSERT_TRUE(sink.WarmUp(2).ok());
  ASSERT_TRUE(ledger.WarmUp().ok());
  EXPECT_EQ(Sql(kWrittenState), before);
  // Both sessions hold the batch's prepared statements (and the ledger's claim, on one of them),
  // and report their function calls as soon as they are idle.
  const auto flush_stats = [&pool] {
    std::vector<PgPool::Lease> leases;
    std::vector<std::string> prepared;
    for (int i = 0; i < 2; ++i) {
      auto lease = pool.Acquire();
      if (!lease.ok()) return std::vector<std::string>{lease.status().ToString()};
      pqxx::nontransaction query(**lease);
      prepared.push_back(query.exec1("SELECT string_agg(name, ',' ORDER BY name) FROM pg_prepared_statements, "
                                     "pg_stat_force_next_flush()")[0]
                             .c_str());
      leases.push_back(*std::move(lease));
    }
    return prepared;
  };
  EXPECT_THAT(flush_stats(),
              ::testing::UnorderedElementsAre(
                  "ecomstream_sink_finish_batch,ecomstream_sink_lock_file_after_insert",
                  "ecomstream_ledger_insert_claim,ecomstream_sink_finish_batch,ecomstream_sink_lock_file_after_insert"));
  // Each of the two sessions called both aggregate functions once (on empty arrays).
  const auto calls = [&] {
    return Sql("SELECT string_agg(funcname || ':' || calls, ',' ORDER BY funcname) FROM pg_stat_user_functions "
               "WHERE schemaname = 'ecomstream' AND funcname IN ('add_event_stats', 'add_segment_users')");
  };
  EXPECT_TRUE(ecomstream::testing::WaitUntil([&] { return calls() == "add_event_stats:2,add_segment_users:2"; }, absl::Seconds(20)))
      << calls();

  // The sessions set up ahead then take batches as any other.
  v1::ClaimFileRequest request = testing::MakeClaimRequest("after-warm-up.csv", "test-processor");
  auto claimed = ledger.Claim(request);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->outcome(), v1::ClaimFileResponse::OUTCOME_CLAIMED);
  const TestFile file{request.file_id(), request.file_name(), claimed->claim_token()};
  auto ack = sink.Write(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)}, {}, 0, /*last_batch=*/true));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->inserted(), 2);
  EXPECT_TRUE(ack->file_committed());
  EXPECT_EQ(Sql("SELECT file_id, state, rows FROM ecomstream.ingest_files"), request.file_id() + "|committed|2");
  EXPECT_EQ(StatsDrift(), "");
  flush_stats();
  EXPECT_TRUE(ecomstream::testing::WaitUntil([&] { return calls() == "add_event_stats:3,add_segment_users:3"; }, absl::Seconds(20)))
      << calls();
}

TEST_F(PgSinkTest, WarmUpWithoutADatabaseIsUnavailableAndWritesStillSetUpTheirSessions) {
  PgPoolOptions options;
  options.dsn = absl::StrCat("host=127.0.0.1 port=", ecomstream::testing::FreePort(), " dbname=nothing connect_timeout=2");
  options.max_backoff = absl::Milliseconds(200);
  PgPool down(options);
  EXPECT_FALSE(down.Start().ok());
  PgSink sink(&down, metrics_.get(), tracer_.get());
  FileLedger ledger(&down, metrics_.get());
  EXPECT_EQ(sink.WarmUp(2).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ledger.WarmUp().code(), absl::StatusCode::kUnavailable);

  // The fixture's sink was never warmed up: its first batch sets its session up.
  const TestFile file = Claim("cold.csv");
  EXPECT_EQ(WriteOk(MakeBatch(file, 1, {MakeEvent(1)})).inserted(), 1);
  EXPECT_EQ(StatsDrift(), "");
}

TEST_F(PgSinkTest, LastBatchCommitsTheFile) {
  const TestFile file = Claim("whole.csv");
  WriteOk(MakeBatch(file, 1, {MakeEvent(1)}));
  const v1::Ack ack = WriteOk(MakeBatch(file, 2, {MakeEvent(2)}, {}, 0, /*last_batch=*/true));
  EXPECT_TRUE(ack.file_committed());
  EXPECT_EQ(Sql("SELECT state, total_rows, committed_through, batches, committed_at IS NOT NULL FROM ecomstream.ingest_files"),
            "committed|2|2|2|t");
  // Its replay still says the file is committed; a new batch for it is refused.
  EXPECT_TRUE(WriteOk(MakeBatch(file, 2, {MakeEvent(2)}, {}, 0, true)).file_committed());
  auto late = sink_->Write(MakeBatch(file, 3, {MakeEvent(3)}));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(late.status().message()), HasSubstr("is already committed"));
}

TEST_F(PgSinkTest, EmptyFileIsOneEmptyLastBatch) {
  const TestFile file = Claim("empty.csv");
  const v1::Ack ack = WriteOk(MakeBatch(file, 1, {}, {}, 0, true));
  EXPECT_EQ(ack.last_row(), 0);
  EXPECT_TRUE(ack.file_committed());
  EXPECT_EQ(Sql("SELECT state, rows FROM ecomstream.ingest_files"), "committed|0");
}

TEST_F(PgSinkTest, BatchesOutOfRowOrderAreRefused) {
  const TestFile file = Claim("gap.csv");
  auto gap = sink_->Write(MakeBatch(file, 5, {MakeEvent(1)}));
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(gap.status().message()), HasSubstr("do not follow its committed rows 1-0"));
  WriteOk(MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)}));
  // Same first row, different range: not the batch the ledger holds.
  auto overlap = sink_->Write(MakeBatch(file, 2, {MakeEvent(3)}));
  EXPECT_EQ(overlap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EventCount(), "2");
}

TEST_F(PgSinkTest, BatchOfAnUnclaimedFileIsRefused) {
  TestFile file{testing::FileIdFor("never"), "never.csv", FormatUuid(NewUuidV4())};
  auto ack = sink_->Write(MakeBatch(file, 1, {MakeEvent(1)}));
  EXPECT_EQ(ack.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ack.status().message()), HasSubstr("was never claimed: call ClaimFile"));
  EXPECT_EQ(EventCount(), "0");
}

TEST_F(PgSinkTest, BatchWithAStaleClaimTokenIsAbortedUnlessAlreadyCommitted) {
  TestFile file = Claim("stolen.csv", "processor-a", /*lease_ms=*/1);
  const v1::Batch committed = MakeBatch(file, 1, {MakeEvent(1)});
  WriteOk(committed);
  absl::SleepFor(absl::Milliseconds(20));  // the 1 ms lease, extended by 1 ms, has expired
  auto taken = ledger_->Claim(testing::MakeClaimRequest(file.name, "processor-b"));
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->outcome(), v1::ClaimFileResponse::OUTCOME_RESUME);
  EXPECT_EQ(taken->resume_after_row(), 1);
  // processor-a's next batch: refused, its lease is gone.
  auto stale = sink_->Write(MakeBatch(file, 2, {MakeEvent(2)}));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("now held by claimant 'processor-b'"));
  // ...but its replay of a committed batch is still answered from the ledger.
  EXPECT_TRUE(WriteOk(committed).already_committed());
  file.claim_token = taken->claim_token();
  EXPECT_EQ(WriteOk(MakeBatch(file, 2, {MakeEvent(2)})).inserted(), 1);
}

TEST_F(PgSinkTest, MalformedBatchWritesNothing) {
  const TestFile file = Claim("malformed.csv");
  v1::Batch batch = MakeBatch(file, 1, {MakeEvent(1), MakeEvent(2)});
  batch.mutable_events(1)->set_event_id("short");
  auto ack = sink_->Write(batch);
  EXPECT_EQ(ack.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EventCount(), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_batches"), "0");
}

TEST_F(PgSinkTest, GarbageTraceparentStoresNoTraceId) {
  const TestFile file = Claim("trace.csv");
  v1::Batch batch = MakeBatch(file, 1, {MakeEvent(1)});
  batch.set_traceparent("00-'; DROP TABLE x; --");
  WriteOk(batch);
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.v_events WHERE trace_id IS NULL AND source_file = 'trace.csv'"), "1");
  EXPECT_EQ(Sql("SELECT trace_id IS NULL FROM ecomstream.ingest_batches"), "t");
}

// Collects ended spans.
class RecordingProcessor : public tracing::SpanProcessor {
 public:
  void OnEnd(std::unique_ptr<tracing::SpanData> span) override {
    absl::MutexLock lock(&mu_);
    spans_.push_back(*span);
  }
  absl::Status ForceFlush(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Shutdown(absl::Duration) override { return absl::OkStatus(); }
  tracing::ExportStats stats() const override { return {}; }
  std::vector<tracing::SpanData> spans() {
    absl::MutexLock lock(&mu_);
    return spans_;
  }

 private:
  absl::Mutex mu_;
  std::vector<tracing::SpanData> spans_;
};

TEST_F(PgSinkTest, BatchWriteAndDbCommitSpansContinueTheBatchTrace) {
  auto processor = std::make_unique<RecordingProcessor>();
  RecordingProcessor* recorded = processor.get();
  tracing::Tracer tracer(tracing::TracerOptions(), std::move(processor));
  PgSink sink(pool_.get(), metrics_.get(), &tracer);
  const TestFile file = Claim("spans.csv");
  ASSERT_TRUE(sink.Write(MakeBatch(file, 1, {MakeEvent(1)})).ok());
  const std::vector<tracing::SpanData> spans = recorded->spans();
  ASSERT_EQ(spans.size(), 2u);
  const tracing::SpanData& commit = spans[0];
  const tracing::SpanData& write = spans[1];
  EXPECT_EQ(commit.name, "db.commit");
  EXPECT_EQ(write.name, "batch.write");
  EXPECT_EQ(write.kind, tracing::SpanKind::kServer);
  EXPECT_EQ(write.trace_id.ToHex(), "4bf92f3577b34da6a3ce929d0e0e4736");  // MakeBatch's traceparent
  EXPECT_EQ(write.parent_span_id.ToHex(), "00f067aa0ba902b7");
  EXPECT_EQ(commit.trace_id, write.trace_id);
  EXPECT_EQ(commit.parent_span_id, write.span_id);
  EXPECT_EQ(write.status_code, tracing::SpanStatusCode::kOk);
}

// A begun batch that runs again is still one batch.write, dated from its Begin, with a db.commit
// per transaction (attempt 1, failed; attempt 2, committed). A batch whose Begin failed (a new
// event the CHECK rejects) leaves no span of its own before Commit's.
TEST_F(PgSinkTest, ABatchThatRunsAgainIsOneBatchWriteWithADbCommitPerTransaction) {
  auto processor = std::make_unique<RecordingProcessor>();
  RecordingProcessor* recorded = processor.get();
  tracing::Tracer tracer(tracing::TracerOptions(), std::move(processor));
  PgSink sink(pool_.get(), metrics_.get(), &tracer);
  const TestFile file = Claim("rerun-spans.csv");
  ASSERT_TRUE(sink.Write(MakeBatch(file, 1, {MakeEvent(1)})).ok());
  v1::Event bad_update = MakeEvent(1);
  bad_update.set_geo_country("zz");
  auto prepared = sink.Prepare(MakeBatch(file, 2, {bad_update, MakeEvent(2)}));
  ASSERT_TRUE(prepared.ok());
  const int64_t before_begin_ns = absl::ToUnixNanos(absl::Now());
  PgSink::BegunPtr begun = sink.Begin(**prepared);
  ASSERT_NE(begun, nullptr);
  ASSERT_TRUE(sink.Commit(**prepared, std::move(begun), [] {}).ok());
  v1::Event bad_insert = MakeEvent(3);
  bad_insert.set_geo_country("zz");
  auto rejected = sink.Prepare(MakeBatch(file, 4, {bad_insert}));
  ASSERT_TRUE(rejected.ok());
  EXPECT_EQ(sink.Begin(**rejected), nullptr);
  EXPECT_EQ(recorded->spans().size(), 5u) << "batch 1: 2 spans, batch 2: 3, the failed Begin: none";
  ASSERT_TRUE(sink.Commit(**rejected, nullptr, [] {}).ok());

  const std::vector<tracing::SpanData> spans = recorded->spans();
  ASSERT_EQ(spans.size(), 7u);
  const auto attempt = [](const tracing::SpanData& span) {
    for (const tracing::Attribute& a : span.attributes) {
      if (a.key == "attempt") return std::get<int64_t>(a.value);
    }
    return int64_t{0};
  };
  // Batch 2: db.commit attempt 1 (error), db.commit attempt 2 (ok), then its batch.write.
  const tracing::SpanData& first_try = spans[2];
  const tracing::SpanData& second_try = spans[3];
  const tracing::SpanData& write = spans[4];
  EXPECT_EQ(first_try.name, "db.commit");
  EXPECT_EQ(attempt(first_try), 1);
  EXPECT_EQ(first_try.status_code, tracing::SpanStatusCode::kError);
  EXPECT_EQ(second_try.name, "db.commit");
  EXPECT_EQ(attempt(second_try), 2);
  EXPECT_EQ(second_try.status_code, tracing::SpanStatusCode::kOk);
  EXPECT_EQ(write.name, "batch.write");
  EXPECT_EQ(write.status_code, tracing::SpanStatusCode::kOk);
  EXPECT_EQ(first_try.parent_span_id, write.span_id);
  EXPECT_EQ(second_try.parent_span_id, write.span_id);
  EXPECT_GE(write.start_unix_nanos, before_begin_ns);
  EXPECT_EQ(first_try.start_unix_nanos, write.start_unix_nanos) << "both dated back to the Begin";
  EXPECT_GE(second_try.start_unix_nanos, first_try.end_unix_nanos);
  EXPECT_GE(write.end_unix_nanos, second_try.end_unix_nanos);
  // Batch 3, committed without a begun transaction: one batch.write, one db.commit.
  EXPECT_EQ(spans[5].name, "db.commit");
  EXPECT_EQ(attempt(spans[5]), 1);
  EXPECT_EQ(spans[6].name, "batch.write");
  // Batch 1 finished the fast way, batch 2 ran again, batch 3 was never begun.
  const std::string text = registry_.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_fast_path_total{result=\"finished\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_writer_fast_path_total{result=\"ran_again\"} 1\n"));
}

TEST_F(PgSinkTest, ViewsAnswerForTheAnalyticsRole) {
  const TestFile file = Claim("views.csv");
  v1::Event view = MakeEvent(2);
  view.set_event_type(v1::EVENT_TYPE_VIEW);
  v1::Batch batch = MakeBatch(file, 1, {MakeEvent(1), view}, {MakeDeadLetter("x", {v1::REJECT_REASON_BAD_PRICE})});
  batch.set_file_drop_time_us(NowMicros() - 2'000'000);
  WriteOk(batch);
  const std::string analytics = testing::LoginDsn(owner_dsn_, "ecomstream_analytics");
  const auto query = [&](absl::string_view sql) {
    auto rows = testing::SqlAs(analytics, sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : "";
  };
  EXPECT_EQ(query("SELECT count(*), min(source_file) FROM ecomstream.purchases"), "1|views.csv");
  EXPECT_EQ(query("SELECT count(*), min(source_file), min(trace_id) FROM ecomstream.v_events"),
            "2|views.csv|4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(query("SELECT category, views, purchases, revenue, view_to_purchase_rate FROM ecomstream.v_category_performance"),
            "electronics|1|1|40.00|1.0000");
  EXPECT_EQ(query("SELECT rows, inserted, dead_lettered, dead_letter_rate, reasons FROM ecomstream.v_data_quality_dashboard"),
            R"(3|2|1|0.3333|{"bad_price": 1})");
  EXPECT_EQ(query("SELECT batches, rows, p50_seconds BETWEEN 1.5 AND 60, p99_seconds >= p50_seconds "
                  "FROM ecomstream.v_pipeline_latency"),
            "1|3|t|t");
  EXPECT_EQ(query("SELECT user_segment, users, events, purchases, revenue FROM ecomstream.v_user_segment_analysis"),
            "returning|2|2|1|40.00");
  EXPECT_EQ(query("SELECT count(*) FROM ecomstream.v_hourly_event_summary"), "2");
}

}  // namespace
}  // namespace ecomstream::writer

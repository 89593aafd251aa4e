// Redrive against a real PostgreSQL, logged in as ecomstream_writer: listing, the one
// transaction that inserts and marks, idempotence, and what stays a dead letter.
#include "services/writer/pg/redrive_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/uuid.h"
#include "services/writer/pg/testing/writer_testing.h"

namespace ecomstream::writer {
namespace {

using ::testing::ElementsAre;
using testing::MakeBatch;
using testing::MakeDeadLetter;
using testing::MakeEvent;
using testing::TestFile;

constexpr char kRunId[] = "0b0e8b2a-4a8e-4c8e-9d4e-2f1f0c1a2b3c";
constexpr char kOtherRunId[] = "1c1f9c3b-5b9f-4d9f-8e5f-3a2a1d2b3c4d";

class RedriveStoreTest : public testing::WriterDbTest {
 protected:
  void SetUp() override {
    WriterDbTest::SetUp();
    store_ = std::make_unique<RedriveStore>(pool_.get());
  }

  // A committed file "f.csv" (header recorded) with one event (row 1) and dead letters on rows
  // 2..1+n, reasons unknown_category except the last, bad_price.
  void LoadFile(int n) {
    v1::ClaimFileRequest request = testing::MakeClaimRequest("f.csv", "p1");
    request.set_header("event_id,user_id,event_type,product_id,price,event_time");
    request.set_reference_time_us(1'767'225'600'000'000);
    auto claim = ledger_->Claim(request);
    ASSERT_TRUE(claim.ok()) << claim.status();
    file_ = TestFile{request.file_id(), "f.csv", claim->claim_token()};
    std::vector<v1::DeadLetter> dead;
    for (int i = 0; i < n; ++i) {
      dead.push_back(MakeDeadLetter(absl::StrCat("raw,", i),
                                    {i + 1 < n ? v1::REJECT_REASON_UNKNOWN_CATEGORY : v1::REJECT_REASON_BAD_PRICE}));
    }
    auto ack = sink_->Write(MakeBatch(file_, 1, {MakeEvent(1)}, dead, 0, /*last_batch=*/true));
    ASSERT_TRUE(ack.ok()) << ack.status();
  }

  std::vector<int64_t> DeadLetterIds() {
    std::vector<int64_t> ids;
    for (absl::string_view id : absl::StrSplit(Sql("SELECT string_agg(id::text, ',' ORDER BY row_number) "
                                                    "FROM ecomstream.dead_letter_events"),
                                               ',', absl::SkipEmpty())) {
      ids.push_back(std::stoll(std::string(id)));
    }
    return ids;
  }

  v1::RedriveItem EventItem(int64_t id, uint64_t n) {
    v1::RedriveItem item;
    item.set_dead_letter_id(id);
    *item.mutable_event() = MakeEvent(n);
    return item;
  }

  v1::RedriveRequest Request(const char* run_id, int64_t first_seq, std::vector<v1::RedriveItem> items) {
    v1::RedriveRequest request;
    request.set_run_id(run_id);
    request.set_first_seq(first_seq);
    request.set_rules_version("v2");
    for (auto& item : items) *request.add_items() = std::move(item);
    return request;
  }

  // sum(inserted) over the batch ledger equals the events table; each file's live dead letters
  // equal its dead_lettered - redriven; event_stats_hourly equals a fresh GROUP BY.
  void ExpectLedgerExact() {
    EXPECT_EQ(Sql("SELECT (SELECT sum(inserted) FROM ecomstream.ingest_batches) = (SELECT count(*) FROM ecomstream.events)"),
              "t");
    EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_files f WHERE f.dead_lettered - f.redriven <> "
                  "(SELECT count(*) FROM ecomstream.dead_letter_events d WHERE d.file_id = f.file_id AND "
                  "d.redriven_at IS NULL)"),
              "0");
    EXPECT_EQ(StatsDrift(), "");
  }

  std::unique_ptr<RedriveStore> store_;
  TestFile file_;
};

TEST_F(RedriveStoreTest, ListPagesThroughDeadLettersWithTheirFilesHeaderAndFilters) {
  LoadFile(3);
  const std::vector<int64_t> ids = DeadLetterIds();
  v1::ListDeadLettersRequest request;
  request.set_limit(2);
  auto page = store_->List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->dead_letters_size(), 2);
  const v1::StoredDeadLetter& first = page->dead_letters(0);
  EXPECT_EQ(first.id(), ids[0]);
  EXPECT_EQ(first.file_name(), "f.csv");
  EXPECT_EQ(first.row(), 2);
  EXPECT_EQ(first.raw(), "raw,0");
  EXPECT_THAT(first.reasons(), ElementsAre(v1::REJECT_REASON_UNKNOWN_CATEGORY));
  EXPECT_EQ(first.header(), "event_id,user_id,event_type,product_id,price,event_time");
  EXPECT_EQ(first.reference_time_us(), 1'767'225'600'000'000);

  request.set_after_id(page->dead_letters(1).id());
  page = store_->List(request);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->dead_letters_size(), 1);
  EXPECT_EQ(page->dead_letters(0).id(), ids[2]);

  request.set_after_id(0);
  request.mutable_filter()->add_reasons(v1::REJECT_REASON_BAD_PRICE);
  page = store_->List(request);
  ASSERT_EQ(page->dead_letters_size(), 1);
  EXPECT_EQ(page->dead_letters(0).raw(), "raw,2");
  request.mutable_filter()->set_file_name("other.csv");
  EXPECT_EQ(store_->List(request)->dead_letters_size(), 0);
}

TEST_F(RedriveStoreTest, ARedriveInsertsTheEventAndMarksItsDeadLetterInOneTransactionOnce) {
  LoadFile(3);
  const std::vector<int64_t> ids = DeadLetterIds();
  const v1::RedriveRequest request = Request(kRunId, 1, {EventItem(ids[0], 101), EventItem(ids[1], 102)});
  auto done = store_->Redrive(request);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->inserted(), 2);
  EXPECT_EQ(done->already_redriven(), 0);
  EXPECT_FALSE(done->already_committed());
  std::string event_id;
  AppendUuid(MakeEvent(101).event_id(), &event_id);
  EXPECT_EQ(Sql(absl::StrCat("SELECT redriven_at IS NOT NULL, redriven_event_id, redrive_rules_version, redrive_attempts "
                             "FROM ecomstream.dead_letter_events WHERE id = ", ids[0])),
            absl::StrCat("t|", event_id, "|v2|1"));
  EXPECT_EQ(Sql("SELECT source_file FROM ecomstream.v_events WHERE event_id = '" + event_id + "'"), "f.csv");
  EXPECT_EQ(Sql("SELECT file_id, first_row, last_row, rows, inserted, unchanged, duplicates, dead_lettered, source, "
                "rules_version FROM ecomstream.ingest_batches WHERE source = 'redrive'"),
            absl::StrCat("redrive:", kRunId, "|1|2|2|2|0|0|0|redrive|v2"));
  EXPECT_EQ(Sql("SELECT redriven FROM ecomstream.ingest_files"), "2");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "3");
  ExpectLedgerExact();

  // The same request again (a retry after a lost answer): the ledger answers, nothing changes.
  auto again = store_->Redrive(request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already_committed());
  EXPECT_EQ(again->inserted(), 2);
  // Another run over the same dead letters: already redriven, nothing inserted.
  auto rerun = store_->Redrive(Request(kOtherRunId, 1, {EventItem(ids[0], 101), EventItem(ids[1], 102)}));
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  EXPECT_EQ(rerun->inserted(), 0);
  EXPECT_EQ(rerun->already_redriven(), 2);
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events"), "3");
  EXPECT_EQ(Sql("SELECT redrive_attempts FROM ecomstream.dead_letter_events WHERE id = " + std::to_string(ids[0])), "1");
  ExpectLedgerExact();

  v1::ListDeadLettersRequest list;
  list.set_limit(10);
  auto left = store_->List(list);
  ASSERT_EQ(left->dead_letters_size(), 1) << "redriven dead letters are not listed again";
  EXPECT_EQ(left->dead_letters(0).id(), ids[2]);
}

TEST_F(RedriveStoreTest, RowsThatStillFailKeepTheirPlaceWithTheNewReasons) {
  LoadFile(2);
  const std::vector<int64_t> ids = DeadLetterIds();
  v1::RedriveItem item;
  item.set_dead_letter_id(ids[1]);
  *item.mutable_still_failing() = MakeDeadLetter("raw,1", {v1::REJECT_REASON_BAD_PRICE, v1::REJECT_REASON_BAD_COUNTRY});
  item.mutable_still_failing()->set_detail("price: negative");
  item.mutable_still_failing()->set_column("price");
  auto done = store_->Redrive(Request(kRunId, 1, {item}));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->still_failing(), 1);
  EXPECT_EQ(Sql("SELECT reasons, detail, column_name, redriven_at IS NULL, redrive_attempts, raw = 'raw,1'::bytea "
                "FROM ecomstream.dead_letter_events WHERE id = " + std::to_string(ids[1])),
            "{bad_price,bad_country}|price: negative|price|t|1|t");
  EXPECT_EQ(Sql("SELECT rows, dead_lettered, reason_counts FROM ecomstream.ingest_batches WHERE source = 'redrive'"),
            "1|1|{\"bad_price\": 1, \"bad_country\": 1}");
  ExpectLedgerExact();
}

TEST_F(RedriveStoreTest, AStoredEventIsNeverOverwrittenButTheSameContentCountsUnchanged) {
  LoadFile(3);
  const std::vector<int64_t> ids = DeadLetterIds();
  v1::RedriveItem same = EventItem(ids[0], 1);  // the event row 1 already stored
  v1::RedriveItem other = EventItem(ids[1], 1);
  other.mutable_event()->set_price_cents(5);
  auto done = store_->Redrive(Request(kRunId, 1, {same, other}));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->inserted(), 0);
  EXPECT_EQ(done->unchanged(), 1);
  EXPECT_EQ(done->still_failing(), 1);
  EXPECT_EQ(Sql("SELECT reasons, column_name FROM ecomstream.dead_letter_events WHERE id = " + std::to_string(ids[1])),
            "{conflicting_duplicate}|event_id");
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.events WHERE price = 20.00"), "1") << "not overwritten";
  ExpectLedgerExact();
}

TEST_F(RedriveStoreTest, AnEventTheDatabaseRefusesStaysADeadLetterWithTheServersMessage) {
  LoadFile(2);
  const std::vector<int64_t> ids = DeadLetterIds();
  v1::RedriveItem bad = EventItem(ids[0], 201);
  bad.mutable_event()->set_event_time_us(std::numeric_limits<int64_t>::max());
  auto done = store_->Redrive(Request(kRunId, 1, {bad, EventItem(ids[1], 202)}));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->inserted(), 1);
  EXPECT_EQ(done->still_failing(), 1);
  EXPECT_EQ(Sql("SELECT reasons, detail LIKE 'the database refused the event: %' FROM ecomstream.dead_letter_events "
                "WHERE id = " + std::to_string(ids[0])),
            "{database_rejected}|t");
  ExpectLedgerExact();
}

TEST_F(RedriveStoreTest, HostileRequestsAreRefusedNamingTheField) {
  LoadFile(1);
  v1::ListDeadLettersRequest list;
  list.set_limit(0);
  EXPECT_EQ(store_->List(list).status().message(), "limit 0 is not in 1..1000");
  list.set_limit(10);
  list.mutable_filter()->add_reasons(static_cast<v1::RejectReason>(999));
  EXPECT_EQ(store_->List(list).status().message(), "filter.reasons holds 999, not a reject reason");
  list.mutable_filter()->clear_reasons();
  list.mutable_filter()->set_file_name(std::string("a\0b", 3));
  EXPECT_EQ(store_->List(list).status().code(), absl::StatusCode::kInvalidArgument);
  list.mutable_filter()->clear_file_name();
  list.mutable_filter()->set_from_us(20);
  list.mutable_filter()->set_to_us(10);
  EXPECT_EQ(store_->List(list).status().message(), "filter time range [20, 10) is empty or negative");

  const int64_t id = DeadLetterIds()[0];
  auto refused = [&](v1::RedriveRequest request) { return std::string(store_->Redrive(request).status().message()); };
  EXPECT_EQ(refused(Request("not-a-uuid", 1, {EventItem(id, 1)})), "run_id \"not-a-uuid\" is not a UUID");
  EXPECT_EQ(refused(Request(kRunId, 0, {EventItem(id, 1)})), "first_seq must be at least 1");
  EXPECT_EQ(refused(Request(kRunId, 1, {})), "items: 0 is not in 1..5000");
  EXPECT_EQ(refused(Request(kRunId, 1, {EventItem(id, 1), EventItem(id, 2)})),
            absl::StrCat("items[1] (dead letter ", id, "): listed twice"));
  v1::RedriveItem empty;
  empty.set_dead_letter_id(id);
  EXPECT_EQ(refused(Request(kRunId, 1, {empty})), absl::StrCat("items[0] (dead letter ", id, "): neither event nor still_failing"));
  v1::RedriveItem short_id = EventItem(id, 1);
  short_id.mutable_event()->set_event_id("abc");
  EXPECT_EQ(refused(Request(kRunId, 1, {short_id})), absl::StrCat("items[0] (dead letter ", id, "): event_id is not 16 bytes"));
  v1::RedriveItem nul = EventItem(id, 1);
  nul.mutable_event()->set_geo_city(std::string("x\0y", 3));
  EXPECT_THAT(refused(Request(kRunId, 1, {nul})), ::testing::StartsWith(absl::StrCat("items[0] (dead letter ", id, "): geo_city")));
  v1::RedriveItem no_reason;
  no_reason.set_dead_letter_id(id);
  no_reason.mutable_still_failing()->set_detail("x");
  EXPECT_EQ(refused(Request(kRunId, 1, {no_reason})), absl::StrCat("items[0] (dead letter ", id, "): still_failing has no reason"));
  EXPECT_EQ(Sql("SELECT count(*) FROM ecomstream.ingest_batches WHERE source = 'redrive'"), "0");
}

}  // namespace
}  // namespace ecomstream::writer

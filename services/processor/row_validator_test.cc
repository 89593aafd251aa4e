#include "services/processor/row_validator.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/csv.h"
#include "common/uuid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/csv_reader.h"
#include "services/processor/earlier_rows.h"

namespace ecomstream::processor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t k2024 = 1704067200LL * 1000000;  // 2024-01-01T00:00:00Z
constexpr int64_t kHour = 3600LL * 1000000;
constexpr int64_t kReference = k2024 + kHour;      // the file's time: 01:00Z

constexpr absl::string_view kAnEventId = "018f3a6e-1b2c-7d3e-8f40-123456789abc";
constexpr absl::string_view kASessionId = "5f0c3c1e-9b7a-4d2e-8c11-0123456789ab";

// A valid v3 row (values by column), to be overridden per test.
std::map<Column, std::string> ValidRow() {
  return {{Column::kEventId, std::string(kAnEventId)},
          {Column::kUserId, "42"},
          {Column::kEventType, "purchase"},
          {Column::kProductId, "100005"},
          {Column::kPrice, "19.99"},
          {Column::kEventTime, "2024-01-01T00:30:00Z"},
          {Column::kSessionId, std::string(kASessionId)},
          {Column::kCategory, "electronics"},
          {Column::kQuantity, "2"},
          {Column::kUserSegment, "returning"},
          {Column::kDeviceType, "mobile"},
          {Column::kBrowser, "chrome"},
          {Column::kGeoCountry, "US"},
          {Column::kGeoCity, "Boston"},
          {Column::kReferrer, "google"},
          {Column::kCampaignId, "spring24"}};
}

std::string Header(int version) {
  std::vector<std::string> names;
  for (int c = 0; c < csv_schema::ColumnCount(version); ++c) names.emplace_back(ColumnName(Column(c)));
  return absl::StrJoin(names, ",");
}

std::string Line(const std::map<Column, std::string>& values, int version = 3) {
  std::string line;
  for (int c = 0; c < csv_schema::ColumnCount(version); ++c) {
    if (c > 0) line += ',';
    AppendCsvField(values.at(Column(c)), &line);
  }
  return line;
}

std::map<Column, std::string> With(Column column, std::string value) {
  auto row = ValidRow();
  row[column] = std::move(value);
  return row;
}

struct Result {
  RowOutcome outcome;
  v1::Event event;
  v1::DeadLetter dead_letter;
};

// How the validator gets an earlier row back for its duplicate check.
enum class Earlier { kKept, kReread };

// Reads `body` (a header line is prepended, after `prefix`) and validates every row.
std::vector<Result> ValidateText(const std::string& body, int version = 3, size_t max_row_bytes = 65536,
                                 Earlier earlier = Earlier::kKept, const std::string& prefix = "") {
  const std::string text = prefix + Header(version) + "\n" + body;
  StringByteSource source(text);
  const CsvReaderOptions csv{max_row_bytes, 4096};
  CsvReader reader(&source, csv);
  CsvRecord record;
  EXPECT_TRUE(*reader.Next(&record));
  absl::StatusOr<Schema> schema = SchemaRegistry::Detect(record.fields);
  EXPECT_TRUE(schema.ok());
  RowValidatorOptions options{kReference, kHour, kHour, max_row_bytes};
  RereadRows reread(
      [&text](uint64_t offset) -> absl::StatusOr<std::unique_ptr<ByteSource>> {
        return std::make_unique<StringByteSource>(absl::string_view(text).substr(offset));
      },
      csv);
  if (earlier == Earlier::kReread) {
    options.earlier_rows = &reread;
    options.file_bytes = static_cast<int64_t>(text.size());
  }
  RowValidator validator(*schema, options);
  std::vector<Result> results;
  int64_t row = 0;
  while (*reader.Next(&record)) {
    Result r;
    r.outcome = validator.Validate(record, ++row);
    if (r.outcome == RowOutcome::kEvent) validator.FillEvent(&r.event);
    if (r.outcome == RowOutcome::kDeadLetter) validator.FillDeadLetter(&r.dead_letter);
    results.push_back(std::move(r));
  }
  return results;
}

Result One(const std::map<Column, std::string>& values) {
  std::vector<Result> results = ValidateText(Line(values) + "\n");
  EXPECT_EQ(results.size(), 1u);
  return results.empty() ? Result{} : results[0];
}

std::vector<int> Reasons(const Result& r) {
  return std::vector<int>(r.dead_letter.reasons().begin(), r.dead_letter.reasons().end());
}

// Asserts that changing `column` to `value` makes the row a dead letter with exactly `reason`.
void ExpectRejected(Column column, const std::string& value, v1::RejectReason reason) {
  SCOPED_TRACE(absl::StrCat(ColumnName(column), "=", value));
  Result r = One(With(column, value));
  ASSERT_EQ(r.outcome, RowOutcome::kDeadLetter);
  EXPECT_THAT(Reasons(r), ElementsAre(reason));
  EXPECT_EQ(r.dead_letter.column(), ColumnName(column));
  EXPECT_EQ(r.dead_letter.row(), 1);
  EXPECT_EQ(r.dead_letter.line(), 2);
}

TEST(RowValidatorTest, ValidV3RowBecomesACleanEvent) {
  Result r = One(ValidRow());
  ASSERT_EQ(r.outcome, RowOutcome::kEvent);
  const v1::Event& e = r.event;
  Uuid id;
  ASSERT_TRUE(ParseUuid(kAnEventId, &id));
  EXPECT_EQ(e.event_id(), UuidBytes(id));
  EXPECT_EQ(e.user_id(), 42);
  EXPECT_EQ(e.session_id().size(), 16u);
  EXPECT_EQ(e.event_type(), v1::EVENT_TYPE_PURCHASE);
  EXPECT_EQ(e.product_id(), 100005);
  EXPECT_EQ(e.category(), "electronics");
  EXPECT_EQ(e.price_cents(), 1999);
  EXPECT_EQ(e.quantity(), 2);
  EXPECT_EQ(e.total_amount_cents(), 3998);
  EXPECT_EQ(e.event_time_us(), k2024 + kHour / 2);
  EXPECT_EQ(e.user_segment(), v1::USER_SEGMENT_RETURNING);
  EXPECT_EQ(e.device_type(), "mobile");
  EXPECT_EQ(e.browser(), "chrome");
  EXPECT_EQ(e.geo_country(), "US");
  EXPECT_EQ(e.geo_city(), "Boston");
  EXPECT_EQ(e.referrer(), "google");
  EXPECT_EQ(e.campaign_id(), "spring24");
  EXPECT_EQ(e.schema_version(), 3);
  EXPECT_FALSE(e.late_arrival());
  EXPECT_EQ(e.source_row(), 1);
}

TEST(RowValidatorTest, CleaningTrimsCaseFoldsAndMapsSynonyms) {
  auto row = ValidRow();
  row[Column::kEventType] = "  Add To Cart ";
  row[Column::kCategory] = "Home & Garden";
  row[Column::kProductId] = " 300001 ";
  row[Column::kUserSegment] = "AT-RISK";
  row[Column::kDeviceType] = "Smart TV";
  row[Column::kBrowser] = "Samsung-Internet";
  row[Column::kReferrer] = " GOOGLE ";
  row[Column::kGeoCountry] = "de";
  row[Column::kGeoCity] = "  Köln ";
  row[Column::kPrice] = "5";
  row[Column::kQuantity] = "N/A";
  row[Column::kEventTime] = "2024-01-01 00:30:00.25+00:00";
  Result r = One(row);
  ASSERT_EQ(r.outcome, RowOutcome::kEvent) << r.dead_letter.detail();
  EXPECT_EQ(r.event.event_type(), v1::EVENT_TYPE_ADD_TO_CART);
  EXPECT_EQ(r.event.category(), "home_garden");
  EXPECT_EQ(r.event.product_id(), 300001);
  EXPECT_EQ(r.event.user_segment(), v1::USER_SEGMENT_AT_RISK);
  EXPECT_EQ(r.event.device_type(), "smart_tv");
  EXPECT_EQ(r.event.browser(), "samsung_internet");
  EXPECT_EQ(r.event.referrer(), "google");
  EXPECT_EQ(r.event.geo_country(), "DE");
  EXPECT_EQ(r.event.geo_city(), "Köln");
  EXPECT_FALSE(r.event.has_quantity());
  EXPECT_EQ(r.event.total_amount_cents(), 500);  // NULL quantity counts as 1
  EXPECT_EQ(r.event.event_time_us(), k2024 + kHour / 2 + 250000);
}

TEST(RowValidatorTest, EventTypeSynonymsAndSpellings) {
  const std::vector<std::pair<std::string, v1::EventType>> cases = {
      {"page_view", v1::EVENT_TYPE_VIEW},     {"VIEW", v1::EVENT_TYPE_VIEW},
      {"add-to-cart", v1::EVENT_TYPE_ADD_TO_CART}, {"cart", v1::EVENT_TYPE_ADD_TO_CART},
      {"buy", v1::EVENT_TYPE_PURCHASE},       {"Order", v1::EVENT_TYPE_PURCHASE},
      {"checkout", v1::EVENT_TYPE_PURCHASE},  {"Remove From Cart", v1::EVENT_TYPE_REMOVE_FROM_CART},
      {"wishlist", v1::EVENT_TYPE_WISHLIST}};
  for (const auto& [text, type] : cases) {
    Result r = One(With(Column::kEventType, text));
    ASSERT_EQ(r.outcome, RowOutcome::kEvent) << text << ": " << r.dead_letter.detail();
    EXPECT_EQ(r.event.event_type(), type) << text;
  }
}

TEST(RowValidatorTest, NullSpellingsMakeOptionalColumnsNull) {
  auto row = ValidRow();
  row[Column::kSessionId] = "NULL";
  row[Column::kUserSegment] = "null";
  row[Column::kDeviceType] = "None";
  row[Column::kBrowser] = "n/a";
  row[Column::kGeoCountry] = "";
  row[Column::kGeoCity] = "  ";
  row[Column::kReferrer] = "N/A";
  row[Column::kCampaignId] = "NULL";
  row[Column::kCategory] = "NULL";
  Result r = One(row);
  ASSERT_EQ(r.outcome, RowOutcome::kEvent) << r.dead_letter.detail();
  EXPECT_EQ(r.event.session_id(), "");
  EXPECT_EQ(r.event.user_segment(), v1::USER_SEGMENT_UNSPECIFIED);
  EXPECT_EQ(r.event.device_type(), "");
  EXPECT_EQ(r.event.browser(), "");
  EXPECT_EQ(r.event.geo_country(), "");
  EXPECT_EQ(r.event.geo_city(), "");
  EXPECT_EQ(r.event.referrer(), "");
  EXPECT_EQ(r.event.category(), "");
  EXPECT_EQ(r.event.campaign_id(), "");
}

TEST(RowValidatorTest, EpochTimestampsAreAccepted) {
  Result seconds = One(With(Column::kEventTime, "1704067200"));
  ASSERT_EQ(seconds.outcome, RowOutcome::kEvent);
  EXPECT_EQ(seconds.event.event_time_us(), k2024);
  Result millis = One(With(Column::kEventTime, "1704067200500"));
  ASSERT_EQ(millis.outcome, RowOutcome::kEvent);
  EXPECT_EQ(millis.event.event_time_us(), k2024 + 500000);
}

TEST(RowValidatorTest, EachRuleRejectsWithItsReasonColumnAndLine) {
  ExpectRejected(Column::kEventId, "NULL", v1::REJECT_REASON_MISSING_REQUIRED);
  ExpectRejected(Column::kUserId, "", v1::REJECT_REASON_MISSING_REQUIRED);
  ExpectRejected(Column::kEventType, "N/A", v1::REJECT_REASON_MISSING_REQUIRED);
  ExpectRejected(Column::kEventTime, "None", v1::REJECT_REASON_MISSING_REQUIRED);
  ExpectRejected(Column::kEventId, "not-a-uuid", v1::REJECT_REASON_BAD_EVENT_ID);
  ExpectRejected(Column::kEventId, "018f3a6e1b2c7d3e8f40123456789abc", v1::REJECT_REASON_BAD_EVENT_ID);
  ExpectRejected(Column::kUserId, "-1", v1::REJECT_REASON_BAD_USER_ID);
  ExpectRejected(Column::kUserId, "abc", v1::REJECT_REASON_BAD_USER_ID);
  ExpectRejected(Column::kSessionId, "xyz", v1::REJECT_REASON_BAD_SESSION_ID);
  ExpectRejected(Column::kEventType, "teleport", v1::REJECT_REASON_UNKNOWN_EVENT_TYPE);
  ExpectRejected(Column::kProductId, "NULL", v1::REJECT_REASON_MISSING_PRODUCT);
  ExpectRejected(Column::kProductId, "0", v1::REJECT_REASON_BAD_PRODUCT_ID);
  ExpectRejected(Column::kProductId, "12ab", v1::REJECT_REASON_BAD_PRODUCT_ID);
  ExpectRejected(Column::kCategory, "spaceships", v1::REJECT_REASON_UNKNOWN_CATEGORY);
  ExpectRejected(Column::kPrice, "-1.00", v1::REJECT_REASON_BAD_PRICE);
  ExpectRejected(Column::kPrice, "100000.01", v1::REJECT_REASON_BAD_PRICE);
  ExpectRejected(Column::kPrice, "12.345", v1::REJECT_REASON_BAD_PRICE);
  ExpectRejected(Column::kPrice, "NULL", v1::REJECT_REASON_BAD_PRICE);
  ExpectRejected(Column::kQuantity, "0", v1::REJECT_REASON_BAD_QUANTITY);
  ExpectRejected(Column::kQuantity, "1001", v1::REJECT_REASON_BAD_QUANTITY);
  ExpectRejected(Column::kQuantity, "2.5", v1::REJECT_REASON_BAD_QUANTITY);
  ExpectRejected(Column::kEventTime, "2024-13-01T00:00:00Z", v1::REJECT_REASON_BAD_TIMESTAMP);
  ExpectRejected(Column::kEventTime, "2024-01-01T02:00:01Z", v1::REJECT_REASON_FUTURE_TIMESTAMP);
  ExpectRejected(Column::kGeoCountry, "XX", v1::REJECT_REASON_BAD_COUNTRY);
  ExpectRejected(Column::kGeoCountry, "USA", v1::REJECT_REASON_BAD_COUNTRY);
  ExpectRejected(Column::kUserSegment, "whale", v1::REJECT_REASON_BAD_ENUM_VALUE);
  ExpectRejected(Column::kDeviceType, "toaster", v1::REJECT_REASON_BAD_ENUM_VALUE);
  ExpectRejected(Column::kBrowser, "netscape", v1::REJECT_REASON_BAD_ENUM_VALUE);
  ExpectRejected(Column::kReferrer, "carrier_pigeon", v1::REJECT_REASON_BAD_ENUM_VALUE);
}

TEST(RowValidatorTest, BoundaryValuesAreAccepted) {
  EXPECT_EQ(One(With(Column::kPrice, "100000.00")).outcome, RowOutcome::kEvent);
  EXPECT_EQ(One(With(Column::kPrice, "0")).outcome, RowOutcome::kEvent);
  EXPECT_EQ(One(With(Column::kQuantity, "1000")).outcome, RowOutcome::kEvent);
  EXPECT_EQ(One(With(Column::kEventTime, "2024-01-01T02:00:00Z")).outcome, RowOutcome::kEvent);  // exactly +max_future
  EXPECT_EQ(One(With(Column::kUserId, "0")).outcome, RowOutcome::kDeadLetter);  // anonymous purchase
}

TEST(RowValidatorTest, AnonymousUsersMayOnlyViewOrSearch) {
  auto view = With(Column::kUserId, "0");
  view[Column::kEventType] = "view";
  EXPECT_EQ(One(view).outcome, RowOutcome::kEvent);
  auto search = With(Column::kUserId, "0");
  search[Column::kEventType] = "search";
  search[Column::kProductId] = "NULL";
  search[Column::kPrice] = "NULL";
  search[Column::kCategory] = "NULL";
  Result s = One(search);
  ASSERT_EQ(s.outcome, RowOutcome::kEvent) << s.dead_letter.detail();
  EXPECT_FALSE(s.event.has_total_amount_cents());  // NULL for search
  EXPECT_FALSE(s.event.has_price_cents());
  ExpectRejected(Column::kUserId, "0", v1::REJECT_REASON_ANONYMOUS_ACTION);
}

TEST(RowValidatorTest, SeveralFailingRulesAreAllReportedInRuleOrder) {
  auto row = ValidRow();
  row[Column::kEventId] = "bad";
  row[Column::kPrice] = "free";
  row[Column::kGeoCountry] = "Narnia";
  Result r = One(row);
  ASSERT_EQ(r.outcome, RowOutcome::kDeadLetter);
  EXPECT_THAT(Reasons(r), ElementsAre(v1::REJECT_REASON_BAD_EVENT_ID, v1::REJECT_REASON_BAD_PRICE,
                                      v1::REJECT_REASON_BAD_COUNTRY));
  EXPECT_EQ(r.dead_letter.column(), "event_id");
  EXPECT_EQ(r.dead_letter.detail(),
            "event_id: not a UUID (8-4-4-4-12 hex) (value \"bad\"); price: not a decimal with at most two "
            "fraction digits (value \"free\"); geo_country: not an ISO 3166-1 alpha-2 code (value \"Narnia\")");
}

TEST(RowValidatorTest, DetailTruncatesLongValuesAtACharacterBoundary) {
  std::string city_bomb = std::string(63, 'a') + "\xC3\xA9" + std::string(100, 'b');  // é straddles byte 64
  Result r = One(With(Column::kReferrer, city_bomb));
  ASSERT_EQ(r.outcome, RowOutcome::kDeadLetter);
  EXPECT_THAT(r.dead_letter.detail(), HasSubstr("(value \"" + std::string(63, 'a') + "\")"));
}

TEST(RowValidatorTest, StructuralProblemsAreDeadLettersWithRawBytesAndStartLine) {
  const std::string good = Line(ValidRow());
  const std::string body = good + "\n" +                    // row 1, line 2
                           "a,b,c\n" +                      // row 2, line 3: wrong column count
                           "\n" +                           // line 4: empty, not a row
                           "x,\"y\"z,w\n" +                  // row 3, line 5: malformed quoting
                           std::string("p,\x00q\n", 5) +    // row 4, line 6: NUL
                           "caf\xE9,1\n" +                  // row 5, line 7: invalid UTF-8
                           "\"multi\nline\",1,2\n" +          // row 6, line 8-9: wrong column count
                           std::string(300, 'z') + "\n";    // row 7, line 10: too large
  std::vector<Result> results = ValidateText(body, 3, 256);
  ASSERT_EQ(results.size(), 7u);
  EXPECT_EQ(results[0].outcome, RowOutcome::kEvent);
  auto expect = [&](size_t i, int64_t row, int64_t line, v1::RejectReason reason, const std::string& raw) {
    SCOPED_TRACE(row);
    ASSERT_EQ(results[i].outcome, RowOutcome::kDeadLetter);
    EXPECT_EQ(results[i].dead_letter.row(), row);
    EXPECT_EQ(results[i].dead_letter.line(), line);
    EXPECT_THAT(Reasons(results[i]), ElementsAre(reason));
    EXPECT_EQ(results[i].dead_letter.raw(), raw);
    EXPECT_EQ(results[i].dead_letter.column(), "");
  };
  expect(1, 2, 3, v1::REJECT_REASON_WRONG_COLUMN_COUNT, "a,b,c");
  EXPECT_EQ(results[1].dead_letter.detail(), "record has 3 fields, the header has 16");
  expect(2, 3, 5, v1::REJECT_REASON_MALFORMED_QUOTING, "x,\"y\"z,w");
  expect(3, 4, 6, v1::REJECT_REASON_NUL_BYTE, std::string("p,\x00q", 4));
  EXPECT_EQ(results[3].dead_letter.detail(), "NUL byte in the record (first bad byte at offset 2)");
  expect(4, 5, 7, v1::REJECT_REASON_INVALID_UTF8, "caf\xE9,1");
  expect(5, 6, 8, v1::REJECT_REASON_WRONG_COLUMN_COUNT, "\"multi\nline\",1,2");
  expect(6, 7, 10, v1::REJECT_REASON_ROW_TOO_LARGE, std::string(256, 'z'));
  EXPECT_EQ(results[6].dead_letter.detail(), "record is 300 bytes, over the 256-byte limit (raw holds the first 256)");
}

TEST(RowValidatorTest, ExactDuplicateIsSkippedConflictingDuplicateIsRejected) {
  const std::string first = Line(ValidRow());
  const std::string conflicting = Line(With(Column::kPrice, "20.00"));
  std::vector<Result> results = ValidateText(first + "\n" + first + "\r\n" + conflicting + "\n" + first + "\n");
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].outcome, RowOutcome::kEvent);
  EXPECT_EQ(results[1].outcome, RowOutcome::kDuplicate);  // same bytes (CRLF is not content)
  ASSERT_EQ(results[2].outcome, RowOutcome::kDeadLetter);
  EXPECT_THAT(Reasons(results[2]), ElementsAre(v1::REJECT_REASON_CONFLICTING_DUPLICATE));
  EXPECT_EQ(results[2].dead_letter.line(), 4);
  EXPECT_EQ(results[3].outcome, RowOutcome::kDuplicate);
}

TEST(RowValidatorTest, DuplicatesFarApartAreFoundByReadingTheEarlierRowAgain) {
  // 10,000 distinct ids (past the point where the index is sized from the bytes per row), then
  // repeats of rows 1, 65, 4097 and 9999: exact, conflicting, and inside a quoted multi-line
  // field; a byte order mark before the header.
  auto row = [](int i, const std::string& city) {
    auto values = ValidRow();
    values[Column::kEventId] = absl::StrCat("018f3a6e-1b2c-7d3e-8f40-", absl::Dec(i, absl::kZeroPad12));
    values[Column::kGeoCity] = city;
    return Line(values) + "\n";
  };
  std::string body;
  for (int i = 1; i <= 10000; ++i) body += row(i, i == 65 ? "Two\nlines, \"quoted\"" : "Boston");
  body += row(1, "Boston") + row(65, "Two\nlines, \"quoted\"") + row(4097, "Salem") + row(9999, "Boston");
  for (Earlier earlier : {Earlier::kKept, Earlier::kReread}) {
    std::vector<Result> results = ValidateText(body, 3, 65536, earlier, "\xEF\xBB\xBF");
    ASSERT_EQ(results.size(), 10004u);
    for (int i = 0; i < 10000; ++i) ASSERT_EQ(results[i].outcome, RowOutcome::kEvent) << "row " << i + 1;
    EXPECT_EQ(results[10000].outcome, RowOutcome::kDuplicate);
    EXPECT_EQ(results[10001].outcome, RowOutcome::kDuplicate);
    ASSERT_EQ(results[10002].outcome, RowOutcome::kDeadLetter);
    EXPECT_THAT(Reasons(results[10002]), ElementsAre(v1::REJECT_REASON_CONFLICTING_DUPLICATE));
    EXPECT_EQ(results[10003].outcome, RowOutcome::kDuplicate);
  }
}

TEST(RowValidatorTest, RepeatOfAnInvalidRowIsADeadLetterAgainNotADuplicate) {
  const std::string bad = Line(With(Column::kPrice, "-5"));
  std::vector<Result> results = ValidateText(bad + "\n" + bad + "\n" + Line(ValidRow()) + "\n");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, RowOutcome::kDeadLetter);
  EXPECT_EQ(results[1].outcome, RowOutcome::kDeadLetter);
  EXPECT_THAT(Reasons(results[1]), ElementsAre(v1::REJECT_REASON_BAD_PRICE));
  EXPECT_EQ(results[2].outcome, RowOutcome::kEvent);  // the first valid row with that id
}

TEST(RowValidatorTest, InvalidRowWithTheIdOfAnEarlierValidRowAlsoConflicts) {
  std::vector<Result> results = ValidateText(Line(ValidRow()) + "\n" + Line(With(Column::kQuantity, "0")) + "\n");
  ASSERT_EQ(results[1].outcome, RowOutcome::kDeadLetter);
  EXPECT_THAT(Reasons(results[1]),
              ElementsAre(v1::REJECT_REASON_BAD_QUANTITY, v1::REJECT_REASON_CONFLICTING_DUPLICATE));
}

TEST(RowValidatorTest, LateEventsAreKeptAndFlagged) {
  Result late = One(With(Column::kEventTime, "2023-12-31T23:59:59Z"));  // before reference - 1h
  ASSERT_EQ(late.outcome, RowOutcome::kEvent);
  EXPECT_TRUE(late.event.late_arrival());
  Result on_time = One(With(Column::kEventTime, "2024-01-01T00:00:00Z"));  // exactly reference - 1h
  ASSERT_EQ(on_time.outcome, RowOutcome::kEvent) << on_time.dead_letter.detail();
  EXPECT_FALSE(on_time.event.late_arrival());
}

TEST(RowValidatorTest, V1RowsAreUpgradedWithCategoryFromTheProductRange) {
  auto row = ValidRow();
  row[Column::kProductId] = "400010";  // books
  std::string body = Line(row, 1) + "\n";
  row[Column::kProductId] = "999999";  // no catalogue range
  body += Line(row, 1) + "\n";
  std::vector<Result> results = ValidateText(body, 1);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_EQ(results[0].outcome, RowOutcome::kEvent);
  EXPECT_EQ(results[0].event.category(), "books");
  EXPECT_EQ(results[0].event.schema_version(), 1);
  EXPECT_EQ(results[0].event.session_id(), "");
  EXPECT_FALSE(results[0].event.has_quantity());
  EXPECT_EQ(results[0].event.total_amount_cents(), 1999);
  EXPECT_EQ(results[0].event.device_type(), "");
  ASSERT_EQ(results[1].outcome, RowOutcome::kDeadLetter);  // same event_id, other bytes
  // A distinct id with an unknown range keeps a NULL category.
  row[Column::kEventId] = "018f3a6e-1b2c-7d3e-8f40-000000000001";
  std::vector<Result> other = ValidateText(Line(row, 1) + "\n", 1);
  ASSERT_EQ(other[0].outcome, RowOutcome::kEvent);
  EXPECT_EQ(other[0].event.category(), "");
}

TEST(RowValidatorTest, V2RowsKeepTheirCategoryAndLackV3Columns) {
  std::vector<Result> results = ValidateText(Line(ValidRow(), 2) + "\n", 2);
  ASSERT_EQ(results[0].outcome, RowOutcome::kEvent);
  EXPECT_EQ(results[0].event.schema_version(), 2);
  EXPECT_EQ(results[0].event.category(), "electronics");
  EXPECT_EQ(results[0].event.quantity(), 2);
  EXPECT_EQ(results[0].event.geo_country(), "");
  EXPECT_EQ(results[0].event.browser(), "");
}

TEST(RowValidatorTest, CountsEveryOutcomeAndReason) {
  const std::string good = Line(ValidRow());
  const std::string late = Line([] {
    auto r = With(Column::kEventTime, "2023-06-01T00:00:00Z");
    r[Column::kEventId] = "018f3a6e-1b2c-7d3e-8f40-000000000002";
    return r;
  }());
  std::string body = good + "\n" + good + "\n" + late + "\n" + Line(With(Column::kPrice, "x")) + "\na\n";
  const std::string text = Header(3) + "\n" + body;
  StringByteSource source(text);
  CsvReader reader(&source, CsvReaderOptions{});
  CsvRecord record;
  ASSERT_TRUE(*reader.Next(&record));
  RowValidator validator(*SchemaRegistry::Detect(record.fields), RowValidatorOptions{kReference, kHour, kHour});
  int64_t row = 0;
  while (*reader.Next(&record)) validator.Validate(record, ++row);
  const RowCounts& c = validator.counts();
  EXPECT_EQ(c.rows, 5);
  EXPECT_EQ(c.events, 2);
  EXPECT_EQ(c.duplicates, 1);
  EXPECT_EQ(c.late, 1);
  EXPECT_EQ(c.dead_letters, 2);
  EXPECT_EQ(c.by_reason[v1::REJECT_REASON_BAD_PRICE], 1);
  EXPECT_EQ(c.by_reason[v1::REJECT_REASON_CONFLICTING_DUPLICATE], 1);
  EXPECT_EQ(c.by_reason[v1::REJECT_REASON_WRONG_COLUMN_COUNT], 1);
  EXPECT_EQ(c.ReasonSummary(), "wrong_column_count:1,bad_price:1,conflicting_duplicate:1");
}

}  // namespace
}  // namespace ecomstream::processor

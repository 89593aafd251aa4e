#include "services/processor/redrive.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/uuid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

using ::testing::ElementsAre;

constexpr char kV2Header[] = "event_id,user_id,event_type,product_id,price,event_time,session_id,category,quantity,user_segment";
constexpr int64_t kReference = 1704067200LL * 1000000;  // 2024-01-01T00:00:00Z

v1::StoredDeadLetter Stored(const std::string& raw, std::vector<v1::RejectReason> reasons) {
  v1::StoredDeadLetter stored;
  stored.set_id(7);
  stored.set_file_id("sha256:" + std::string(64, 'a'));
  stored.set_file_name("f.csv");
  stored.set_row(12);
  stored.set_line(13);
  stored.set_raw(raw);
  for (auto reason : reasons) stored.add_reasons(reason);
  stored.set_header(kV2Header);
  stored.set_reference_time_us(kReference);
  return stored;
}

const std::string kSpaceship =
    "018f3a6e-1b2c-7d3e-8f40-123456789abc,42,purchase,950001,1999.00,2023-12-31T23:30:00Z,"
    "5f0c3c1e-9b7a-4d2e-8c11-0123456789ab,Spaceships,1,returning";

std::shared_ptr<const Rules> WithSpaceships() {
  return *Rules::FromJson(R"({"version": "v2", "categories": [{"name": "spaceships", "minPrice": "1000",
      "maxPrice": "99999", "firstProductId": "950000", "productCount": 10}]})", "r.json", RulesWindows{});
}

TEST(HeaderTextTest, NamesTheColumnsInFileOrder) {
  const std::vector<absl::string_view> header = absl::StrSplit("price,event_id,user_id,event_type,product_id,event_time", ',');
  EXPECT_EQ(HeaderText(*SchemaRegistry::Detect(header)), "price,event_id,user_id,event_type,product_id,event_time");
}

TEST(RevalidateTest, ARowOfANewCategoryPassesWithTheRulesThatAddIt) {
  const v1::StoredDeadLetter stored = Stored(kSpaceship, {v1::REJECT_REASON_UNKNOWN_CATEGORY});
  auto before = Revalidate(stored, *Rules::Builtin(), 65536);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(before->has_still_failing());
  EXPECT_THAT(before->still_failing().reasons(), ElementsAre(v1::REJECT_REASON_UNKNOWN_CATEGORY));
  EXPECT_EQ(before->still_failing().line(), 13);
  EXPECT_EQ(before->still_failing().row(), 12);

  auto after = Revalidate(stored, *WithSpaceships(), 65536);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->dead_letter_id(), 7);
  ASSERT_TRUE(after->has_event());
  const v1::Event& event = after->event();
  std::string event_id;
  AppendUuid(event.event_id(), &event_id);
  EXPECT_EQ(event_id, "018f3a6e-1b2c-7d3e-8f40-123456789abc");
  EXPECT_EQ(event.category(), "spaceships");
  EXPECT_EQ(event.price_cents(), 199900);
  EXPECT_EQ(event.source_row(), 12);
  EXPECT_EQ(event.schema_version(), 2);
}

TEST(RevalidateTest, TheFilesReferenceTimeDecidesFutureTimestamps) {
  v1::StoredDeadLetter stored = Stored(kSpaceship, {v1::REJECT_REASON_UNKNOWN_CATEGORY});
  stored.set_reference_time_us(kReference - 3LL * 3600 * 1000000);  // the event is 2.5 h after it
  auto item = Revalidate(stored, *WithSpaceships(), 65536);
  ASSERT_TRUE(item.ok());
  ASSERT_TRUE(item->has_still_failing());
  EXPECT_THAT(item->still_failing().reasons(), ElementsAre(v1::REJECT_REASON_FUTURE_TIMESTAMP));
}

TEST(RevalidateTest, AConflictWithAnotherRowOfTheFileStays) {
  auto item = Revalidate(Stored(kSpaceship, {v1::REJECT_REASON_UNKNOWN_CATEGORY, v1::REJECT_REASON_CONFLICTING_DUPLICATE}),
                         *WithSpaceships(), 65536);
  ASSERT_TRUE(item.ok());
  ASSERT_TRUE(item->has_still_failing());
  EXPECT_THAT(item->still_failing().reasons(), ElementsAre(v1::REJECT_REASON_CONFLICTING_DUPLICATE));
  EXPECT_EQ(item->still_failing().column(), "event_id");
}

TEST(RevalidateTest, RowsThatCannotBeReparsedAreNotRedrivable) {
  v1::StoredDeadLetter no_header = Stored(kSpaceship, {v1::REJECT_REASON_UNKNOWN_CATEGORY});
  no_header.clear_header();
  EXPECT_EQ(Revalidate(no_header, *WithSpaceships(), 65536).status().message(),
            "its file's header and reference time are not in the file ledger");
  EXPECT_EQ(Revalidate(Stored(kSpaceship.substr(0, 40), {v1::REJECT_REASON_ROW_TOO_LARGE}), *WithSpaceships(), 65536)
                .status()
                .message(),
            "the stored row is truncated (row_too_large)");
  EXPECT_EQ(Revalidate(Stored(kSpaceship, {v1::REJECT_REASON_DATABASE_REJECTED}), *WithSpaceships(), 65536)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  v1::StoredDeadLetter bad_header = Stored(kSpaceship, {v1::REJECT_REASON_UNKNOWN_CATEGORY});
  bad_header.set_header("a,b,c");
  EXPECT_EQ(Revalidate(bad_header, *WithSpaceships(), 65536).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RevalidateTest, HostileRawBytesStayDeadLettersWithTheirReason) {
  auto item = Revalidate(Stored(std::string("a,\"b\0c", 6), {v1::REJECT_REASON_MALFORMED_QUOTING}), *WithSpaceships(),
                         65536);
  ASSERT_TRUE(item.ok()) << item.status();
  ASSERT_TRUE(item->has_still_failing());
  EXPECT_FALSE(item->still_failing().reasons().empty());
}

TEST(RedriveOptionsTest, HostileFiltersAreRefusedNamingTheFlag) {
  RedriveOptions options;
  options.filter.add_reasons(v1::REJECT_REASON_UNSPECIFIED);
  EXPECT_EQ(ValidateRedriveOptions(options).message(), "--redrive_reason holds 0, not a reason code");
  options = RedriveOptions{};
  options.filter.set_file_name("../etc/passwd");
  EXPECT_EQ(ValidateRedriveOptions(options).message(),
            "--redrive_file must be a file's base name (no '/', at most 1024 bytes)");
  options = RedriveOptions{};
  options.filter.set_from_us(10);
  options.filter.set_to_us(10);
  EXPECT_EQ(ValidateRedriveOptions(options).message(), "--redrive_from must be before --redrive_to");
  options = RedriveOptions{};
  options.limit = -1;
  EXPECT_EQ(ValidateRedriveOptions(options).message(), "--redrive_limit must not be negative");
  options = RedriveOptions{};
  options.page_size = 5000;
  EXPECT_EQ(ValidateRedriveOptions(options).message(), "--redrive_page_size 5000 is not in 1..1000");
  EXPECT_TRUE(ValidateRedriveOptions(RedriveOptions{}).ok());
}

}  // namespace
}  // namespace ecomstream::processor

#include "services/processor/schema_registry.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<Schema> Detect(absl::string_view header) {
  std::vector<absl::string_view> names = absl::StrSplit(header, ',');
  return SchemaRegistry::Detect(names);
}

constexpr absl::string_view kV1 = "event_id,user_id,event_type,product_id,price,event_time";
constexpr absl::string_view kV2 =
    "event_id,user_id,event_type,product_id,price,event_time,session_id,category,quantity,user_segment";
constexpr absl::string_view kV3 =
    "event_id,user_id,event_type,product_id,price,event_time,session_id,category,quantity,user_segment,"
    "device_type,browser,geo_country,geo_city,referrer,campaign_id";

TEST(SchemaRegistryTest, RecognisesEachVersionInDocumentOrder) {
  EXPECT_EQ(Detect(kV1)->version, 1);
  EXPECT_EQ(Detect(kV2)->version, 2);
  absl::StatusOr<Schema> v3 = Detect(kV3);
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->version, 3);
  EXPECT_EQ(v3->field_count, 16);
  for (int c = 0; c < Column::kNumColumns; ++c) EXPECT_EQ(v3->index[c], c);
}

TEST(SchemaRegistryTest, AnyOrderCaseAndSurroundingSpaceAreAccepted) {
  absl::StatusOr<Schema> s = Detect(" PRICE ,event_time,Event_ID,user_id,event_type,product_id");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->version, 1);
  EXPECT_EQ(s->index[Column::kPrice], 0);
  EXPECT_EQ(s->index[Column::kEventId], 2);
  EXPECT_EQ(s->index[Column::kSessionId], -1);
  EXPECT_EQ(s->index[Column::kCampaignId], -1);
}

TEST(SchemaRegistryTest, UnknownExtraMissingOrRepeatedColumnsMatchNoVersion) {
  EXPECT_THAT(Detect(std::string(kV1) + ",colour").status().message(), HasSubstr("unknown columns: colour"));
  EXPECT_THAT(Detect("event_id,user_id,event_type,product_id,price").status().message(),
              HasSubstr("missing for v1: event_time"));
  // v1 plus one v2 column is not v2.
  EXPECT_THAT(Detect(std::string(kV1) + ",session_id").status().message(),
              HasSubstr("missing for v2: category, quantity, user_segment"));
  EXPECT_THAT(Detect(std::string(kV1) + ",price").status().message(), HasSubstr("repeated columns: price"));
  EXPECT_EQ(Detect("a\x01,b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Detect("a\x01").status().message(), HasSubstr("a?"));  // printable in the reason
}

}  // namespace
}  // namespace ecomstream::processor

#include "services/generator/csv_row_encoder.h"

#include "common/domain.h"
#include "gtest/gtest.h"
#include "services/generator/random.h"

namespace ecomstream::generator {
namespace {

ShopperEvent SampleEvent() {
  ShopperEvent e;
  e.event_id = UuidV7(1'777'777'777'123, 0x1234, 0x5678);
  e.session_id = UuidV4(1, 2);
  e.user_id = 42;
  e.event_type = v1::EVENT_TYPE_ADD_TO_CART;
  e.category = domain::FindCategory("books");
  e.product_id = 400'123;
  e.price_cents = 1299;
  e.quantity = 2;
  e.event_time_ms = 1'777'777'777'123;
  e.segment = v1::USER_SEGMENT_PREMIUM;
  e.device_type = "mobile";
  e.browser = "safari";
  for (const Place& p : ShopperModel::Places()) {
    if (p.city == "Washington, D.C.") e.place = &p;
  }
  e.referrer = "email";
  e.campaign_id = "cart_reminder";
  return e;
}

TEST(CsvRowEncoderTest, FormatsNumbersAndTimesByHand) {
  std::string s;
  AppendInt(0, &s);
  s += '|';
  AppendInt(-9'223'372'036'854'775'807 - 1, &s);
  s += '|';
  AppendCents(1299, &s);
  s += '|';
  AppendCents(5, &s);
  s += '|';
  AppendCents(-250, &s);
  EXPECT_EQ(s, "0|-9223372036854775808|12.99|0.05|-2.50");
  std::string t;
  AppendIsoMillis(0, &t);
  t += '|';
  AppendIsoMillis(1'777'777'777'123, &t);
  t += '|';
  AppendIsoMillis(951'782'400'007, &t);  // 2000-02-29 (leap day)
  t += '|';
  AppendIsoMillis(-1, &t);
  EXPECT_EQ(t, "1970-01-01T00:00:00.000Z|2026-05-03T03:09:37.123Z|2000-02-29T00:00:00.007Z|1969-12-31T23:59:59.999Z");
}

TEST(CsvRowEncoderTest, WritesV3RowInHeaderOrderWithQuotedCity) {
  const ShopperEvent e = SampleEvent();
  CsvRowEncoder encoder(ColumnsOf(SchemaVersion::kV3), /*crlf=*/false);
  std::string out;
  encoder.AppendHeader(&out);
  EXPECT_EQ(out,
            "event_id,user_id,event_type,product_id,price,event_time,session_id,category,quantity,user_segment,"
            "device_type,browser,geo_country,geo_city,referrer,campaign_id\n");
  out.clear();
  const size_t length = encoder.AppendRow(e, RowPlan(), &out);
  const std::string expected = FormatUuid(e.event_id) + ",42,add_to_cart,400123,12.99,2026-05-03T03:09:37.123Z," +
                               FormatUuid(e.session_id) +
                               ",books,2,premium,mobile,safari,US,\"Washington, D.C.\",email,cart_reminder";
  EXPECT_EQ(out, expected + "\n");
  EXPECT_EQ(length, expected.size());
}

TEST(CsvRowEncoderTest, MissingValuesAreEmptyFieldsAndOrderFollowsColumns) {
  ShopperEvent e = SampleEvent();
  e.event_type = v1::EVENT_TYPE_SEARCH;
  e.product_id = 0;
  e.price_cents = -1;
  e.quantity = 0;
  e.user_id = 0;
  e.segment = v1::USER_SEGMENT_UNSPECIFIED;
  e.campaign_id = "";
  CsvRowEncoder encoder({Column::kPrice, Column::kUserSegment, Column::kEventType, Column::kQuantity,
                         Column::kUserId, Column::kCampaignId},
                        /*crlf=*/true);
  std::string out;
  encoder.AppendHeader(&out);
  encoder.AppendRow(e, RowPlan(), &out);
  EXPECT_EQ(out, "price,user_segment,event_type,quantity,user_id,campaign_id\r\n,,search,,0,\r\n");
}

TEST(CsvRowEncoderTest, PlanOverridesOmitsOrReplacesTheRecord) {
  const ShopperEvent e = SampleEvent();
  CsvRowEncoder encoder({Column::kUserId, Column::kEventType, Column::kPrice}, false);
  RowPlan plan;
  plan.has_override = true;
  plan.column = Column::kEventType;
  plan.text = " Add To Cart ";
  std::string out;
  encoder.AppendRow(e, plan, &out);
  EXPECT_EQ(out, "42, Add To Cart ,12.99\n");
  out.clear();
  plan.omit_column = true;
  encoder.AppendRow(e, plan, &out);
  EXPECT_EQ(out, "42,12.99\n");
  out.clear();
  plan.column = Column::kUserId;
  encoder.AppendRow(e, plan, &out);
  EXPECT_EQ(out, "add_to_cart,12.99\n") << "omitting the first column leaves no leading comma";
  out.clear();
  plan.Clear();
  plan.verbatim = "a,b,c";
  EXPECT_EQ(encoder.AppendRow(e, plan, &out), 5u);
  EXPECT_EQ(out, "a,b,c\n");
}

TEST(CsvRowEncoderTest, EventTimesOfOtherSecondsInAnyOrderAreEachFormattedInFull) {
  ShopperEvent e = SampleEvent();
  CsvRowEncoder encoder({Column::kEventTime}, false);
  std::string out;
  for (const int64_t ms : {1'777'777'777'123LL, 1'777'777'777'999LL, 1'777'777'778'000LL, 1'777'777'777'001LL,
                           -1LL, 951'782'400'007LL}) {
    e.event_time_ms = ms;
    encoder.AppendRow(e, RowPlan(), &out);
  }
  EXPECT_EQ(out,
            "2026-05-03T03:09:37.123Z\n2026-05-03T03:09:37.999Z\n2026-05-03T03:09:38.000Z\n"
            "2026-05-03T03:09:37.001Z\n1969-12-31T23:59:59.999Z\n2000-02-29T00:00:00.007Z\n");
}

TEST(CsvRowEncoderTest, ARecordLongerThanTheStackBufferIsWrittenWhole) {
  const ShopperEvent e = SampleEvent();
  CsvRowEncoder encoder({Column::kUserId, Column::kReferrer, Column::kPrice}, /*crlf=*/true);
  RowPlan plan;
  plan.has_override = true;
  plan.column = Column::kReferrer;
  plan.text = std::string(5000, 'r');
  std::string out = "x";
  const size_t length = encoder.AppendRow(e, plan, &out);
  EXPECT_EQ(length, 2 + 1 + 5000 + 1 + 5u);
  EXPECT_EQ(out, "x42," + std::string(5000, 'r') + ",12.99\r\n");
  plan.Clear();
  plan.verbatim = std::string(3000, 'v');
  out.clear();
  EXPECT_EQ(encoder.AppendRow(e, plan, &out), 3000u);
  EXPECT_EQ(out, std::string(3000, 'v') + "\r\n");
}

TEST(RandomTest, SameSeedSameStreamAndBoundsHold) {
  Rng a(7), b(7), c = Rng::Derive(7, 1);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    EXPECT_NE(x, c.Next());
  }
  for (int i = 0; i < 10000; ++i) {
    EXPECT_LT(a.Uniform(7), 7u);
    const int64_t r = a.Range(-3, 3);
    EXPECT_GE(r, -3);
    EXPECT_LE(r, 3);
    const double d = a.UniformDouble();
    EXPECT_GE(d, 0.0);
    EXPECT_LT(d, 1.0);
    EXPECT_GE(a.Geometric(4), 1);
  }
}

TEST(RandomTest, WeightedChoiceFollowsWeightsAndNeverPicksZero) {
  WeightedChoice choice({1, 0, 3});
  Rng rng(11);
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 100'000; ++i) ++counts[choice.Pick(rng)];
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0] / 100'000.0, 0.25, 0.01);
  EXPECT_NEAR(counts[2] / 100'000.0, 0.75, 0.01);
}

TEST(RandomTest, GeometricHasTheRequestedMean) {
  Rng rng(12);
  double sum = 0;
  for (int i = 0; i < 100'000; ++i) sum += rng.Geometric(6);
  EXPECT_NEAR(sum / 100'000, 6.0, 0.1);
}

}  // namespace
}  // namespace ecomstream::generator

#include "services/writer/pg/copy_encoder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/uuid.h"

namespace ecomstream::writer {
namespace {

constexpr size_t kHeaderSize = 19;

// The hex of what one value appends (after the header and a one-field row prefix).
template <typename Fn>
std::string FieldHex(Fn&& write) {
  CopyEncoder copy;
  copy.BeginRow(1);
  write(copy);
  const std::string out = copy.Finish();
  // header, int16 field count ... int16 -1 trailer
  return absl::BytesToHexString(out.substr(kHeaderSize + 2, out.size() - kHeaderSize - 4));
}

TEST(CopyEncoderTest, WritesTheBinaryCopyHeaderAndTrailer) {
  const std::string out = CopyEncoder().Finish();
  EXPECT_EQ(absl::BytesToHexString(out), "5047434f50590aff0d0a00" "00000000" "00000000" "ffff");
}

TEST(CopyEncoderTest, EncodesIntegersBigEndianWithLengths) {
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.Int64(-2); }), "00000008" "fffffffffffffffe");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.Int32(258); }), "00000004" "00000102");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.Int16(3); }), "00000002" "0003");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.Bool(true); }), "00000001" "01");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.Null(); }), "ffffffff");
}

TEST(CopyEncoderTest, EncodesNumericCentsInBase10000WithTwoDecimals) {
  // ndigits, weight, sign, dscale, digits
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.NumericCents(1999); }), "0000000c" "0002" "0000" "0000" "0002" "0013" "26ac");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.NumericCents(0); }), "00000008" "0000" "0000" "0000" "0002");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.NumericCents(5); }), "0000000a" "0001" "ffff" "0000" "0002" "01f4");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.NumericCents(1'000'000); }), "0000000a" "0001" "0001" "0000" "0002" "0001");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.NumericCents(-250); }), "0000000c" "0002" "0000" "4000" "0002" "0002" "1388");
  // INT64_MIN has no positive twin; it must still encode (the database then rejects it).
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.NumericCents(std::numeric_limits<int64_t>::min()); }),
            "00000014" "0006" "0004" "4000" "0002" "0009" "08b9" "1c23" "1ac6" "1e4e" "0320");
}

TEST(CopyEncoderTest, EncodesTimestampsFromThePostgresEpochWithoutInfinities) {
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.TimestampMicros(946'684'800'000'000); }), "00000008" "0000000000000000");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.TimestampMicros(946'684'800'000'001); }), "00000008" "0000000000000001");
  // Saturates at INT64_MIN + 1 (out of range), never INT64_MIN (-infinity).
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.TimestampMicros(std::numeric_limits<int64_t>::min()); }),
            "00000008" "8000000000000001");
}

TEST(CopyEncoderTest, EncodesTextAndByteaRawWithoutEscaping) {
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.Text("a\tb\\"); }), "00000004" "6109625c");
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.Bytea(std::string("\0\xff", 2)); }), "00000002" "00ff");
}

TEST(CopyEncoderTest, EncodesOneDimensionalTextArrays) {
  EXPECT_EQ(FieldHex([](CopyEncoder& c) { c.TextArray({"ab", "c"}); }),
            "0000001f" "00000001" "00000000" "00000019" "00000002" "00000001" "00000002" "6162" "00000001" "63");
}

TEST(CopyEncoderTest, EncodesAnEventRowWithNullsForUnsetFields) {
  v1::Event event;
  event.set_event_id(std::string(16, '\x11'));
  event.set_event_type(v1::EVENT_TYPE_SEARCH);
  event.set_schema_version(1);
  const std::string out = EncodeEvents({&event}, 0x0102030405060708);
  // header + field count 20 + values + trailer; spot-check the field count, the uuid and the
  // last field, source_id.
  EXPECT_EQ(absl::BytesToHexString(out.substr(kHeaderSize, 2 + 4 + 16)),
            "0014" "00000010" "11111111111111111111111111111111");
  EXPECT_EQ(absl::BytesToHexString(out.substr(out.size() - 2 - 12)), "00000008" "0102030405060708" "ffff");
}

// Three view events with ids aaaa..., bbbb..., cccc... and pointers to them.
struct ThreeEvents {
  ThreeEvents() : events(3) {
    for (int i = 0; i < 3; ++i) {
      events[i].set_event_id(std::string(16, static_cast<char>('a' + i)));
      events[i].set_event_type(v1::EVENT_TYPE_VIEW);
      pointers.push_back(&events[i]);
    }
  }
  std::vector<v1::Event> events;
  std::vector<const v1::Event*> pointers;
};

TEST(CopyEncoderTest, EncodedEventsCopyOutAnySubsetAsACompletePayload) {
  const ThreeEvents three;
  const std::vector<v1::Event>& events = three.events;
  const std::vector<const v1::Event*>& pointers = three.pointers;
  const EncodedEvents encoded(pointers);
  EXPECT_EQ(encoded.rows(), 3u);
  std::string storage;
  EXPECT_EQ(encoded.Payload({0, 1, 2}, 5, &storage), EncodeEvents(pointers, 5));
  EXPECT_EQ(storage, "");  // the whole batch in order is not copied
  EXPECT_EQ(encoded.Payload({2}, 5, &storage), EncodeEvents({&events[2]}, 5));
  EXPECT_EQ(encoded.Payload({2, 0}, 5, &storage), EncodeEvents({&events[2], &events[0]}, 5));
  EXPECT_EQ(encoded.Payload({}, 5, &storage), CopyEncoder().Finish());
}

// Every column set, extreme numbers included: the batch encoder writes what the value encoder does.
TEST(CopyEncoderTest, EncodedEventsWriteEveryColumnAsTheValueEncoderDoes) {
  v1::Event event;
  event.set_event_id(std::string(16, '\x01'));
  event.set_user_id(-7);
  event.set_session_id(std::string(16, '\x02'));
  event.set_event_type(v1::EVENT_TYPE_PURCHASE);
  event.set_product_id(std::numeric_limits<int64_t>::max());
  event.set_category("electronics");
  event.set_price_cents(std::numeric_limits<int64_t>::min());
  event.set_quantity(-3);
  event.set_total_amount_cents(std::numeric_limits<int64_t>::max());
  event.set_event_time_us(std::numeric_limits<int64_t>::min());
  event.set_user_segment(v1::USER_SEGMENT_PREMIUM);
  event.set_device_type("mobile");
  event.set_browser("firefox");
  event.set_geo_country("DE");
  event.set_geo_city("M\xC3\xBCnchen, a city with a name longer than fifteen bytes");
  event.set_referrer("google");
  event.set_campaign_id("c-1");
  event.set_schema_version(70000);
  event.set_late_arrival(true);

  CopyEncoder copy;
  copy.BeginRow(20);
  copy.Uuid(event.event_id());
  copy.Int64(-7);
  copy.Uuid(event.session_id());
  copy.Text("purchase");
  copy.Int64(std::numeric_limits<int64_t>::max());
  copy.Text("electronics");
  copy.NumericCents(std::numeric_limits<int64_t>::min());
  copy.Int32(-3);
  copy.NumericCents(std::numeric_limits<int64_t>::max());
  copy.TimestampMicros(std::numeric_limits<int64_t>::min());
  copy.Text("premium");
  copy.Text("mobile");
  copy.Text("firefox");
  copy.Text("DE");
  copy.Text(event.geo_city());
  copy.Text("google");
  copy.Text("c-1");
  copy.Int16(32767);
  copy.Bool(true);
  copy.Int64(std::numeric_limits<int64_t>::max());  // source_id
  EXPECT_EQ(absl::BytesToHexString(EncodeEvents({&event}, std::numeric_limits<int64_t>::max())),
            absl::BytesToHexString(copy.Finish()));
}

TEST(CopyEncoderTest, EveryRowOfAPayloadCarriesTheSourceIdItWasCopiedOutWith) {
  const ThreeEvents three;
  const std::vector<const v1::Event*>& pointers = three.pointers;
  const EncodedEvents encoded(pointers);
  std::string storage;
  const std::string source_7 = std::string("\0\0\0\x08", 4) + std::string("\0\0\0\0\0\0\0\x07", 8);
  const std::string source_9 = std::string("\0\0\0\x08", 4) + std::string("\0\0\0\0\0\0\0\x09", 8);
  const auto count = [](const std::string& payload, const std::string& field) {
    int n = 0;
    for (size_t at = payload.find(field); at != std::string::npos; at = payload.find(field, at + 1)) ++n;
    return n;
  };
  // The same rows copied out twice, with two ids: each copy has its own in every row, and the
  // first copy is not changed by the second.
  const std::string all(encoded.Payload({0, 1, 2}, 7, &storage));
  const std::string some(encoded.Payload({2, 0}, 9, &storage));
  EXPECT_EQ(count(all, source_7), 3);
  EXPECT_EQ(count(all, source_9), 0);
  EXPECT_EQ(count(some, source_9), 2);
  EXPECT_EQ(count(some, source_7), 0);
  EXPECT_EQ(encoded.Payload({0, 1, 2}, 7, &storage), all);
  EXPECT_EQ(count(std::string(encoded.Payload({0, 1, 2}, 9, &storage)), source_9), 3);  // in place: the batch itself
}

TEST(CopyEncoderTest, ReplacesNulInDeadLetterDetailButKeepsRawBytes) {
  DeadLetterRow row{3, 4, absl::string_view("a\0b", 3), {"nul_byte"}, std::string("x\0y", 3), ""};
  const std::string out = EncodeDeadLetters({row}, {"sha256:x", "f.csv", 0, 946'684'800'000'000, ""});
  EXPECT_NE(out.find(std::string("a\0b", 3)), std::string::npos);
  EXPECT_NE(out.find("x\xEF\xBF\xBDy"), std::string::npos);
  EXPECT_EQ(out.find(std::string("x\0y", 3)), std::string::npos);
}

TEST(FormatEventCsvTest, WritesAV3RecordInHeaderOrderWithRfc4180Quoting) {
  v1::Event event;
  Uuid id;
  ASSERT_TRUE(ParseUuid("0190b6e4-6a1c-7c3e-9a4b-123456789abc", &id));
  event.set_event_id(std::string(UuidBytes(id)));
  event.set_user_id(42);
  event.set_event_type(v1::EVENT_TYPE_PURCHASE);
  event.set_product_id(100001);
  event.set_price_cents(-1999);
  event.set_event_time_us(1'767'225'600'000'000);
  event.set_category("electronics");
  event.set_quantity(2);
  event.set_user_segment(v1::USER_SEGMENT_PREMIUM);
  event.set_geo_city("Washington, \"D.C.\"");
  EXPECT_EQ(FormatEventCsv(event),
            "0190b6e4-6a1c-7c3e-9a4b-123456789abc,42,purchase,100001,-19.99,2026-01-01T00:00:00.000000Z,,"
            "electronics,2,premium,,,,\"Washington, \"\"D.C.\"\"\",,");
}

}  // namespace
}  // namespace ecomstream::writer

#include "services/processor/field_parsers.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

int64_t Ts(absl::string_view text) {
  int64_t us = -1;
  EXPECT_TRUE(ParseTimestampMicros(text, &us)) << text;
  return us;
}

bool BadTs(absl::string_view text) {
  int64_t us;
  return !ParseTimestampMicros(text, &us);
}

constexpr int64_t k2024 = 1704067200LL * 1000000;  // 2024-01-01T00:00:00Z

TEST(FieldParsersTest, TrimRemovesSurroundingAsciiWhitespaceOnly) {
  EXPECT_EQ(TrimField("  a b \t\r\n"), "a b");
  EXPECT_EQ(TrimField(""), "");
  EXPECT_EQ(TrimField(" \t "), "");
  EXPECT_EQ(TrimField("\xC2\xA0x"), "\xC2\xA0x");  // NBSP is not ASCII whitespace
}

TEST(FieldParsersTest, NullTokensAreExactlyTheDocumentedSpellings) {
  for (absl::string_view t : {"", "NULL", "null", "N/A", "n/a", "None"}) EXPECT_TRUE(IsNullToken(t)) << t;
  for (absl::string_view t : {"Null", "none", "NA", "nil", "0", "NULLx"}) EXPECT_FALSE(IsNullToken(t)) << t;
}

TEST(FieldParsersTest, Int64AcceptsOptionalMinusAndDigitsOnly) {
  int64_t v;
  EXPECT_TRUE(ParseInt64("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(ParseInt64("-42", &v));
  EXPECT_EQ(v, -42);
  EXPECT_TRUE(ParseInt64("000123", &v));
  EXPECT_EQ(v, 123);
  EXPECT_TRUE(ParseInt64("999999999999999999", &v));
  for (absl::string_view bad : {"", "-", "+1", "1.0", "1e3", " 1", "12a", "1234567890123456789", "0x10"}) {
    EXPECT_FALSE(ParseInt64(bad, &v)) << bad;
  }
}

TEST(FieldParsersTest, PriceIsADecimalWithAtMostTwoFractionDigits) {
  int64_t cents;
  ASSERT_TRUE(ParsePriceCents("12", &cents));
  EXPECT_EQ(cents, 1200);
  ASSERT_TRUE(ParsePriceCents("12.5", &cents));
  EXPECT_EQ(cents, 1250);
  ASSERT_TRUE(ParsePriceCents("12.05", &cents));
  EXPECT_EQ(cents, 1205);
  ASSERT_TRUE(ParsePriceCents("-3.10", &cents));
  EXPECT_EQ(cents, -310);
  ASSERT_TRUE(ParsePriceCents("0.00", &cents));
  EXPECT_EQ(cents, 0);
  for (absl::string_view bad : {"", "12.", ".5", "12.345", "1,5", "$12", "12 .5", "abc", "1e2", "--1", "+1",
                                "1234567890123456"}) {
    EXPECT_FALSE(ParsePriceCents(bad, &cents)) << bad;
  }
}

TEST(FieldParsersTest, TimestampAcceptsIsoWithTOrSpaceFractionAndOffset) {
  EXPECT_EQ(Ts("2024-01-01T00:00:00Z"), k2024);
  EXPECT_EQ(Ts("2024-01-01 00:00:00"), k2024);
  EXPECT_EQ(Ts("2024-01-01T00:00:00"), k2024);
  EXPECT_EQ(Ts("2024-01-01T00:00:00.5Z"), k2024 + 500000);
  EXPECT_EQ(Ts("2024-01-01T00:00:00.123456789Z"), k2024 + 123456);
  EXPECT_EQ(Ts("2024-01-01T02:00:00+02:00"), k2024);
  EXPECT_EQ(Ts("2023-12-31T22:30:00-01:30"), k2024);
  EXPECT_EQ(Ts("2024-02-29 12:00:00"), k2024 + (31LL + 28) * 86400 * 1000000 + 12LL * 3600 * 1000000);
  EXPECT_EQ(Ts("1970-01-01T00:00:00Z"), 0);
}

TEST(FieldParsersTest, TimestampAcceptsEpochSecondsAndMilliseconds) {
  EXPECT_EQ(Ts("1704067200"), k2024);
  EXPECT_EQ(Ts("1704067200123"), k2024 + 123000);
}

TEST(FieldParsersTest, TimestampRejectsEverythingElse) {
  for (absl::string_view bad :
       {"", "yesterday", "2024-01-01", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00+0200", "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00ZZ", "2024/01/01 00:00:00",
        "2024-01-01T00:00", "2024-1-01T00:00:00Z", "170406720", "17040672001", "170406720012345", "-1704067200",
        "2024-01-01T00:00:00.1234567890Z", "2024-01-01X00:00:00"}) {
    EXPECT_TRUE(BadTs(bad)) << bad;
  }
}

TEST(FieldParsersTest, DaysFromCivilMatchesKnownDates) {
  EXPECT_EQ(DaysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(DaysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(DaysFromCivil(1969, 12, 31), -1);
}

TEST(FieldParsersTest, FoldEnumNameLowersAndMapsDashAndSpace) {
  char buffer[32];
  absl::string_view out;
  ASSERT_TRUE(FoldEnumName("Smart-TV", buffer, sizeof(buffer), &out));
  EXPECT_EQ(out, "smart_tv");
  ASSERT_TRUE(FoldEnumName("Samsung Internet", buffer, sizeof(buffer), &out));
  EXPECT_EQ(out, "samsung_internet");
  EXPECT_FALSE(FoldEnumName(std::string(40, 'a'), buffer, sizeof(buffer), &out));
}

TEST(FieldParsersTest, Utf8ValidationFollowsRfc3629) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  bool incomplete = false;
  const auto* euro = reinterpret_cast<const unsigned char*>("\xE2\x82\xAC");
  EXPECT_EQ(Utf8SequenceLength(euro, 2, &incomplete), 0u);
  EXPECT_TRUE(incomplete);
  EXPECT_EQ(Utf8SequenceLength(euro, 3, &incomplete), 3u);
  EXPECT_FALSE(incomplete);
}

}  // namespace
}  // namespace ecomstream::processor

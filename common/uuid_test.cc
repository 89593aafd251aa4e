#include "common/uuid.h"

#include <cctype>
#include <string>

#include "gtest/gtest.h"

namespace ecomstream {
namespace {

TEST(UuidTest, V7CarriesTimestampVersionAndVariant) {
  Uuid u = UuidV7(0x0123456789ab, 0xffffffffffffffffULL, 0);
  std::string text = FormatUuid(u);
  EXPECT_EQ(text.substr(0, 13), "01234567-89ab");
  EXPECT_EQ(text[14], '7');
  EXPECT_TRUE(text[19] == '8' || text[19] == '9' || text[19] == 'a' || text[19] == 'b');
}

TEST(UuidTest, V7IsDeterministicForSameInputs) {
  EXPECT_EQ(FormatUuid(UuidV7(1700000000000, 42, 7)), FormatUuid(UuidV7(1700000000000, 42, 7)));
  EXPECT_NE(FormatUuid(UuidV7(1700000000000, 42, 7)), FormatUuid(UuidV7(1700000000000, 43, 7)));
}

TEST(UuidTest, V4HasVersionFour) {
  std::string text = FormatUuid(NewUuidV4());
  EXPECT_EQ(text[14], '4');
}

TEST(UuidTest, ParseRoundTripsAndRejectsMalformed) {
  Uuid u = NewUuidV4();
  Uuid parsed;
  ASSERT_TRUE(ParseUuid(FormatUuid(u), &parsed));
  EXPECT_EQ(parsed, u);
  ASSERT_TRUE(ParseUuid("0189ABCD-0000-7000-8000-00000000000F", &parsed));
  EXPECT_EQ(FormatUuid(parsed), "0189abcd-0000-7000-8000-00000000000f");
  EXPECT_FALSE(ParseUuid("", &parsed));
  EXPECT_FALSE(ParseUuid("0189abcd00007000800000000000000f", &parsed));
  EXPECT_FALSE(ParseUuid("0189abcd-0000-7000-8000-00000000000g", &parsed));
  EXPECT_FALSE(ParseUuid("0189abcd-0000-7000-8000_00000000000f", &parsed));
  EXPECT_FALSE(ParseUuid("'; DROP TABLE events; --xxxxxxxxxxxxx", &parsed));
}

TEST(UuidTest, ParseRejectsWrongLengthsSeparatorsAndNonHexAnywhere) {
  Uuid parsed;
  for (const std::string& text : {std::string("018f3a6e-1b2c-7d3e-8f40-123456789ab"),
                                  std::string("018f3a6e-1b2c-7d3e-8f40-123456789abcd"),
                                  std::string("018f3a6e1b2c-7d3e-8f40-123456789abc-"),
                                  std::string("g18f3a6e-1b2c-7d3e-8f40-123456789abc"),
                                  std::string("018f3a6e-1b2c-7d3e-8f4-0123456789abc"),
                                  std::string("{18f3a6e-1b2c-7d3e-8f40-123456789abc"),
                                  std::string("018f3a6e-1b2c-7d3e-8f40-12345678 abc"),
                                  std::string("018f3a6e-1b2c-7d3e-8f40-12345678\0abc", 36)}) {
    EXPECT_FALSE(ParseUuid(text, &parsed)) << text;
  }
  ASSERT_TRUE(ParseUuid("ffffffff-ffff-ffff-ffff-ffffffffffff", &parsed));
  Uuid all_ones;
  all_ones.fill(0xff);
  EXPECT_EQ(parsed, all_ones);
}

TEST(UuidTest, ParseAcceptsExactlyTheHexDigitsInEveryDigitPosition) {
  const std::string base = "018f3a6e-1b2c-7d3e-8f40-123456789abc";
  for (size_t pos = 0; pos < base.size(); ++pos) {
    if (base[pos] == '-') continue;
    for (int c = 0; c < 256; ++c) {
      std::string text = base;
      text[pos] = static_cast<char>(c);
      const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      Uuid parsed;
      ASSERT_EQ(ParseUuid(text, &parsed), hex) << "position " << pos << " byte " << c;
      if (hex) {
        std::string lower = text;
        for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        EXPECT_EQ(FormatUuid(parsed), lower);
      }
    }
  }
}

}  // namespace
}  // namespace ecomstream

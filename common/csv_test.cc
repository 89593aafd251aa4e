#include "common/csv.h"

#include "gtest/gtest.h"

namespace ecomstream {
namespace {

std::string Field(absl::string_view value) {
  std::string out;
  AppendCsvField(value, &out);
  return out;
}

TEST(CsvWriterTest, PlainFieldIsUnquoted) { EXPECT_EQ(Field("view"), "view"); }

TEST(CsvWriterTest, SpecialCharactersAreQuotedAndQuotesDoubled) {
  EXPECT_EQ(Field("a,b"), "\"a,b\"");
  EXPECT_EQ(Field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(Field("line1\nline2"), "\"line1\nline2\"");
  EXPECT_EQ(Field("cr\r"), "\"cr\r\"");
  EXPECT_EQ(Field(" padded "), "\" padded \"");
  EXPECT_EQ(Field(""), "");
}

}  // namespace
}  // namespace ecomstream

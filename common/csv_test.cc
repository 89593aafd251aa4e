#include "common/csv.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

// "line:raw|field|field..." per record, "!" before raw for a malformed one.
std::vector<std::string> Split(absl::string_view text) {
  std::vector<std::string> out;
  for (const CsvTextRecord& record : SplitCsvRecords(text)) {
    std::string line = absl::StrCat(record.line, ":", record.malformed ? "!" : "", record.raw);
    for (const std::string& field : record.fields) absl::StrAppend(&line, "|", field);
    out.push_back(line);
  }
  return out;
}

TEST(SplitCsvRecordsTest, QuotedFieldsKeepCommasQuotesAndNewlinesAndLinesAreCounted) {
  EXPECT_EQ(Split("a,b\n\"x,1\",\"say \"\"hi\"\"\"\n\"two\nlines\",z\nlast,"),
            (std::vector<std::string>{"1:a,b|a|b", "2:\"x,1\",\"say \"\"hi\"\"\"|x,1|say \"hi\"",
                                      "3:\"two\nlines\",z|two\nlines|z", "5:last,|last|"}));
}

TEST(SplitCsvRecordsTest, CrlfBomAndEmptyLines) {
  EXPECT_EQ(Split("\xEF\xBB\xBFh1,h2\r\n\r\n\n1,2\r\nlone\rcr,3\n"),
            (std::vector<std::string>{"1:h1,h2|h1|h2", "4:1,2|1|2", "5:lone\rcr,3|lone\rcr|3"}));
}

TEST(SplitCsvRecordsTest, BrokenQuotingEndsTheRecordAtItsLineEndWithoutFields) {
  EXPECT_EQ(Split("a,b\"c,d\nok,1\n\"closed\"x,2\r\nnext,3\n"),
            (std::vector<std::string>{"1:!a,b\"c,d", "2:ok,1|ok|1", "3:!\"closed\"x,2", "4:next,3|next|3"}));
}

TEST(SplitCsvRecordsTest, AnUnterminatedQuoteTakesTheRestOfTheText) {
  EXPECT_EQ(Split("h\n1,\"open\n2,3\n"), (std::vector<std::string>{"1:h|h", "2:!1,\"open\n2,3"}));
  EXPECT_TRUE(SplitCsvRecords("").empty());
  EXPECT_TRUE(SplitCsvRecords("\n\r\n").empty());
}

}  // namespace
}  // namespace ecomstream

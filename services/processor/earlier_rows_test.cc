#include "services/processor/earlier_rows.h"

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::TempDir;

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Reads every record of `path` once, noting it, as the validator does.
void NoteAll(const std::string& path, RereadRows* rows) {
  std::unique_ptr<FileByteSource> source = *FileByteSource::Open(path);
  CsvReader reader(source.get(), CsvReaderOptions{});
  CsvRecord record;
  int64_t row = 0;
  while (*reader.Next(&record)) rows->Note(++row, record);
}

TEST(RereadRowsTest, FindsEveryRowAgainAfterAByteOrderMarkBlankLinesAndQuotedNewlines) {
  TempDir dir("reread");
  const std::string path = dir.File("f.csv");
  std::string text = "\xEF\xBB\xBF";
  for (int i = 1; i <= 50; ++i) {
    absl::StrAppend(&text, i, ",\"line\n", i, "\"\r\n", i % 7 == 0 ? "\n" : "");
  }
  Write(path, text);
  std::unique_ptr<RereadRows> rows = RereadRows::ForFile(path, CsvReaderOptions{});
  NoteAll(path, rows.get());
  CsvRecord record;
  for (int row : {1, 16, 17, 33, 50, 2}) {
    ASSERT_TRUE(rows->Find(row, &record).ok()) << row;
    ASSERT_EQ(record.fields.size(), 2u);
    EXPECT_EQ(record.fields[0], absl::StrCat(row));
    EXPECT_EQ(record.fields[1], absl::StrCat("line\n", row));
  }
}

TEST(RereadRowsTest, ARowNoLongerInTheFileIsDataLossAndAnUnreadRowIsInternal) {
  TempDir dir("reread");
  const std::string path = dir.File("f.csv");
  std::string text;
  for (int i = 1; i <= 40; ++i) absl::StrAppend(&text, i, ",x\n");
  Write(path, text);
  std::unique_ptr<RereadRows> rows = RereadRows::ForFile(path, CsvReaderOptions{});
  NoteAll(path, rows.get());
  Write(path, "1,x\n2,x\n");  // replaced by a shorter file
  CsvRecord record;
  EXPECT_EQ(rows->Find(40, &record).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(rows->Find(41 + RereadRows::kRowsPerMark, &record).code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ecomstream::processor

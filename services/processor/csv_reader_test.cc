#include "services/processor/csv_reader.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Rec {
  int64_t line;
  std::string raw;
  std::vector<std::string> fields;
  uint8_t flags;
  size_t raw_size;
};

// Reads every record of `data`, `chunk` bytes at a time.
std::vector<Rec> ReadAll(const std::string& data, size_t max_row_bytes = 65536, size_t chunk = 7) {
  StringByteSource source(data);
  CsvReader reader(&source, CsvReaderOptions{max_row_bytes, chunk});
  std::vector<Rec> out;
  CsvRecord record;
  for (;;) {
    absl::StatusOr<bool> more = reader.Next(&record);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    Rec r{record.line, std::string(record.raw), {}, record.flags, record.raw_size};
    for (absl::string_view f : record.fields) r.fields.emplace_back(f);
    out.push_back(std::move(r));
  }
  return out;
}

class CsvReaderChunkTest : public ::testing::TestWithParam<size_t> {
 protected:
  std::vector<Rec> Read(const std::string& data, size_t max_row_bytes = 65536) {
    return ReadAll(data, max_row_bytes, GetParam());
  }
};

// Every test runs with chunks of 1 byte (every boundary), 7 bytes and 64 KiB (one read).
INSTANTIATE_TEST_SUITE_P(Chunks, CsvReaderChunkTest, ::testing::Values(1, 7, 65536));

TEST_P(CsvReaderChunkTest, SplitsSimpleRecordsAndNumbersLines) {
  auto recs = Read("a,b,c\n1,2,3\n");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].line, 1);
  EXPECT_THAT(recs[0].fields, ElementsAre("a", "b", "c"));
  EXPECT_EQ(recs[1].line, 2);
  EXPECT_THAT(recs[1].fields, ElementsAre("1", "2", "3"));
  EXPECT_EQ(recs[1].raw, "1,2,3");
  EXPECT_EQ(recs[1].flags, 0);
}

TEST_P(CsvReaderChunkTest, QuotedFieldsHoldCommasQuotesAndNewlines) {
  auto recs = Read("h1,h2\n\"a,b\",\"say \"\"hi\"\"\"\n\"multi\nline\",x\nnext,1\n");
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_THAT(recs[1].fields, ElementsAre("a,b", "say \"hi\""));
  EXPECT_EQ(recs[1].raw, "\"a,b\",\"say \"\"hi\"\"\"");
  EXPECT_THAT(recs[2].fields, ElementsAre("multi\nline", "x"));
  EXPECT_EQ(recs[2].line, 3);
  EXPECT_EQ(recs[3].line, 5);  // the quoted newline took line 4
  EXPECT_THAT(recs[3].fields, ElementsAre("next", "1"));
}

TEST_P(CsvReaderChunkTest, CrlfTerminatorsAreNotPartOfFieldsOrRaw) {
  auto recs = Read("a,b\r\n\"q\",x\r\n\"z\"\r\nlast,\r\n");
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_THAT(recs[0].fields, ElementsAre("a", "b"));
  EXPECT_EQ(recs[0].raw, "a,b");
  EXPECT_THAT(recs[1].fields, ElementsAre("q", "x"));
  EXPECT_THAT(recs[2].fields, ElementsAre("z"));
  EXPECT_EQ(recs[2].raw, "\"z\"");
  EXPECT_THAT(recs[3].fields, ElementsAre("last", ""));
  EXPECT_EQ(recs[3].line, 4);
}

TEST_P(CsvReaderChunkTest, CrlfInsideQuotesIsData) {
  auto recs = Read("\"a\r\nb\",c\r\n");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_THAT(recs[0].fields, ElementsAre("a\r\nb", "c"));
}

TEST_P(CsvReaderChunkTest, SkipsUtf8BomOnlyAtStart) {
  auto recs = Read("\xEF\xBB\xBFh1,h2\n\xEF\xBB\xBFx,y\n");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_THAT(recs[0].fields, ElementsAre("h1", "h2"));
  EXPECT_THAT(recs[1].fields, ElementsAre("\xEF\xBB\xBFx", "y"));  // a BOM later is data
  EXPECT_EQ(recs[1].flags, 0);
}

TEST_P(CsvReaderChunkTest, EmptyLinesAreNotRecordsButCountAsLines) {
  auto recs = Read("h\n\n\r\na\n\n\nb\n\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].line, 1);
  EXPECT_EQ(recs[1].line, 4);
  EXPECT_EQ(recs[1].raw, "a");
  EXPECT_EQ(recs[2].line, 7);
}

TEST_P(CsvReaderChunkTest, LastRecordWithoutTerminator) {
  auto recs = Read("a,b\nc,d");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_THAT(recs[1].fields, ElementsAre("c", "d"));
  EXPECT_EQ(recs[1].raw, "c,d");
  auto quoted = Read("a\n\"c\"");
  ASSERT_EQ(quoted.size(), 2u);
  EXPECT_THAT(quoted[1].fields, ElementsAre("c"));
}

TEST_P(CsvReaderChunkTest, EmptyFieldsAndEmptyQuotedFields) {
  auto recs = Read(",,\n\"\",\"\"\n");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_THAT(recs[0].fields, ElementsAre("", "", ""));
  EXPECT_THAT(recs[1].fields, ElementsAre("", ""));
  EXPECT_EQ(recs[1].flags, 0);
}

TEST_P(CsvReaderChunkTest, QuoteInsideUnquotedFieldEndsRecordAtEndOfLine) {
  auto recs = Read("h1,h2\nab\"c,d\nok,1\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].flags, kCsvMalformedQuoting);
  EXPECT_EQ(recs[1].raw, "ab\"c,d");
  EXPECT_THAT(recs[1].fields, IsEmpty());
  EXPECT_EQ(recs[1].line, 2);
  EXPECT_THAT(recs[2].fields, ElementsAre("ok", "1"));
  EXPECT_EQ(recs[2].line, 3);
}

TEST_P(CsvReaderChunkTest, CharacterAfterClosingQuoteIsMalformed) {
  auto recs = Read("\"ab\"c,d\r\nok\n\"x\"\ry\nfine\n");
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].flags, kCsvMalformedQuoting);
  EXPECT_EQ(recs[0].raw, "\"ab\"c,d");
  EXPECT_THAT(recs[1].fields, ElementsAre("ok"));
  EXPECT_EQ(recs[2].flags, kCsvMalformedQuoting);
  EXPECT_EQ(recs[2].raw, "\"x\"\ry");
  EXPECT_THAT(recs[3].fields, ElementsAre("fine"));
}

TEST_P(CsvReaderChunkTest, MalformedRecordSpanningLinesEndsAtTheLineWhereItBroke) {
  // The quoted field opens on line 2 and is broken on line 3; the record ends with line 3.
  auto recs = Read("h\n\"open\nstill\"x more\nnext\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].line, 2);
  EXPECT_EQ(recs[1].flags, kCsvMalformedQuoting);
  EXPECT_EQ(recs[1].raw, "\"open\nstill\"x more");
  EXPECT_EQ(recs[2].line, 4);
  EXPECT_THAT(recs[2].fields, ElementsAre("next"));
}

TEST_P(CsvReaderChunkTest, UnterminatedQuoteAtEofMakesTheRestOneRecord) {
  auto recs = Read("h\nok\n\"never closed,a\nb,c\nd\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[2].line, 3);
  EXPECT_EQ(recs[2].flags, kCsvMalformedQuoting);
  EXPECT_EQ(recs[2].raw, "\"never closed,a\nb,c\nd\n");
}

TEST_P(CsvReaderChunkTest, NulByteIsFlaggedAndFieldsStillSplit) {
  auto recs = Read(std::string("a,b\x00z,c\nok\n", 11));
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].flags, kCsvNulByte);
  EXPECT_EQ(recs[0].fields.size(), 3u);
  EXPECT_EQ(recs[1].flags, 0);
}

TEST_P(CsvReaderChunkTest, InvalidUtf8IsFlaggedValidMultibyteIsNot) {
  auto recs = Read("caf\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80\nbad\xFF,x\n\xC3(\n\xED\xA0\x80\n\xC0\xAF\n\"q\xE2\x82\"\n");
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(recs[0].flags, 0);
  EXPECT_THAT(recs[0].fields, ElementsAre("caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"));
  EXPECT_EQ(recs[1].flags, kCsvInvalidUtf8);
  EXPECT_EQ(recs[2].flags, kCsvInvalidUtf8);  // truncated sequence
  EXPECT_EQ(recs[3].flags, kCsvInvalidUtf8);  // surrogate
  EXPECT_EQ(recs[4].flags, kCsvInvalidUtf8);  // overlong
  EXPECT_EQ(recs[5].flags, kCsvInvalidUtf8);  // cut by the closing quote
}

// The reader skips plain bytes up to 16 at a time: every stop byte must be found at every
// offset of a field, in every state, and wherever a read ends.
TEST_P(CsvReaderChunkTest, StopBytesAreFoundAtEveryOffsetOfALongField) {
  for (size_t k = 0; k < 40; ++k) {
    const std::string plain(k, 'p');
    SCOPED_TRACE(k);
    auto recs = Read(plain + ",x\n\"" + plain + "\"\"q\"\n" + plain + "\xC3\xA9," + plain + "\n");
    ASSERT_EQ(recs.size(), 3u);
    EXPECT_THAT(recs[0].fields, ElementsAre(plain, "x"));
    EXPECT_THAT(recs[1].fields, ElementsAre(plain + "\"q"));
    EXPECT_EQ(recs[2].flags, 0);
    EXPECT_THAT(recs[2].fields, ElementsAre(plain + "\xC3\xA9", plain));

    recs = Read(plain + std::string("\0", 1) + plain + ",y\nm" + plain + "\"" + plain + ",\xFF\nz\n\"" + plain +
                "\xFF\"\n");
    ASSERT_EQ(recs.size(), 4u);
    EXPECT_EQ(recs[0].flags, kCsvNulByte);
    EXPECT_THAT(recs[0].fields, ElementsAre(plain + std::string("\0", 1) + plain, "y"));
    // The quote, then 0xFF in the rest of the line.
    EXPECT_EQ(recs[1].flags, kCsvMalformedQuoting | kCsvInvalidUtf8);
    EXPECT_EQ(recs[1].raw, "m" + plain + "\"" + plain + ",\xFF");
    EXPECT_THAT(recs[2].fields, ElementsAre("z"));
    EXPECT_EQ(recs[3].flags, kCsvInvalidUtf8);
    EXPECT_EQ(recs[3].line, 4);
  }
}

TEST_P(CsvReaderChunkTest, TruncatedUtf8AtEndOfInputIsInvalid) {
  auto recs = Read("ok\nab\xE2\x82");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].flags, kCsvInvalidUtf8);
  EXPECT_EQ(recs[1].raw, "ab\xE2\x82");
}

TEST_P(CsvReaderChunkTest, RecordOverTheLimitIsFlaggedTruncatedAndSkippedToItsEnd) {
  const std::string big(100, 'x');
  auto recs = Read("h\n" + big + "," + big + "\r\nnext\n\"" + big + "\n" + big + "\"\nlast\n", 64);
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs[1].flags, kCsvTooLarge);
  EXPECT_EQ(recs[1].raw_size, 201u);
  EXPECT_EQ(recs[1].raw, big.substr(0, 64));
  EXPECT_THAT(recs[1].fields, IsEmpty());
  EXPECT_THAT(recs[2].fields, ElementsAre("next"));
  EXPECT_EQ(recs[3].flags, kCsvTooLarge);  // quoted newline inside the oversized record
  EXPECT_EQ(recs[3].line, 4);
  EXPECT_EQ(recs[3].raw_size, 203u);
  EXPECT_THAT(recs[4].fields, ElementsAre("last"));
  EXPECT_EQ(recs[4].line, 6);
}

TEST_P(CsvReaderChunkTest, RecordExactlyAtTheLimitIsAccepted) {
  const std::string exact(64, 'y');
  auto recs = Read(exact + "\n" + exact + "y\n", 64);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].flags, 0);
  EXPECT_EQ(recs[1].flags, kCsvTooLarge);
}

// Emits `total` bytes of a repeated row without ever holding them.
class RepeatingSource : public ByteSource {
 public:
  static constexpr absl::string_view kRow = "0123456789,abcdefghij,\"q,\"\"q\"\n";
  static constexpr uint64_t kTotal = 50'000'000 / kRow.size() * kRow.size();
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override {
    size_t n = 0;
    while (n < size && emitted_ < kTotal) buffer[n++] = kRow[emitted_++ % kRow.size()];
    return n;
  }

 private:
  uint64_t emitted_ = 0;
};

TEST(CsvReaderTest, HugeInputStreamsThroughABoundedBuffer) {
  // 50 MB through a reader whose buffer is about 65 KB: nothing is loaded whole.
  RepeatingSource source;
  CsvReader reader(&source, CsvReaderOptions{1024, 64 * 1024});
  CsvRecord record;
  int64_t records = 0;
  while (*reader.Next(&record)) {
    ++records;
    ASSERT_EQ(record.fields.size(), 3u);
    ASSERT_EQ(record.fields[2], "q,\"q");
  }
  EXPECT_EQ(records, static_cast<int64_t>(RepeatingSource::kTotal / RepeatingSource::kRow.size()));
  EXPECT_EQ(reader.bytes_read(), RepeatingSource::kTotal);
}

TEST(CsvReaderTest, EmptyInputHasNoRecords) {
  EXPECT_THAT(ReadAll(""), IsEmpty());
  EXPECT_THAT(ReadAll("\xEF\xBB\xBF"), IsEmpty());
  EXPECT_THAT(ReadAll("\n\n\r\n"), IsEmpty());
}

TEST(CsvReaderTest, ObserverSeesEveryByteInOrder) {
  const std::string data = "\xEF\xBB\xBFh,i\n1,2\n";
  StringByteSource source(data);
  CsvReader reader(&source, CsvReaderOptions{64, 3});
  std::string seen;
  reader.set_byte_observer(
      [](void* out, absl::string_view bytes) { static_cast<std::string*>(out)->append(bytes.data(), bytes.size()); },
                           &seen);
  CsvRecord record;
  while (*reader.Next(&record)) {
  }
  EXPECT_EQ(seen, data);
}

TEST(CsvReaderTest, SourceErrorIsReturnedAndCountedAsFailed) {
  class FailingSource : public ByteSource {
    absl::StatusOr<size_t> Read(char*, size_t) override { return absl::DataLossError("disk on fire"); }
  } source;
  metrics::Registry registry;
  ComponentCounters counters(registry, "csv_reader");
  CsvReader reader(&source, CsvReaderOptions{}, &counters);
  CsvRecord record;
  absl::StatusOr<bool> result = reader.Next(&record);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(counters.received.Value(), 0);
  EXPECT_EQ(counters.failed.Value(), 1);
}

TEST(CsvReaderTest, CountsEveryRecordAndFailsMalformedAndOversizedOnes) {
  // A header, a good record, a malformed one, an oversized one, and a NUL byte (whose fields
  // still split: not a read failure).
  const std::string data = "a,b\n1,2\n\"x\"y,3\n" + std::string(40, 'z') + "\n4," + '\0' + "\n";
  StringByteSource source(data);
  metrics::Registry registry;
  ComponentCounters counters(registry, "csv_reader");
  CsvReader reader(&source, CsvReaderOptions{32, 7}, &counters);
  CsvRecord record;
  int records = 0;
  while (*reader.Next(&record)) ++records;
  EXPECT_EQ(records, 5);
  EXPECT_EQ(counters.received.Value(), 5);
  EXPECT_EQ(counters.sent.Value(), 5);  // unreadable records still go on, to become dead letters
  EXPECT_EQ(counters.dropped.Value(), 0);
  EXPECT_EQ(counters.failed.Value(), 2);
}

TEST(CsvReaderTest, CountersCatchUpEvery1024RecordsAndAtTheEnd) {
  std::string data;
  for (int i = 0; i < 1500; ++i) absl::StrAppend(&data, i, ",x\n");
  StringByteSource source(data);
  metrics::Registry registry;
  ComponentCounters counters(registry, "csv_reader");
  CsvReader reader(&source, CsvReaderOptions{}, &counters);
  CsvRecord record;
  for (int i = 0; i < 1023; ++i) ASSERT_TRUE(*reader.Next(&record));
  EXPECT_EQ(counters.received.Value(), 0);  // not yet added
  ASSERT_TRUE(*reader.Next(&record));
  EXPECT_EQ(counters.received.Value(), 1024);
  EXPECT_EQ(counters.sent.Value(), 1024);
  while (*reader.Next(&record)) {
  }
  EXPECT_EQ(counters.received.Value(), 1500);
  EXPECT_EQ(counters.sent.Value(), 1500);
  EXPECT_EQ(counters.failed.Value(), 0);
}

}  // namespace
}  // namespace ecomstream::processor

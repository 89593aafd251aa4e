// CSV per RFC 4180 and docs/rows.md ("Records, rows and lines"): writing a field (the
// generator's side), and splitting a whole text into records, the plain reading the tests judge
// by. (The processor reads with its own streaming csv_reader: bounded memory, views into its
// buffers; its tests hold it to the same rules.)
#ifndef ECOMSTREAM_COMMON_CSV_H_
#define ECOMSTREAM_COMMON_CSV_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ecomstream {

// Appends `field` to `out`, quoted (with "" for ") when it holds a comma, quote, CR or LF, or
// leading/trailing space.
void AppendCsvField(absl::string_view field, std::string* out);

struct CsvTextRecord {
  int64_t line = 0;                 // 1-based physical line the record starts on
  std::string raw;                  // the record's bytes without its terminator
  std::vector<std::string> fields;  // unquoted and unescaped, not trimmed; empty when malformed
  bool malformed = false;           // broken quoting (the record then ends at its line's end)
};

// Splits `text` into records:
// - records end in "\n" or "\r\n"; a UTF-8 BOM at the very start is skipped;
// - a completely empty line is not a record (its line is counted);
// - a quote inside an unquoted field, or anything but ',', "\r\n" or "\n" after a closing quote,
//   makes the record malformed; it then ends at the end of that physical line;
// - an unterminated quote makes the rest of the text one malformed record.
// Bytes are not checked (UTF-8, NUL): that is the caller's.
std::vector<CsvTextRecord> SplitCsvRecords(absl::string_view text);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_CSV_H_

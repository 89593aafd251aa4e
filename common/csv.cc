#include "common/csv.h"

namespace ecomstream {

void AppendCsvField(absl::string_view field, std::string* out) {
  bool quote = !field.empty() && (field.front() == ' ' || field.back() == ' ');
  for (char c : field) {
    if (c == ',' || c == '"' || c == '\n' || c == '\r') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out->append(field.data(), field.size());
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

std::vector<CsvTextRecord> SplitCsvRecords(absl::string_view text) {
  std::vector<CsvTextRecord> records;
  const size_t n = text.size();
  size_t pos = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  int64_t line = 1;
  auto is_crlf = [&](size_t at) { return at + 1 < n && text[at] == '\r' && text[at + 1] == '\n'; };
  // Ends the record at `at`, a terminator (or the end of the text); returns where the next starts.
  auto terminate = [&](size_t at, size_t* end) {
    *end = at;
    if (at >= n) return n;
    ++line;
    return at + (text[at] == '\n' ? 1 : 2);
  };
  while (pos < n) {
    if (text[pos] == '\n' || is_crlf(pos)) {  // an empty line is not a record
      pos += text[pos] == '\n' ? 1 : 2;
      ++line;
      continue;
    }
    CsvTextRecord record;
    record.line = line;
    const size_t start = pos;
    size_t end = n;   // end of the record's bytes
    size_t next = n;  // where the next record starts
    bool to_end_of_line = false;
    std::string field;
    for (;;) {
      if (pos < n && text[pos] == '"') {
        ++pos;
        bool closed = false;
        while (pos < n) {
          if (text[pos] == '"') {
            if (pos + 1 < n && text[pos + 1] == '"') {
              field += '"';
              pos += 2;
              continue;
            }
            ++pos;
            closed = true;
            break;
          }
          if (text[pos] == '\n') ++line;
          field += text[pos++];
        }
        if (!closed) {  // the rest of the text, without a final terminator
          record.malformed = true;
          end = n;
          if (end > start && text[end - 1] == '\n') --end;
          if (end > start && text[end - 1] == '\r') --end;
          next = n;
          break;
        }
        if (pos < n && text[pos] != ',' && text[pos] != '\n' && !is_crlf(pos)) {
          to_end_of_line = true;  // something after the closing quote
          break;
        }
      } else {
        while (pos < n && text[pos] != ',' && text[pos] != '\n' && !is_crlf(pos) && text[pos] != '"') {
          field += text[pos++];
        }
        if (pos < n && text[pos] == '"') {  // a quote inside an unquoted field
          to_end_of_line = true;
          break;
        }
      }
      record.fields.push_back(std::move(field));
      field.clear();
      if (pos < n && text[pos] == ',') {
        ++pos;
        continue;
      }
      next = terminate(pos, &end);
      break;
    }
    if (to_end_of_line) {
      record.malformed = true;
      const size_t newline = text.find('\n', pos);
      if (newline == absl::string_view::npos) {
        end = next = n;
      } else {
        end = newline > start && text[newline - 1] == '\r' ? newline - 1 : newline;
        next = newline + 1;
        ++line;
      }
    }
    if (record.malformed) record.fields.clear();
    record.raw = std::string(text.substr(start, end - start));
    records.push_back(std::move(record));
    pos = next;
  }
  return records;
}

}  // namespace ecomstream

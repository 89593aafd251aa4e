// Turns ShopperEvents into CSV records (RFC 4180) for one file's column order.
//
// Clean fields are written in their stored form: UUIDs in canonical lower case, integers,
// prices as units with two decimals ("12.99"), event_time as ISO 8601 UTC with milliseconds
// ("2026-05-01T12:34:56.789Z"); a missing value is an empty field (NULL). Numbers, UUIDs and
// timestamps are formatted by hand (two digits or one byte's hex at a time, from tables) straight
// into the caller's buffer: no allocation nor string append per field.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_CSV_ROW_ENCODER_H_
#define ECOMSTREAM_SERVICES_GENERATOR_CSV_ROW_ENCODER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "services/generator/schema.h"
#include "services/generator/shopper_model.h"

namespace ecomstream::generator {

// How the anomaly injector bends one record. A default (or Clear()ed) plan is a clean record.
struct RowPlan {
  // When not empty: the whole record (without terminator), written as is (an exact duplicate).
  std::string verbatim;
  // When set, `column`'s field is `text` written as is (no quoting), or omitted from the record.
  bool has_override = false;
  bool omit_column = false;
  Column column = Column::kEventId;
  std::string text;

  void Clear() {
    verbatim.clear();
    has_override = false;
    omit_column = false;
    text.clear();
  }
};

// Appends `value` in decimal.
void AppendInt(int64_t value, std::string* out);
// Appends cents as units with two decimals: 1299 -> "12.99", -5 -> "-0.05".
void AppendCents(int64_t cents, std::string* out);
// Appends "yyyy-mm-ddThh:mm:ss.mmmZ".
void AppendIsoMillis(int64_t unix_ms, std::string* out);
// Appends the clean CSV text of one field of `event`.
void AppendCleanField(const ShopperEvent& event, Column column, std::string* out);

class CsvRowEncoder {
 public:
  // `columns`: the file's columns in header order. `crlf`: end records with "\r\n", else "\n".
  CsvRowEncoder(std::vector<Column> columns, bool crlf);

  // Appends the header record and its terminator.
  void AppendHeader(std::string* out) const;
  // Appends `event`'s record as bent by `plan`, then the terminator. Returns the record's
  // length in bytes without the terminator (it ends at out->size() minus the terminator's length).
  size_t AppendRow(const ShopperEvent& event, const RowPlan& plan, std::string* out) const;

  // AppendRow's parts: the most bytes WriteRow can write for `event` and `plan` (terminator
  // included), and WriteRow, which writes the record and its terminator at `out` (room for
  // MaxRowBytes) and returns their end. *length is the record's length without the terminator.
  size_t MaxRowBytes(const ShopperEvent& event, const RowPlan& plan) const;
  char* WriteRow(const ShopperEvent& event, const RowPlan& plan, char* out, size_t* length) const;

 private:
  // event_time's "yyyy-mm-ddThh:mm:ss." for the second last written (rows come in time order).
  struct SecondCache {
    int64_t second = INT64_MIN;
    char text[20];
  };

  char* WriteField(const ShopperEvent& event, Column column, char* out) const;

  std::vector<Column> columns_;
  absl::string_view terminator_;
  mutable SecondCache second_;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_CSV_ROW_ENCODER_H_

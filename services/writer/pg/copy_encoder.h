// PostgreSQL binary COPY payloads ("COPY t (cols) FROM STDIN (FORMAT binary)"), built in memory
// and streamed by PgConnection::CopyIn.
//
// Binary COPY carries values as the server stores them: a uuid is its 16 bytes, text and bytea
// are raw bytes (no escaping, so no escaping bugs), a timestamptz is int64 microseconds. The
// server still checks every value (encoding, ranges, typmods, constraints) and rejects the
// statement with a class 22/23 SQLSTATE, which pg_sink answers by bisecting the batch.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_COPY_ENCODER_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_COPY_ENCODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::writer {

class CopyEncoder {
 public:
  CopyEncoder();  // writes the file header

  // Each row starts with its field count, then exactly that many values.
  void BeginRow(int16_t fields);
  void Null();
  void Int16(int16_t value);
  void Int32(int32_t value);
  void Int64(int64_t value);
  void Bool(bool value);
  void Uuid(absl::string_view raw16);  // must be 16 bytes
  void Text(absl::string_view utf8);
  void Bytea(absl::string_view bytes);
  // timestamptz from microseconds since the Unix epoch. Values beyond int64 after the shift to
  // PostgreSQL's 2000-01-01 epoch are saturated to a finite out-of-range value (never
  // +/-infinity), so the server rejects them instead of storing a sentinel.
  void TimestampMicros(int64_t unix_us);
  // numeric with two decimals from integer cents: 1999 -> 19.99.
  void NumericCents(int64_t cents);
  // text[] (one dimension, no NULLs).
  void TextArray(const std::vector<std::string>& items);

  size_t size() const { return out_.size(); }
  // Appends the trailer; the encoder is spent afterwards.
  std::string Finish();

 private:
  char* Extend(size_t bytes);  // grows out_ by `bytes`, returns where they start
  void Length(int32_t length);
  std::string out_;
};

// The events columns the writer fills, in COPY order (ingested_at takes its default). source_id,
// last, is the batch's row of ecomstream.event_sources (its file name and trace id).
inline constexpr char kEventColumns[] =
    "event_id, user_id, session_id, event_type, product_id, category, price, quantity, total_amount, "
    "event_time, user_segment, device_type, browser, geo_country, geo_city, referrer, campaign_id, "
    "schema_version, late_arrival, source_id";

// Event rows in kEventColumns order, encoded once and copied out by subset: pg_sink encodes a
// batch before its transaction and sends whichever rows turn out new, or stored, inside it, with
// the source_id it takes in there. Empty strings, unset optionals and unspecified enums are NULL;
// money is cents -> numeric(.,2); times are micros -> timestamptz.
// The payload buffer is reused by later batches once this one is destroyed.
class EncodedEvents {
 public:
  EncodedEvents() = default;
  explicit EncodedEvents(const std::vector<const v1::Event*>& events);
  EncodedEvents(EncodedEvents&&) = default;
  EncodedEvents& operator=(EncodedEvents&&) = default;
  ~EncodedEvents();

  // A complete binary COPY payload of the rows at `indices` (into the constructor's `events`),
  // every row with `source_id`: every row in order is the encoded batch itself, without a copy
  // (its rows take `source_id` in place: const, as the encoded values never change, only the key
  // of the transaction sending them); any other subset is built in `*storage`. Valid while this
  // object and `*storage` are, and until the next call.
  absl::string_view Payload(const std::vector<int>& indices, int64_t source_id, std::string* storage) const;
  size_t rows() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }

  // Pooled memory (copy_encoder.cc), not zero-filled: the payload is its first bytes.
  struct Buffer {
    std::unique_ptr<char[]> bytes;
    size_t capacity = 0;
  };

 private:
  absl::string_view encoded() const { return absl::string_view(buffer_.bytes.get(), size_); }

  Buffer buffer_;
  size_t size_ = 0;              // header, every row, trailer
  std::vector<size_t> offsets_;  // row i is encoded()[offsets_[i], offsets_[i + 1])
};

// One binary COPY payload of every event, every row with `source_id`.
std::string EncodeEvents(const std::vector<const v1::Event*>& events, int64_t source_id);

// The dead_letter_events columns the writer fills, in COPY order.
inline constexpr char kDeadLetterColumns[] =
    "file_id, file_name, row_number, line_number, raw, reasons, detail, column_name, file_drop_time, "
    "received_at, trace_id";

struct DeadLetterRow {
  int64_t row = 0;
  int64_t line = 0;  // 0 = unknown (NULL)
  absl::string_view raw;
  std::vector<std::string> reasons;  // stored names: "bad_price"
  std::string detail;
  std::string column;
};

struct DeadLetterMetadata {
  absl::string_view file_id;
  absl::string_view file_name;
  int64_t file_drop_time_us = 0;  // 0 = NULL
  int64_t received_us = 0;
  absl::string_view trace_id;     // empty = NULL
};

// One binary COPY payload of `rows` in kDeadLetterColumns order. raw is stored byte-exact
// (bytea); NUL bytes in detail and column, which text cannot hold, become U+FFFD.
std::string EncodeDeadLetters(const std::vector<DeadLetterRow>& rows, const DeadLetterMetadata& metadata);

// The event as a v3 CSV record (header order event_id, user_id, event_type, product_id, price,
// event_time, session_id, category, quantity, user_segment, device_type, browser, geo_country,
// geo_city, referrer, campaign_id), without a line terminator: the raw text stored for an event
// the database rejected, so it can be fixed and re-dropped like any other dead letter.
std::string FormatEventCsv(const v1::Event& event);

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_COPY_ENCODER_H_

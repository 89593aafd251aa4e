// csv_reader: a streaming RFC 4180 reader with bounded memory (docs/rows.md, "Records, rows and lines").
//
// Reads a byte source in chunks and yields one record at a time. Fields and raw bytes are views
// into the reader's buffers, valid until the next call to Next(). Memory stays below
// about max_row_bytes + 2 * chunk_bytes whatever the file or record size: a record longer than
// max_row_bytes is scanned to its end but only its first max_row_bytes bytes are kept.
//
// Record boundaries (the same rules the generator and the processor's load agree on):
// - records end in "\n" or "\r\n"; a UTF-8 BOM at the very start of the source is skipped;
// - a completely empty line is not a record (it is skipped, but its line is counted);
// - a quote inside an unquoted field, or a character other than ',', '\r', '\n' after a closing
//   quote, makes the record malformed; it then ends at the end of that physical line;
// - an unterminated quote at end of input makes the rest of the input one malformed record.
//
// Not thread-safe; one reader per file.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_CSV_READER_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_CSV_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/processor/component_counters.h"

namespace ecomstream::processor {

// Where the reader's bytes come from.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `size` bytes into `buffer`; returns 0 at end of input. Errors: canonical codes
  // from the underlying I/O (kNotFound, kPermissionDenied, kInternal...).
  virtual absl::StatusOr<size_t> Read(char* buffer, size_t size) = 0;
};

// Reads a file descriptor-backed file sequentially. Open errors: kNotFound, kPermissionDenied.
class FileByteSource : public ByteSource {
 public:
  static absl::StatusOr<std::unique_ptr<FileByteSource>> Open(const std::string& path);
  ~FileByteSource() override;
  FileByteSource(const FileByteSource&) = delete;
  FileByteSource& operator=(const FileByteSource&) = delete;
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override;

 private:
  FileByteSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// Reads from memory (tests, benchmarks). The data must outlive the source.
class StringByteSource : public ByteSource {
 public:
  explicit StringByteSource(absl::string_view data) : data_(data) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override;

 private:
  absl::string_view data_;
};

// Problems found while reading a record; several may be set at once.
enum CsvRecordFlag : uint8_t {
  kCsvMalformedQuoting = 1 << 0,
  kCsvTooLarge = 1 << 1,  // more than max_row_bytes bytes (raw is truncated)
  kCsvInvalidUtf8 = 1 << 2,
  kCsvNulByte = 1 << 3,
};

struct CsvRecord {
  int64_t line = 0;           // 1-based physical line on which the record starts
  uint64_t offset = 0;        // of the record's first byte in the source
  absl::string_view raw;      // record bytes without the terminator (truncated when kCsvTooLarge)
  size_t raw_size = 0;        // full size of the record in bytes, without the terminator
  // Unquoted and unescaped, not trimmed. Empty when the record is malformed or too large.
  std::vector<absl::string_view> fields;
  uint8_t flags = 0;          // CsvRecordFlag bits
  size_t first_bad_byte = 0;  // offset in raw of the first invalid UTF-8 or NUL byte, if flagged
};

struct CsvReaderOptions {
  size_t max_row_bytes = 65536;
  size_t chunk_bytes = 256 * 1024;
  // Skip a UTF-8 byte order mark at the start of the source (off when the source starts at a
  // record in the middle of a file).
  bool skip_bom = true;
};

class CsvReader {
 public:
  // `source` must outlive the reader. `counters` (may be null; must outlive the reader) counts
  // records read and passed on (every record, the header included) and failures: a record whose
  // fields could not be read (malformed quoting or too large; it is still passed on, to become
  // a dead letter) and a read error of the source.
  CsvReader(ByteSource* source, CsvReaderOptions options, ComponentCounters* counters = nullptr);
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record. Returns true and fills `record`, false at end of input, or the
  // source's error. The counters are brought up to date at the end of input, on an error, on
  // destruction, and every 1024 records in between.
  absl::StatusOr<bool> Next(CsvRecord* record);

  // Bytes consumed from the source so far.
  uint64_t bytes_read() const { return bytes_read_; }
  // Every byte read from the source is also passed to `observer`, in order (used to hash a file
  // in the same pass that counts its records).
  void set_byte_observer(void (*observer)(void*, absl::string_view), void* context) {
    observer_ = observer;
    observer_context_ = context;
  }

 private:
  enum class State : uint8_t { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted, kClosedCr, kMalformed };
  struct FieldSpan {
    size_t begin;  // offsets from the record start
    size_t end;
    bool has_escaped_quote;
  };

  // Next without the counting.
  absl::StatusOr<bool> ReadRecord(CsvRecord* record);
  // Ensures more data is buffered after `pos_`; returns false at end of input.
  absl::StatusOr<bool> Fill();
  void ResetRecordState();
  // Moves the record being scanned to the front of the buffer (or drops it when oversized).
  void Compact();
  // Scans from pos_ until the record ends (true) or the buffer is exhausted (false).
  bool Scan();
  void EndField(size_t end);
  void NoteBadByte(size_t offset, uint8_t flag);
  // Ends the pending record at end of input; false if nothing is pending.
  bool EndOfInput();
  // Fills `record` from the scanned record; false for an empty line (not a record).
  bool Finish(CsvRecord* record);

  ByteSource* source_;
  CsvReaderOptions options_;
  BufferedCounts counts_;
  void (*observer_)(void*, absl::string_view) = nullptr;
  void* observer_context_ = nullptr;

  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  size_t start_ = 0;  // record start in buffer_
  size_t pos_ = 0;    // scan position in buffer_
  size_t end_ = 0;    // end of buffered data
  bool eof_ = false;
  bool at_source_start_ = true;

  // Current record.
  State state_ = State::kFieldStart;
  int64_t line_ = 0;  // lines completed
  int64_t record_line_ = 0;
  size_t field_begin_ = 0;  // offset from record start
  size_t quote_end_ = 0;    // offset of the closing quote of the current quoted field
  size_t record_end_ = 0;   // buffer index where the record's raw bytes end
  bool field_has_escape_ = false;
  bool oversized_ = false;
  size_t dropped_ = 0;  // bytes of an oversized record dropped from the buffer
  uint8_t flags_ = 0;
  size_t first_bad_byte_ = 0;
  std::vector<FieldSpan> spans_;  // the first span_count_ are the current record's
  size_t span_count_ = 0;
  std::string oversized_prefix_;
  std::string unescaped_;
  uint64_t bytes_read_ = 0;
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_CSV_READER_H_

#include "services/processor/csv_reader.h"

#include <fcntl.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "services/processor/field_parsers.h"

namespace ecomstream::processor {
namespace {

// Bytes that stop the fast loop in each state. Everything >= 0x80 stops so UTF-8 is validated.
constexpr std::array<bool, 256> MakeStopTable(absl::string_view stops) {
  std::array<bool, 256> table{};
  for (char c : stops) table[static_cast<unsigned char>(c)] = true;
  table[0] = true;
  for (int c = 0x80; c < 256; ++c) table[c] = true;
  return table;
}
constexpr std::array<bool, 256> kUnquotedStops = MakeStopTable(",\"\n");
constexpr std::array<bool, 256> kQuotedStops = MakeStopTable("\"\n");
constexpr std::array<bool, 256> kMalformedStops = MakeStopTable("\n");

constexpr absl::string_view kBom = "\xEF\xBB\xBF";

// The first index in [i, n) whose byte stops the fast loop of a state (`stops`: its table; the
// template arguments say whether ',' and '"' are among its stops besides '\n', NUL and bytes
// >= 0x80), or n. Sixteen bytes at a time where SSE2 is there: most fields are short, so this
// is mostly one compare per field instead of one table lookup per byte.
template <bool kCommaStops, bool kQuoteStops>
inline size_t SkipToStop(const unsigned char* b, size_t i, size_t n, const std::array<bool, 256>& stops) {
#if defined(__SSE2__)
  const __m128i newline = _mm_set1_epi8('\n');
  const __m128i nul = _mm_setzero_si128();
  const __m128i comma = _mm_set1_epi8(',');
  const __m128i quote = _mm_set1_epi8('"');
  while (i + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    __m128i hits = _mm_or_si128(_mm_cmpeq_epi8(v, newline), _mm_cmpeq_epi8(v, nul));
    if (kCommaStops) hits = _mm_or_si128(hits, _mm_cmpeq_epi8(v, comma));
    if (kQuoteStops) hits = _mm_or_si128(hits, _mm_cmpeq_epi8(v, quote));
    // movemask of v itself: the bytes >= 0x80.
    const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(hits) | _mm_movemask_epi8(v));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(mask));
    i += 16;
  }
#endif
  while (i < n && !stops[b[i]]) ++i;
  return i;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileByteSource>> FileByteSource::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<FileByteSource>(new FileByteSource(fd, path));
}

FileByteSource::~FileByteSource() { ::close(fd_); }

absl::StatusOr<size_t> FileByteSource::Read(char* buffer, size_t size) {
  for (;;) {
    const ssize_t n = ::read(fd_, buffer, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return ErrnoToStatus(errno, absl::StrCat("read ", path_));
  }
}

absl::StatusOr<size_t> StringByteSource::Read(char* buffer, size_t size) {
  const size_t n = std::min(size, data_.size());
  std::memcpy(buffer, data_.data(), n);
  data_.remove_prefix(n);
  return n;
}

CsvReader::CsvReader(ByteSource* source, CsvReaderOptions options, ComponentCounters* counters)
    : source_(source),
      options_(options),
      counts_(counters),
      // The record being scanned (at most max_row_bytes before it is declared oversized, plus a
      // UTF-8 sequence waiting for its continuation bytes) and one chunk.
      capacity_(options.max_row_bytes + options.chunk_bytes + 8) {
  buffer_.reset(new char[capacity_]);  // not zeroed: only bytes read into it are looked at
  spans_.resize(32);
}

void CsvReader::ResetRecordState() {
  state_ = State::kFieldStart;
  record_line_ = line_ + 1;
  field_begin_ = 0;
  field_has_escape_ = false;
  oversized_ = false;
  dropped_ = 0;
  flags_ = 0;
  first_bad_byte_ = 0;
  span_count_ = 0;
  oversized_prefix_.clear();
}

absl::StatusOr<bool> CsvReader::Fill() {
  if (eof_) return false;
  const size_t room = capacity_ - end_;
  absl::StatusOr<size_t> n = source_->Read(buffer_.get() + end_, room);
  if (!n.ok()) return n.status();
  if (*n == 0) {
    eof_ = true;
    return false;
  }
  if (observer_ != nullptr) observer_(observer_context_, absl::string_view(buffer_.get() + end_, *n));
  end_ += *n;
  bytes_read_ += *n;
  return true;
}

void CsvReader::Compact() {
  if (!oversized_ && dropped_ + (pos_ - start_) > options_.max_row_bytes) {
    // Keep the first max_row_bytes for the dead letter; scan the rest without storing it.
    oversized_ = true;
    flags_ |= kCsvTooLarge;
    oversized_prefix_.assign(buffer_.get() + start_, options_.max_row_bytes);
    span_count_ = 0;
  }
  if (oversized_ && pos_ - start_ > 1) {
    // Keep the last scanned byte: a '\n' arriving next looks back at it for "\r\n".
    const size_t drop = pos_ - 1 - start_;
    dropped_ += drop;
    start_ += drop;
  }
  if (start_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + start_, end_ - start_);
    pos_ -= start_;
    end_ -= start_;
    start_ = 0;
  }
}

inline void CsvReader::EndField(size_t end) {
  if (oversized_) return;
  if (span_count_ == spans_.size()) spans_.resize(2 * spans_.size());
  // Member by member: building a FieldSpan and copying it stalls on store forwarding.
  FieldSpan& span = spans_[span_count_++];
  span.begin = field_begin_;
  span.end = end;
  span.has_escaped_quote = field_has_escape_;
}

void CsvReader::NoteBadByte(size_t offset, uint8_t flag) {
  if ((flags_ & (kCsvInvalidUtf8 | kCsvNulByte)) == 0) first_bad_byte_ = offset;
  flags_ |= flag;
}

bool CsvReader::Scan() {
  const auto* b = reinterpret_cast<const unsigned char*>(buffer_.get());
  size_t i = pos_;
  const size_t n = end_;
  // Handles a stop byte that is NUL or >= 0x80 in any state; false means "wait for more data".
  auto special = [&](size_t* at) {
    const unsigned char c = b[*at];
    if (c == 0) {
      NoteBadByte(dropped_ + *at - start_, kCsvNulByte);
      ++*at;
      return true;
    }
    bool incomplete = false;
    const size_t length = Utf8SequenceLength(b + *at, n - *at, &incomplete);
    if (incomplete && !eof_) return false;  // wait for the rest of the sequence
    if (length == 0) {
      NoteBadByte(dropped_ + *at - start_, kCsvInvalidUtf8);
      ++*at;
    } else {
      *at += length;
    }
    return true;
  };
  // The record ends with the '\n' at `at`; a '\r' before it belongs to the terminator.
  auto end_record_at_newline = [&](size_t at) {
    record_end_ = (at > start_ && b[at - 1] == '\r') ? at - 1 : at;
    ++line_;
    pos_ = at + 1;
  };

  while (i < n) {
    switch (state_) {
      case State::kFieldStart:
        if (b[i] == '"') {
          state_ = State::kQuoted;
          field_begin_ = i - start_ + 1;
          field_has_escape_ = false;
          ++i;
        } else {
          state_ = State::kUnquoted;
          field_begin_ = i - start_;
          field_has_escape_ = false;
        }
        break;
      case State::kUnquoted: {
        i = SkipToStop<true, true>(b, i, n, kUnquotedStops);
        if (i == n) break;
        const unsigned char c = b[i];
        if (c == ',') {
          EndField(i - start_);
          state_ = State::kFieldStart;
          ++i;
        } else if (c == '\n') {
          end_record_at_newline(i);
          EndField(record_end_ - start_);
          return true;
        } else if (c == '"') {
          flags_ |= kCsvMalformedQuoting;
          state_ = State::kMalformed;
          ++i;
        } else if (!special(&i)) {
          pos_ = i;
          return false;
        }
        break;
      }
      case State::kQuoted: {
        i = SkipToStop<false, true>(b, i, n, kQuotedStops);
        if (i == n) break;
        const unsigned char c = b[i];
        if (c == '"') {
          quote_end_ = i - start_;
          state_ = State::kQuoteInQuoted;
          ++i;
        } else if (c == '\n') {
          ++line_;
          ++i;
        } else if (!special(&i)) {
          pos_ = i;
          return false;
        }
        break;
      }
      case State::kQuoteInQuoted: {
        const unsigned char c = b[i];
        if (c == '"') {
          field_has_escape_ = true;
          state_ = State::kQuoted;
          ++i;
        } else if (c == ',') {
          EndField(quote_end_);
          state_ = State::kFieldStart;
          ++i;
        } else if (c == '\n') {
          EndField(quote_end_);
          end_record_at_newline(i);
          return true;
        } else if (c == '\r') {
          state_ = State::kClosedCr;
          ++i;
        } else {
          flags_ |= kCsvMalformedQuoting;
          state_ = State::kMalformed;
        }
        break;
      }
      case State::kClosedCr:
        if (b[i] == '\n') {
          EndField(quote_end_);
          end_record_at_newline(i);
          return true;
        }
        flags_ |= kCsvMalformedQuoting;
        state_ = State::kMalformed;
        break;
      case State::kMalformed: {
        i = SkipToStop<false, false>(b, i, n, kMalformedStops);
        if (i == n) break;
        if (b[i] == '\n') {
          end_record_at_newline(i);
          return true;
        }
        if (!special(&i)) {
          pos_ = i;
          return false;
        }
        break;
      }
    }
  }
  pos_ = i;
  return false;
}

bool CsvReader::EndOfInput() {
  const size_t scanned = pos_ - start_;
  if (state_ == State::kFieldStart && scanned == 0 && dropped_ == 0 && span_count_ == 0) return false;
  pos_ = end_;
  record_end_ = end_;
  switch (state_) {
    case State::kFieldStart:
    case State::kUnquoted:
      EndField(record_end_ - start_);
      break;
    case State::kQuoted:
      flags_ |= kCsvMalformedQuoting;  // unterminated quote: the rest of the input is one record
      break;
    case State::kQuoteInQuoted:
      EndField(quote_end_);
      break;
    case State::kClosedCr:
      EndField(quote_end_);
      record_end_ = end_ - 1;
      break;
    case State::kMalformed:
      break;
  }
  ++line_;
  return true;
}

bool CsvReader::Finish(CsvRecord* record) {
  const char* base = buffer_.get() + start_;
  const size_t raw_size = dropped_ + (record_end_ - start_);
  if (raw_size == 0 && flags_ == 0) {
    start_ = pos_;  // a completely empty line is not a record
    return false;
  }
  record->line = record_line_;
  record->offset = bytes_read_ - (end_ - start_) - dropped_;
  record->raw_size = raw_size;
  size_t field_count = 0;
  if (oversized_) {
    record->raw = oversized_prefix_;
  } else if (raw_size > options_.max_row_bytes) {
    flags_ |= kCsvTooLarge;
    record->raw = absl::string_view(base, options_.max_row_bytes);
  } else {
    record->raw = absl::string_view(base, raw_size);
  }
  record->flags = flags_;
  record->first_bad_byte = first_bad_byte_;
  if ((flags_ & (kCsvMalformedQuoting | kCsvTooLarge)) == 0) {
    unescaped_.clear();
    if (unescaped_.capacity() < raw_size) unescaped_.reserve(raw_size);
    if (record->fields.size() < span_count_) record->fields.resize(span_count_);
    for (size_t i = 0; i < span_count_; ++i) {
      const FieldSpan& span = spans_[i];
      if (!span.has_escaped_quote) {
        record->fields[field_count++] = absl::string_view(base + span.begin, span.end - span.begin);
        continue;
      }
      // Turn "" into ". The reserve above keeps earlier views into unescaped_ valid.
      const size_t begin = unescaped_.size();
      for (size_t k = span.begin; k < span.end; ++k) {
        unescaped_.push_back(base[k]);
        if (base[k] == '"') ++k;
      }
      record->fields[field_count++] = absl::string_view(unescaped_.data() + begin, unescaped_.size() - begin);
    }
  }
  record->fields.resize(field_count);
  start_ = pos_;
  return true;
}

absl::StatusOr<bool> CsvReader::Next(CsvRecord* record) {
  absl::StatusOr<bool> more = ReadRecord(record);
  if (!more.ok()) {
    ++counts_.failed;
    counts_.Flush();
  } else if (*more) {
    ++counts_.received;
    ++counts_.sent;
    if ((record->flags & (kCsvMalformedQuoting | kCsvTooLarge)) != 0) ++counts_.failed;
    counts_.Row();
  } else {
    counts_.Flush();
  }
  return more;
}

absl::StatusOr<bool> CsvReader::ReadRecord(CsvRecord* record) {
  if (at_source_start_ && options_.skip_bom) {
    at_source_start_ = false;
    while (end_ - start_ < kBom.size()) {
      absl::StatusOr<bool> more = Fill();
      if (!more.ok()) return more.status();
      if (!*more) break;
    }
    if (absl::string_view(buffer_.get() + start_, end_ - start_).substr(0, kBom.size()) == kBom) {
      start_ += kBom.size();
      pos_ = start_;
    }
  }
  ResetRecordState();
  for (;;) {
    if (Scan()) {
      if (Finish(record)) return true;
      ResetRecordState();
      continue;
    }
    Compact();
    absl::StatusOr<bool> more = Fill();
    if (!more.ok()) return more.status();
    if (*more) continue;
    if (pos_ < end_) continue;  // a UTF-8 sequence cut by end of input: now judged complete
    if (!EndOfInput()) return false;
    if (Finish(record)) return true;
    return false;
  }
}

}  // namespace ecomstream::processor

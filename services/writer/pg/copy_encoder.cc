#include "services/writer/pg/copy_encoder.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <type_traits>
#include <utility>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/csv.h"
#include "common/domain.h"
#include "common/time_util.h"
#include "common/uuid.h"

namespace ecomstream::writer {
namespace {

// "PGCOPY\n\377\r\n\0", then flags (int32 0) and header-extension length (int32 0).
constexpr char kHeader[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
constexpr size_t kHeaderSize = 19;
constexpr size_t kTrailerSize = 2;  // int16 -1
// PostgreSQL timestamps count from 2000-01-01 00:00:00 UTC.
constexpr int64_t kPgEpochUnixMicros = 946'684'800'000'000;
constexpr uint32_t kTextOid = 25;
constexpr uint16_t kNumericPositive = 0x0000;
constexpr uint16_t kNumericNegative = 0x4000;

// Raw writers: each stores one value (with its length word where it has one) at `out` and
// returns the end. Callers make room first; kMax*Bytes bound the variable-length ones.
template <typename T>
char* PutBigEndian(T value, char* out) {
  using U = std::make_unsigned_t<T>;
  const U u = static_cast<U>(value);
  for (size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<char>((u >> (8 * (sizeof(T) - 1 - i))) & 0xff);
  return out + sizeof(T);
}

char* PutLength(int32_t length, char* out) { return PutBigEndian<int32_t>(length, out); }

char* PutNull(char* out) { return PutLength(-1, out); }

template <typename T>
char* PutInteger(T value, char* out) {
  return PutBigEndian<T>(value, PutLength(static_cast<int32_t>(sizeof(T)), out));
}

char* PutBytes(absl::string_view bytes, char* out) {
  out = PutLength(static_cast<int32_t>(bytes.size()), out);
  if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

char* PutOptionalText(absl::string_view text, char* out) { return text.empty() ? PutNull(out) : PutBytes(text, out); }

constexpr size_t kTimestampBytes = 4 + 8;
char* PutTimestampMicros(int64_t unix_us, char* out) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  // INT64_MIN and INT64_MAX are -infinity and infinity: keep clear of both.
  const int64_t pg_us = unix_us < kMin + kPgEpochUnixMicros + 1 ? kMin + 1 : unix_us - kPgEpochUnixMicros;
  return PutInteger<int64_t>(pg_us, out);
}

// Length word, 4 int16 header fields and at most 6 base-10000 digits (5 for the integer part of
// 2^63 / 100, one for the cents).
constexpr size_t kMaxNumericBytes = 4 + 8 + 2 * 6;
char* PutNumericCents(int64_t cents, char* out) {
  const uint64_t magnitude = cents < 0 ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  uint64_t integer = magnitude / 100;
  const int16_t fraction = static_cast<int16_t>((magnitude % 100) * 100);  // one base-10000 digit
  // Base-10000 digits, most significant first; weight is the power of the first one.
  int16_t digits[8];
  int count = 0;
  int16_t integer_digits[6];
  int integer_count = 0;
  while (integer > 0) {
    integer_digits[integer_count++] = static_cast<int16_t>(integer % 10000);
    integer /= 10000;
  }
  for (int i = integer_count - 1; i >= 0; --i) digits[count++] = integer_digits[i];
  int16_t weight = static_cast<int16_t>(integer_count - 1);
  if (fraction != 0) {
    if (integer_count == 0) weight = -1;
    digits[count++] = fraction;
  }
  while (count > 0 && digits[count - 1] == 0) --count;  // trailing zero digits carry no value
  if (count == 0) weight = 0;
  out = PutLength(static_cast<int32_t>(8 + 2 * count), out);
  out = PutBigEndian<int16_t>(static_cast<int16_t>(count), out);
  out = PutBigEndian<int16_t>(weight, out);
  out = PutBigEndian<uint16_t>(cents < 0 ? kNumericNegative : kNumericPositive, out);
  out = PutBigEndian<int16_t>(2, out);  // display scale: two decimals
  for (int i = 0; i < count; ++i) out = PutBigEndian<int16_t>(digits[i], out);
  return out;
}

// Event rows: the most bytes one takes in kEventColumns order (exact but for the numerics).
constexpr int16_t kEventFields = 20;
size_t MaxEventRowBytes(const v1::Event& e) {
  constexpr size_t kFixed = 2                                 // field count
                            + 4 + 16 + 4 + 8 + 4 + 16         // event_id, user_id, session_id
                            + 4 + 4 + 8 + 4                   // event_type, product_id, category
                            + 2 * kMaxNumericBytes + 4 + 4    // price, total_amount, quantity
                            + kTimestampBytes + 4             // event_time, user_segment
                            + 6 * 4 + 4 + 2 + 4 + 1 + 4 + 8;  // six texts, version, late, source_id
  return kFixed + domain::EventTypeName(e.event_type()).size() + e.category().size() +
         domain::UserSegmentName(e.user_segment()).size() + e.device_type().size() + e.browser().size() +
         e.geo_country().size() + e.geo_city().size() + e.referrer().size() + e.campaign_id().size();
}

// One event row in kEventColumns order at `out`; returns its end.
char* PutEventRow(const v1::Event& e, char* out) {
  out = PutBigEndian<int16_t>(kEventFields, out);
  out = PutBytes(e.event_id(), out);  // ValidateBatch: 16 bytes
  out = PutInteger<int64_t>(e.user_id(), out);
  out = e.session_id().empty() ? PutNull(out) : PutBytes(e.session_id(), out);
  out = PutBytes(domain::EventTypeName(e.event_type()), out);
  out = e.has_product_id() ? PutInteger<int64_t>(e.product_id(), out) : PutNull(out);
  out = PutOptionalText(e.category(), out);
  out = e.has_price_cents() ? PutNumericCents(e.price_cents(), out) : PutNull(out);
  out = e.has_quantity() ? PutInteger<int32_t>(e.quantity(), out) : PutNull(out);
  out = e.has_total_amount_cents() ? PutNumericCents(e.total_amount_cents(), out) : PutNull(out);
  out = PutTimestampMicros(e.event_time_us(), out);
  out = PutOptionalText(domain::UserSegmentName(e.user_segment()), out);
  out = PutOptionalText(e.device_type(), out);
  out = PutOptionalText(e.browser(), out);
  out = PutOptionalText(e.geo_country(), out);
  out = PutOptionalText(e.geo_city(), out);
  out = PutOptionalText(e.referrer(), out);
  out = PutOptionalText(e.campaign_id(), out);
  // Out-of-range versions saturate, and the CHECK constraint rejects them.
  out = PutInteger<int16_t>(static_cast<int16_t>(std::clamp<int32_t>(e.schema_version(), -32768, 32767)), out);
  out = PutLength(1, out);
  *out++ = e.late_arrival() ? 1 : 0;
  return PutInteger<int64_t>(0, out);  // source_id: each row's last 8 bytes, which Payload sets
}

std::string WithoutNul(absl::string_view text) {
  if (text.find('\0') == absl::string_view::npos) return std::string(text);
  return absl::StrReplaceAll(text, {{absl::string_view("\0", 1), "\xEF\xBF\xBD"}});
}

void OptionalText(CopyEncoder& copy, absl::string_view text) {
  if (text.empty()) {
    copy.Null();
  } else {
    copy.Text(text);
  }
}

// Spent payload buffers, kept for the next batches: a fresh megabyte costs a page fault per
// 4 KiB written, more than the encoding itself.
class BufferPool {
 public:
  static BufferPool& Get() {
    static BufferPool* pool = new BufferPool;
    return *pool;
  }

  // A buffer of at least `bytes`.
  EncodedEvents::Buffer Take(size_t bytes) {
    EncodedEvents::Buffer buffer;
    {
      absl::MutexLock lock(&mu_);
      if (!free_.empty()) {
        buffer = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (buffer.capacity < bytes) {
      buffer.capacity = bytes + bytes / 8;  // room for a somewhat larger next batch
      buffer.bytes.reset(new char[buffer.capacity]);
    }
    return buffer;
  }

  void Give(EncodedEvents::Buffer buffer) {
    if (buffer.bytes == nullptr || buffer.capacity > kMaxBytes) return;
    absl::MutexLock lock(&mu_);
    if (free_.size() < kMaxBuffers) free_.push_back(std::move(buffer));
  }

 private:
  static constexpr size_t kMaxBytes = 16 << 20;
  // A stream holds about four batches (read ahead, begun ahead, committing, acking).
  static constexpr size_t kMaxBuffers = 8;

  absl::Mutex mu_;
  std::vector<EncodedEvents::Buffer> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

CopyEncoder::CopyEncoder() { out_.append(kHeader, kHeaderSize); }

char* CopyEncoder::Extend(size_t bytes) {
  const size_t at = out_.size();
  out_.resize(at + bytes);
  return &out_[at];
}

void CopyEncoder::Length(int32_t length) { PutLength(length, Extend(4)); }

void CopyEncoder::BeginRow(int16_t fields) { PutBigEndian<int16_t>(fields, Extend(2)); }

void CopyEncoder::Null() { Length(-1); }

void CopyEncoder::Int16(int16_t value) { PutInteger(value, Extend(4 + 2)); }

void CopyEncoder::Int32(int32_t value) { PutInteger(value, Extend(4 + 4)); }

void CopyEncoder::Int64(int64_t value) { PutInteger(value, Extend(4 + 8)); }

void CopyEncoder::Bool(bool value) {
  Length(1);
  out_.push_back(value ? 1 : 0);
}

void CopyEncoder::Uuid(absl::string_view raw16) {
  Length(16);
  out_.append(raw16.data(), 16);
}

void CopyEncoder::Text(absl::string_view utf8) { PutBytes(utf8, Extend(4 + utf8.size())); }

void CopyEncoder::Bytea(absl::string_view bytes) { Text(bytes); }

void CopyEncoder::TimestampMicros(int64_t unix_us) { PutTimestampMicros(unix_us, Extend(kTimestampBytes)); }

void CopyEncoder::NumericCents(int64_t cents) {
  const size_t at = out_.size();
  char* end = PutNumericCents(cents, Extend(kMaxNumericBytes));
  out_.resize(static_cast<size_t>(end - &out_[at]) + at);
}

void CopyEncoder::TextArray(const std::vector<std::string>& items) {
  size_t length = 20;
  for (const std::string& item : items) length += 4 + item.size();
  char* out = Extend(4 + length);
  out = PutLength(static_cast<int32_t>(length), out);
  out = PutBigEndian<int32_t>(1, out);  // dimensions
  out = PutBigEndian<int32_t>(0, out);  // has NULLs
  out = PutBigEndian<uint32_t>(kTextOid, out);
  out = PutBigEndian<int32_t>(static_cast<int32_t>(items.size()), out);
  out = PutBigEndian<int32_t>(1, out);  // lower bound
  for (const std::string& item : items) out = PutBytes(item, out);
}

std::string CopyEncoder::Finish() {
  PutBigEndian<int16_t>(-1, Extend(2));
  return std::move(out_);
}

EncodedEvents::EncodedEvents(const std::vector<const v1::Event*>& events) {
  size_t most = kHeaderSize + kTrailerSize;
  for (const v1::Event* event : events) most += MaxEventRowBytes(*event);
  // One allocation (usually a reused one) and no bounds checks per value.
  buffer_ = BufferPool::Get().Take(most);
  char* const begin = buffer_.bytes.get();
  std::memcpy(begin, kHeader, kHeaderSize);
  char* out = begin + kHeaderSize;
  offsets_.reserve(events.size() + 1);
  for (const v1::Event* event : events) {
    offsets_.push_back(static_cast<size_t>(out - begin));
    out = PutEventRow(*event, out);
  }
  offsets_.push_back(static_cast<size_t>(out - begin));
  out = PutBigEndian<int16_t>(-1, out);
  size_ = static_cast<size_t>(out - begin);
}

EncodedEvents::~EncodedEvents() { BufferPool::Get().Give(std::move(buffer_)); }

absl::string_view EncodedEvents::Payload(const std::vector<int>& indices, int64_t source_id, std::string* storage) const {
  const absl::string_view encoded = this->encoded();
  bool all_in_order = indices.size() == rows();
  for (size_t i = 0; i < indices.size() && all_in_order; ++i) all_in_order = indices[i] == static_cast<int>(i);
  if (all_in_order) {
    char* const begin = buffer_.bytes.get();
    for (size_t i = 1; i < offsets_.size(); ++i) PutBigEndian<int64_t>(source_id, begin + offsets_[i] - sizeof(int64_t));
    return encoded;
  }
  size_t bytes = kHeaderSize + kTrailerSize;
  for (int i : indices) bytes += offsets_[i + 1] - offsets_[i];
  storage->clear();
  storage->reserve(bytes);
  storage->append(encoded.data(), kHeaderSize);
  for (int i : indices) {
    storage->append(encoded.data() + offsets_[i], offsets_[i + 1] - offsets_[i]);
    PutBigEndian<int64_t>(source_id, storage->data() + storage->size() - sizeof(int64_t));
  }
  storage->append(encoded.data() + encoded.size() - kTrailerSize, kTrailerSize);
  return *storage;
}

std::string EncodeEvents(const std::vector<const v1::Event*>& events, int64_t source_id) {
  EncodedEvents encoded(events);
  std::vector<int> all(events.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  std::string storage;
  return std::string(encoded.Payload(all, source_id, &storage));
}

std::string EncodeDeadLetters(const std::vector<DeadLetterRow>& rows, const DeadLetterMetadata& metadata) {
  CopyEncoder copy;
  for (const DeadLetterRow& row : rows) {
    copy.BeginRow(11);
    copy.Text(metadata.file_id);
    copy.Text(metadata.file_name);
    copy.Int64(row.row);
    if (row.line > 0) {
      copy.Int64(row.line);
    } else {
      copy.Null();
    }
    copy.Bytea(row.raw);
    copy.TextArray(row.reasons);
    OptionalText(copy, WithoutNul(row.detail));
    OptionalText(copy, WithoutNul(row.column));
    if (metadata.file_drop_time_us != 0) {
      copy.TimestampMicros(metadata.file_drop_time_us);
    } else {
      copy.Null();
    }
    copy.TimestampMicros(metadata.received_us);
    OptionalText(copy, metadata.trace_id);
  }
  return copy.Finish();
}

std::string FormatEventCsv(const v1::Event& event) {
  const auto cents = [](int64_t value) {
    const uint64_t magnitude = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
    return absl::StrFormat("%s%d.%02d", value < 0 ? "-" : "", magnitude / 100, magnitude % 100);
  };
  const auto uuid = [](absl::string_view raw) {
    std::string text;
    if (raw.size() == 16) AppendUuid(raw, &text);
    return text;
  };
  const std::string fields[] = {
      uuid(event.event_id()),
      absl::StrCat(event.user_id()),
      std::string(domain::EventTypeName(event.event_type())),
      event.has_product_id() ? absl::StrCat(event.product_id()) : "",
      event.has_price_cents() ? cents(event.price_cents()) : "",
      FormatTimestampMicros(event.event_time_us()),
      uuid(event.session_id()),
      event.category(),
      event.has_quantity() ? absl::StrCat(event.quantity()) : "",
      std::string(domain::UserSegmentName(event.user_segment())),
      event.device_type(),
      event.browser(),
      event.geo_country(),
      event.geo_city(),
      event.referrer(),
      event.campaign_id(),
  };
  std::string out;
  for (size_t i = 0; i < std::size(fields); ++i) {
    if (i > 0) out.push_back(',');
    AppendCsvField(fields[i], &out);
  }
  return out;
}

}  // namespace ecomstream::writer

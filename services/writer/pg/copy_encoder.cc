#include "services/writer/pg/copy_encoder.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>

#include <type_traits>
#include "absl/strings/str_replace.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/csv.h"
#include "common/domain.h"
#include "common/time_util.h"
#include "common/uuid.h"

namespace ecomstream::writer {
namespace {

// "PGCOPY\n\377\r\n\0", then flags (int32 0) and header-extension length (int32 0).
constexpr char kHeader[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
constexpr size_t kHeaderSize = 19;
// PostgreSQL timestamps count from 2000-01-01 00:00:00 UTC.
constexpr int64_t kPgEpochUnixMicros = 946'684'800'000'000;
constexpr uint32_t kTextOid = 25;
constexpr uint16_t kNumericPositive = 0x0000;
constexpr uint16_t kNumericNegative = 0x4000;

template <typename T>
void AppendBigEndian(T value, std::string* out) {
  char bytes[sizeof(T)];
  using U = std::make_unsigned_t<T>;
  U u = static_cast<U>(value);
  for (size_t i = 0; i < sizeof(T); ++i) bytes[sizeof(T) - 1 - i] = static_cast<char>((u >> (8 * i)) & 0xff);
  out->append(bytes, sizeof(T));
}

void StoreBigEndian(uint64_t value, char* out) {
  for (size_t i = 0; i < sizeof(value); ++i) out[sizeof(value) - 1 - i] = static_cast<char>((value >> (8 * i)) & 0xff);
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

}  // namespace

CopyEncoder::CopyEncoder() { out_.append(kHeader, kHeaderSize); }

void CopyEncoder::Length(int32_t length) { AppendBigEndian<int32_t>(length, &out_); }

void CopyEncoder::BeginRow(int16_t fields) { AppendBigEndian<int16_t>(fields, &out_); }

void CopyEncoder::Null() { Length(-1); }

void CopyEncoder::Int16(int16_t value) {
  Length(2);
  AppendBigEndian(value, &out_);
}

void CopyEncoder::Int32(int32_t value) {
  Length(4);
  AppendBigEndian(value, &out_);
}

void CopyEncoder::Int64(int64_t value) {
  Length(8);
  AppendBigEndian(value, &out_);
}

void CopyEncoder::Bool(bool value) {
  Length(1);
  out_.push_back(value ? 1 : 0);
}

void CopyEncoder::Uuid(absl::string_view raw16) {
  Length(16);
  out_.append(raw16.data(), 16);
}

void CopyEncoder::Text(absl::string_view utf8) {
  Length(static_cast<int32_t>(utf8.size()));
  out_.append(utf8.data(), utf8.size());
}

void CopyEncoder::Bytea(absl::string_view bytes) { Text(bytes); }

void CopyEncoder::TimestampMicros(int64_t unix_us) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  // INT64_MIN and INT64_MAX are -infinity and infinity: keep clear of both.
  int64_t pg_us = unix_us < kMin + kPgEpochUnixMicros + 1 ? kMin + 1 : unix_us - kPgEpochUnixMicros;
  Int64(pg_us);
}

void CopyEncoder::NumericCents(int64_t cents) {
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
  Length(static_cast<int32_t>(8 + 2 * count));
  AppendBigEndian<int16_t>(static_cast<int16_t>(count), &out_);
  AppendBigEndian<int16_t>(weight, &out_);
  AppendBigEndian<uint16_t>(cents < 0 ? kNumericNegative : kNumericPositive, &out_);
  AppendBigEndian<int16_t>(2, &out_);  // display scale: two decimals
  for (int i = 0; i < count; ++i) AppendBigEndian<int16_t>(digits[i], &out_);
}

void CopyEncoder::TextArray(const std::vector<std::string>& items) {
  size_t length = 20;
  for (const std::string& item : items) length += 4 + item.size();
  Length(static_cast<int32_t>(length));
  AppendBigEndian<int32_t>(1, &out_);  // dimensions
  AppendBigEndian<int32_t>(0, &out_);  // has NULLs
  AppendBigEndian<uint32_t>(kTextOid, &out_);
  AppendBigEndian<int32_t>(static_cast<int32_t>(items.size()), &out_);
  AppendBigEndian<int32_t>(1, &out_);  // lower bound
  for (const std::string& item : items) {
    AppendBigEndian<int32_t>(static_cast<int32_t>(item.size()), &out_);
    out_.append(item);
  }
}

std::string CopyEncoder::Finish() {
  AppendBigEndian<int16_t>(-1, &out_);
  return std::move(out_);
}

EncodedEvents::EncodedEvents(const std::vector<const v1::Event*>& events) {
  CopyEncoder copy;
  offsets_.reserve(events.size() + 1);
  for (const v1::Event* event : events) {
    offsets_.push_back(copy.size());
    const v1::Event& e = *event;
    copy.BeginRow(20);
    copy.Uuid(e.event_id());
    copy.Int64(e.user_id());
    if (e.session_id().empty()) {
      copy.Null();
    } else {
      copy.Uuid(e.session_id());
    }
    copy.Text(domain::EventTypeName(e.event_type()));
    if (e.has_product_id()) {
      copy.Int64(e.product_id());
    } else {
      copy.Null();
    }
    OptionalText(copy, e.category());
    if (e.has_price_cents()) {
      copy.NumericCents(e.price_cents());
    } else {
      copy.Null();
    }
    if (e.has_quantity()) {
      copy.Int32(e.quantity());
    } else {
      copy.Null();
    }
    if (e.has_total_amount_cents()) {
      copy.NumericCents(e.total_amount_cents());
    } else {
      copy.Null();
    }
    copy.TimestampMicros(e.event_time_us());
    OptionalText(copy, domain::UserSegmentName(e.user_segment()));
    OptionalText(copy, e.device_type());
    OptionalText(copy, e.browser());
    OptionalText(copy, e.geo_country());
    OptionalText(copy, e.geo_city());
    OptionalText(copy, e.referrer());
    OptionalText(copy, e.campaign_id());
    // Out-of-range versions saturate, and the CHECK constraint rejects them.
    copy.Int16(static_cast<int16_t>(std::clamp<int32_t>(e.schema_version(), -32768, 32767)));
    copy.Bool(e.late_arrival());
    copy.Int64(0);  // source_id: each row's last 8 bytes, which Payload sets
  }
  offsets_.push_back(copy.size());
  encoded_ = copy.Finish();
}

std::string EncodedEvents::Payload(const std::vector<int>& indices, int64_t source_id) const {
  constexpr size_t kTrailerSize = 2;
  std::string payload;
  bool all_in_order = indices.size() == rows();
  for (size_t i = 0; i < indices.size() && all_in_order; ++i) all_in_order = indices[i] == static_cast<int>(i);
  if (all_in_order) {
    payload = encoded_;
  } else {
    size_t bytes = kHeaderSize + kTrailerSize;
    for (int i : indices) bytes += offsets_[i + 1] - offsets_[i];
    payload.reserve(bytes);
    payload.append(encoded_, 0, kHeaderSize);
    for (int i : indices) payload.append(encoded_, offsets_[i], offsets_[i + 1] - offsets_[i]);
    payload.append(encoded_, encoded_.size() - kTrailerSize, kTrailerSize);
  }
  size_t row_end = kHeaderSize;
  for (int i : indices) {
    row_end += offsets_[i + 1] - offsets_[i];
    StoreBigEndian(static_cast<uint64_t>(source_id), &payload[row_end - sizeof(uint64_t)]);
  }
  return payload;
}

std::string EncodeEvents(const std::vector<const v1::Event*>& events, int64_t source_id) {
  const EncodedEvents encoded(events);
  std::vector<int> all(events.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return encoded.Payload(all, source_id);
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

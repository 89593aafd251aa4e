#include "services/generator/csv_row_encoder.h"

#include <array>
#include <cstring>
#include <utility>

#include "common/uuid.h"

namespace ecomstream::generator {
namespace {

// "00" "01" ... "99".
constexpr auto kTwoDigits = [] {
  std::array<char, 200> t{};
  for (int i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();

// Each byte's two lower-case hex digits.
constexpr auto kHexPairs = [] {
  constexpr char kHex[] = "0123456789abcdef";
  std::array<char, 512> t{};
  for (int i = 0; i < 256; ++i) {
    t[2 * i] = kHex[i >> 4];
    t[2 * i + 1] = kHex[i & 0x0f];
  }
  return t;
}();

// The most bytes of a fixed-form field: a UUID (36), an int64 (20), cents (23), a timestamp (24).
constexpr size_t kMaxFixedFieldBytes = 36;

char* WriteTwoDigits(int value, char* p) {
  std::memcpy(p, &kTwoDigits[2 * value], 2);
  return p + 2;
}

char* WriteString(absl::string_view s, char* p) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

char* WriteUnsigned(uint64_t v, char* p) {
  char buf[20];
  char* end = buf + sizeof(buf);
  char* q = end;
  while (v >= 100) {
    q -= 2;
    std::memcpy(q, &kTwoDigits[2 * (v % 100)], 2);
    v /= 100;
  }
  if (v >= 10) {
    q -= 2;
    std::memcpy(q, &kTwoDigits[2 * v], 2);
  } else {
    *--q = static_cast<char>('0' + v);
  }
  const size_t n = static_cast<size_t>(end - q);
  std::memcpy(p, q, n);
  return p + n;
}

char* WriteInt(int64_t value, char* p) {
  if (value < 0) {
    *p++ = '-';
    return WriteUnsigned(0 - static_cast<uint64_t>(value), p);
  }
  return WriteUnsigned(static_cast<uint64_t>(value), p);
}

char* WriteCents(int64_t cents, char* p) {
  uint64_t v = static_cast<uint64_t>(cents);
  if (cents < 0) {
    *p++ = '-';
    v = 0 - v;
  }
  p = WriteUnsigned(v / 100, p);
  *p++ = '.';
  return WriteTwoDigits(static_cast<int>(v % 100), p);
}

char* WriteUuid(const Uuid& uuid, char* p) {
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    std::memcpy(p, &kHexPairs[2 * uuid[i]], 2);
    p += 2;
  }
  return p;
}

// Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
void CivilFromDays(int64_t days, int64_t* year, int* month, int* day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *year = yoe + era * 400 + (*month <= 2 ? 1 : 0);
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

// Writes the 20 bytes "yyyy-mm-ddThh:mm:ss." of Unix second `second`.
void WriteSecondText(int64_t second, char* p) {
  const int64_t days = FloorDiv(second, 86'400);
  const int seconds = static_cast<int>(second - days * 86'400);
  int64_t year;
  int month, day;
  CivilFromDays(days, &year, &month, &day);
  if (year < 0 || year > 9999) year = year < 0 ? 0 : 9999;
  p = WriteTwoDigits(static_cast<int>(year / 100), p);
  p = WriteTwoDigits(static_cast<int>(year % 100), p);
  *p++ = '-';
  p = WriteTwoDigits(month, p);
  *p++ = '-';
  p = WriteTwoDigits(day, p);
  *p++ = 'T';
  p = WriteTwoDigits(seconds / 3600, p);
  *p++ = ':';
  p = WriteTwoDigits(seconds / 60 % 60, p);
  *p++ = ':';
  p = WriteTwoDigits(seconds % 60, p);
  *p = '.';
}

// The ".mmmZ" after the second's text.
char* WriteMillisZ(int millis, char* p) {
  *p++ = static_cast<char>('0' + millis / 100);
  p = WriteTwoDigits(millis % 100, p);
  *p++ = 'Z';
  return p;
}

// The bytes of all of `e`'s texts: a bound on any one of them.
size_t TextBytes(const ShopperEvent& e) {
  size_t texts = domain::EventTypeName(e.event_type).size() + domain::UserSegmentName(e.segment).size() +
                 e.device_type.size() + e.browser.size() + e.referrer.size() + e.campaign_id.size();
  if (e.category != nullptr) texts += e.category->name.size();
  if (e.place != nullptr) texts += e.place->country.size() + e.place->city_csv.size();
  return texts;
}

// Writes the clean text of one field (at most kMaxFixedFieldBytes + TextBytes(e) bytes).
char* WriteCleanField(const ShopperEvent& e, Column column, char* p) {
  switch (column) {
    case Column::kEventId:
      return WriteUuid(e.event_id, p);
    case Column::kUserId:
      return WriteInt(e.user_id, p);
    case Column::kEventType:
      return WriteString(domain::EventTypeName(e.event_type), p);
    case Column::kProductId:
      return e.product_id != 0 ? WriteInt(e.product_id, p) : p;
    case Column::kPrice:
      return e.price_cents >= 0 ? WriteCents(e.price_cents, p) : p;
    case Column::kEventTime: {
      const int64_t second = FloorDiv(e.event_time_ms, 1000);
      WriteSecondText(second, p);
      return WriteMillisZ(static_cast<int>(e.event_time_ms - second * 1000), p + 20);
    }
    case Column::kSessionId:
      return WriteUuid(e.session_id, p);
    case Column::kCategory:
      return e.category != nullptr ? WriteString(e.category->name, p) : p;
    case Column::kQuantity:
      return e.quantity > 0 ? WriteInt(e.quantity, p) : p;
    case Column::kUserSegment:
      return WriteString(domain::UserSegmentName(e.segment), p);
    case Column::kDeviceType:
      return WriteString(e.device_type, p);
    case Column::kBrowser:
      return WriteString(e.browser, p);
    case Column::kGeoCountry:
      return e.place != nullptr ? WriteString(e.place->country, p) : p;
    case Column::kGeoCity:
      return e.place != nullptr ? WriteString(e.place->city_csv, p) : p;
    case Column::kReferrer:
      return WriteString(e.referrer, p);
    case Column::kCampaignId:
      return WriteString(e.campaign_id, p);
    case Column::kNumColumns:
      return p;
  }
  return p;
}

}  // namespace

void AppendInt(int64_t value, std::string* out) {
  char buf[24];
  out->append(buf, static_cast<size_t>(WriteInt(value, buf) - buf));
}

void AppendCents(int64_t cents, std::string* out) {
  char buf[32];
  out->append(buf, static_cast<size_t>(WriteCents(cents, buf) - buf));
}

void AppendIsoMillis(int64_t unix_ms, std::string* out) {
  const int64_t second = FloorDiv(unix_ms, 1000);
  char buf[24];
  WriteSecondText(second, buf);
  char* end = WriteMillisZ(static_cast<int>(unix_ms - second * 1000), buf + 20);
  out->append(buf, static_cast<size_t>(end - buf));
}

void AppendCleanField(const ShopperEvent& e, Column column, std::string* out) {
  const size_t start = out->size();
  out->resize(start + kMaxFixedFieldBytes + TextBytes(e));
  char* end = WriteCleanField(e, column, out->data() + start);
  out->resize(static_cast<size_t>(end - out->data()));
}

CsvRowEncoder::CsvRowEncoder(std::vector<Column> columns, bool crlf)
    : columns_(std::move(columns)), terminator_(crlf ? "\r\n" : "\n") {}

void CsvRowEncoder::AppendHeader(std::string* out) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i > 0) out->push_back(',');
    const absl::string_view name = ColumnName(columns_[i]);
    out->append(name.data(), name.size());
  }
  out->append(terminator_.data(), terminator_.size());
}

size_t CsvRowEncoder::AppendRow(const ShopperEvent& event, const RowPlan& plan, std::string* out) const {
  const size_t bound = MaxRowBytes(event, plan);
  size_t length = 0;
  // Written on the stack and appended at once: a resize of `out` would zero-fill the room first.
  char row[2048];
  if (bound <= sizeof(row)) {
    out->append(row, static_cast<size_t>(WriteRow(event, plan, row, &length) - row));
    return length;
  }
  const size_t start = out->size();
  out->resize(start + bound);
  char* end = WriteRow(event, plan, out->data() + start, &length);
  out->resize(static_cast<size_t>(end - out->data()));
  return length;
}

size_t CsvRowEncoder::MaxRowBytes(const ShopperEvent& e, const RowPlan& plan) const {
  // Every fixed-form field at its longest with its comma, every text, the plan's texts and the
  // terminator.
  return columns_.size() * (kMaxFixedFieldBytes + 1) + TextBytes(e) + plan.text.size() + plan.verbatim.size() +
         terminator_.size();
}

char* CsvRowEncoder::WriteField(const ShopperEvent& e, Column column, char* p) const {
  if (column != Column::kEventTime) return WriteCleanField(e, column, p);
  // Rows come in time order: the date and time of day are formatted once per second.
  const int64_t second = FloorDiv(e.event_time_ms, 1000);
  if (second != second_.second) {
    WriteSecondText(second, second_.text);
    second_.second = second;
  }
  std::memcpy(p, second_.text, sizeof(second_.text));
  return WriteMillisZ(static_cast<int>(e.event_time_ms - second * 1000), p + sizeof(second_.text));
}

char* CsvRowEncoder::WriteRow(const ShopperEvent& event, const RowPlan& plan, char* out, size_t* length) const {
  char* p = out;
  if (!plan.verbatim.empty()) {
    p = WriteString(plan.verbatim, p);
  } else if (!plan.has_override) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (i > 0) *p++ = ',';
      p = WriteField(event, columns_[i], p);
    }
  } else {
    bool first = true;
    for (Column column : columns_) {
      const bool overridden = column == plan.column;
      if (overridden && plan.omit_column) continue;
      if (!first) *p++ = ',';
      first = false;
      p = overridden ? WriteString(plan.text, p) : WriteField(event, column, p);
    }
  }
  *length = static_cast<size_t>(p - out);
  return WriteString(terminator_, p);
}

}  // namespace ecomstream::generator

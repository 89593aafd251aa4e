#include "services/generator/csv_row_encoder.h"

#include <utility>

#include "common/uuid.h"

namespace ecomstream::generator {
namespace {

char* WriteTwoDigits(int value, char* p) {
  p[0] = static_cast<char>('0' + value / 10);
  p[1] = static_cast<char>('0' + value % 10);
  return p + 2;
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

}  // namespace

void AppendInt(int64_t value, std::string* out) {
  char buf[24];
  char* end = buf + sizeof(buf);
  char* p = end;
  uint64_t v = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (value < 0) *--p = '-';
  out->append(p, static_cast<size_t>(end - p));
}

void AppendCents(int64_t cents, std::string* out) {
  if (cents < 0) {
    out->push_back('-');
    cents = -cents;
  }
  AppendInt(cents / 100, out);
  char frac[3] = {'.', 0, 0};
  WriteTwoDigits(static_cast<int>(cents % 100), frac + 1);
  out->append(frac, 3);
}

void AppendIsoMillis(int64_t unix_ms, std::string* out) {
  const int64_t days = FloorDiv(unix_ms, 86'400'000);
  const int64_t ms_of_day = unix_ms - days * 86'400'000;
  int64_t year;
  int month, day;
  CivilFromDays(days, &year, &month, &day);
  if (year < 0 || year > 9999) year = year < 0 ? 0 : 9999;
  const int seconds = static_cast<int>(ms_of_day / 1000);
  const int millis = static_cast<int>(ms_of_day % 1000);
  char buf[24];
  char* p = buf;
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
  *p++ = '.';
  *p++ = static_cast<char>('0' + millis / 100);
  p = WriteTwoDigits(millis % 100, p);
  *p++ = 'Z';
  out->append(buf, static_cast<size_t>(p - buf));
}

void AppendCleanField(const ShopperEvent& e, Column column, std::string* out) {
  switch (column) {
    case Column::kEventId:
      AppendUuid(UuidBytes(e.event_id), out);
      return;
    case Column::kUserId:
      AppendInt(e.user_id, out);
      return;
    case Column::kEventType: {
      const absl::string_view name = domain::EventTypeName(e.event_type);
      out->append(name.data(), name.size());
      return;
    }
    case Column::kProductId:
      if (e.product_id != 0) AppendInt(e.product_id, out);
      return;
    case Column::kPrice:
      if (e.price_cents >= 0) AppendCents(e.price_cents, out);
      return;
    case Column::kEventTime:
      AppendIsoMillis(e.event_time_ms, out);
      return;
    case Column::kSessionId:
      AppendUuid(UuidBytes(e.session_id), out);
      return;
    case Column::kCategory:
      if (e.category != nullptr) out->append(e.category->name.data(), e.category->name.size());
      return;
    case Column::kQuantity:
      if (e.quantity > 0) AppendInt(e.quantity, out);
      return;
    case Column::kUserSegment: {
      const absl::string_view name = domain::UserSegmentName(e.segment);
      out->append(name.data(), name.size());
      return;
    }
    case Column::kDeviceType:
      out->append(e.device_type.data(), e.device_type.size());
      return;
    case Column::kBrowser:
      out->append(e.browser.data(), e.browser.size());
      return;
    case Column::kGeoCountry:
      if (e.place != nullptr) out->append(e.place->country.data(), e.place->country.size());
      return;
    case Column::kGeoCity:
      if (e.place != nullptr) out->append(e.place->city_csv.data(), e.place->city_csv.size());
      return;
    case Column::kReferrer:
      out->append(e.referrer.data(), e.referrer.size());
      return;
    case Column::kCampaignId:
      out->append(e.campaign_id.data(), e.campaign_id.size());
      return;
    case Column::kNumColumns:
      return;
  }
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
  const size_t start = out->size();
  if (!plan.verbatim.empty()) {
    out->append(plan.verbatim);
  } else {
    bool first = true;
    for (Column column : columns_) {
      const bool overridden = plan.has_override && column == plan.column;
      if (overridden && plan.omit_column) continue;
      if (!first) out->push_back(',');
      first = false;
      if (overridden) {
        out->append(plan.text);
      } else {
        AppendCleanField(event, column, out);
      }
    }
  }
  const size_t length = out->size() - start;
  out->append(terminator_.data(), terminator_.size());
  return length;
}

}  // namespace ecomstream::generator

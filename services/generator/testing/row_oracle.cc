#include "services/generator/testing/row_oracle.h"

#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/csv.h"
#include "common/csv_schema.h"
#include "common/domain.h"
#include "common/uuid.h"

namespace ecomstream::generator::testing {
namespace {

constexpr int64_t kHourUs = 3'600'000'000;
constexpr size_t kMaxRowBytes = 65536;

// The records as common/csv.h splits them per docs/rows.md: a plain whole-text reading shared
// with the pipeline's oracle, not the processor's streaming reader that these checks judge.
using Record = CsvTextRecord;

bool ValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

std::optional<std::string> Clean(absl::string_view field) {
  field = absl::StripAsciiWhitespace(field);
  if (field.empty() || field == "NULL" || field == "N/A" || field == "null" || field == "n/a" || field == "None") {
    return std::nullopt;
  }
  return std::string(field);
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// "-"? digits ("." 1-2 digits)? -> cents.
bool ParsePrice(absl::string_view s, int64_t* cents) {
  bool negative = false;
  if (!s.empty() && s[0] == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  const size_t dot = s.find('.');
  absl::string_view units = s.substr(0, dot);
  absl::string_view frac = dot == absl::string_view::npos ? "" : s.substr(dot + 1);
  if (!AllDigits(units) || units.size() > 12) return false;
  if (dot != absl::string_view::npos && (frac.empty() || frac.size() > 2 || !AllDigits(frac))) return false;
  int64_t u = 0;
  if (!absl::SimpleAtoi(units, &u)) return false;
  int64_t f = 0;
  if (!frac.empty()) {
    (void)absl::SimpleAtoi(frac, &f);
    if (frac.size() == 1) f *= 10;
  }
  *cents = (negative ? -1 : 1) * (u * 100 + f);
  return true;
}

std::string NormalizeEnum(absl::string_view s) {
  std::string out = absl::AsciiStrToLower(s);
  for (char& c : out) {
    if (c == '-' || c == ' ') c = '_';
  }
  return out;
}

bool InList(const std::vector<absl::string_view>& list, const std::string& value) {
  for (absl::string_view v : list) {
    if (v == value) return true;
  }
  return false;
}

int SchemaOf(const std::vector<std::string>& header) {
  const std::set<std::string> names(header.begin(), header.end());
  if (names.size() != header.size()) return 0;
  for (csv_schema::SchemaVersion version : csv_schema::kSchemaVersions) {
    std::set<std::string> expected;
    for (csv_schema::Column c : csv_schema::ColumnsOf(version)) expected.insert(std::string(csv_schema::ColumnName(c)));
    if (names == expected) return static_cast<int>(version);
  }
  return 0;
}

}  // namespace

bool ParseEventTime(absl::string_view text, int64_t* unix_us) {
  if (AllDigits(text) && (text.size() == 10 || text.size() == 13)) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(text, &v)) return false;
    *unix_us = text.size() == 10 ? v * 1'000'000 : v * 1000;
    return true;
  }
  if (text.size() < 19 || (text[10] != 'T' && text[10] != ' ')) return false;
  std::string t(text);
  t[10] = 'T';
  absl::Time parsed;
  std::string error;
  if (t.back() == 'Z') {
    t.pop_back();
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S", t, absl::UTCTimeZone(), &parsed, &error)) return false;
  } else if (t.size() >= 25 && (t[t.size() - 6] == '+' || t[t.size() - 6] == '-') && t[t.size() - 3] == ':') {
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", t, &parsed, &error)) return false;
  } else {
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S", t, absl::UTCTimeZone(), &parsed, &error)) return false;
  }
  *unix_us = absl::ToUnixMicros(parsed);
  return true;
}

OracleFile ClassifyCsv(absl::string_view content, int64_t reference_time_us) {
  OracleFile file;
  std::vector<Record> records = SplitCsvRecords(content);
  if (records.empty()) return file;
  for (const std::string& name : records[0].fields) {
    file.header.push_back(absl::AsciiStrToLower(absl::StripAsciiWhitespace(name)));
  }
  file.schema_version = SchemaOf(file.header);
  if (file.schema_version == 0) return file;
  std::map<std::string, std::string> valid_by_id;  // event_id -> raw bytes of the first valid row
  for (size_t r = 1; r < records.size(); ++r) {
    const Record& rec = records[r];
    OracleRow row;
    row.row = static_cast<int64_t>(r);
    row.line = rec.line;
    row.raw = rec.raw;
    auto add = [&row](v1::RejectReason reason) { row.reasons.push_back(reason); };
    if (rec.raw.find('\0') != std::string::npos) add(v1::REJECT_REASON_NUL_BYTE);
    if (!ValidUtf8(rec.raw)) add(v1::REJECT_REASON_INVALID_UTF8);
    if (rec.raw.size() > kMaxRowBytes) add(v1::REJECT_REASON_ROW_TOO_LARGE);
    if (rec.malformed) {
      add(v1::REJECT_REASON_MALFORMED_QUOTING);
    } else if (rec.fields.size() != file.header.size()) {
      add(v1::REJECT_REASON_WRONG_COLUMN_COUNT);
    }
    std::map<std::string, std::optional<std::string>> f;
    if (row.reasons.empty()) {
      for (size_t c = 0; c < file.header.size(); ++c) f[file.header[c]] = Clean(rec.fields[c]);
      auto get = [&f](const std::string& name) -> const std::optional<std::string>& {
        static const std::optional<std::string> kNone;
        auto it = f.find(name);
        return it == f.end() ? kNone : it->second;
      };
      const auto& event_id = get("event_id");
      const auto& user_id = get("user_id");
      const auto& event_type = get("event_type");
      const auto& event_time = get("event_time");
      bool missing = false;
      for (int c = 0; c < csv_schema::kNumColumns; ++c) {
        const auto column = static_cast<csv_schema::Column>(c);
        if (csv_schema::IsRequired(column) && !get(std::string(csv_schema::ColumnName(column)))) missing = true;
      }
      if (missing) add(v1::REJECT_REASON_MISSING_REQUIRED);
      Uuid uuid;
      const bool event_id_ok = event_id && ParseUuid(*event_id, &uuid);
      if (event_id && !event_id_ok) add(v1::REJECT_REASON_BAD_EVENT_ID);
      std::optional<int64_t> user;
      if (user_id) {
        int64_t u = 0;
        if (AllDigits(*user_id) && absl::SimpleAtoi(*user_id, &u)) {
          user = u;
        } else {
          add(v1::REJECT_REASON_BAD_USER_ID);
        }
      }
      if (get("session_id") && !ParseUuid(*get("session_id"), &uuid)) add(v1::REJECT_REASON_BAD_SESSION_ID);
      std::optional<v1::EventType> type;
      if (event_type) {
        type = domain::ParseEventType(*event_type);
        if (!type) add(v1::REJECT_REASON_UNKNOWN_EVENT_TYPE);
      }
      if (type && user && *user == domain::kAnonymousUserId && !domain::AllowedForAnonymous(*type)) {
        add(v1::REJECT_REASON_ANONYMOUS_ACTION);
      }
      const bool product_event = type && domain::IsProductEvent(*type);
      if (product_event && !get("product_id")) add(v1::REJECT_REASON_MISSING_PRODUCT);
      if (const auto& p = get("product_id")) {
        int64_t id = 0;
        if (!AllDigits(*p) || !absl::SimpleAtoi(*p, &id) || id <= 0) add(v1::REJECT_REASON_BAD_PRODUCT_ID);
      }
      if (get("category") && domain::FindCategory(*get("category")) == nullptr) add(v1::REJECT_REASON_UNKNOWN_CATEGORY);
      if (const auto& price = get("price")) {
        int64_t cents = 0;
        if (!ParsePrice(*price, &cents) || cents < 0 || cents > domain::kMaxPriceCents) add(v1::REJECT_REASON_BAD_PRICE);
      } else if (product_event) {
        add(v1::REJECT_REASON_BAD_PRICE);
      }
      if (const auto& q = get("quantity")) {
        int64_t n = 0;
        if (!AllDigits(*q) || !absl::SimpleAtoi(*q, &n) || n < 1 || n > domain::kMaxQuantity) {
          add(v1::REJECT_REASON_BAD_QUANTITY);
        }
      }
      int64_t time_us = 0;
      bool late = false;
      if (event_time) {
        if (!ParseEventTime(*event_time, &time_us)) {
          add(v1::REJECT_REASON_BAD_TIMESTAMP);
        } else if (time_us > reference_time_us + kHourUs) {
          add(v1::REJECT_REASON_FUTURE_TIMESTAMP);
        } else {
          late = time_us < reference_time_us - kHourUs;
        }
      }
      if (const auto& c = get("geo_country"); c && !domain::IsCountryCode(absl::AsciiStrToUpper(*c))) {
        add(v1::REJECT_REASON_BAD_COUNTRY);
      }
      if (const auto& s = get("user_segment"); s && !domain::ParseUserSegment(*s)) add(v1::REJECT_REASON_BAD_ENUM_VALUE);
      if ((get("device_type") && !InList(domain::DeviceTypes(), NormalizeEnum(*get("device_type")))) ||
          (get("browser") && !InList(domain::Browsers(), NormalizeEnum(*get("browser")))) ||
          (get("referrer") && !InList(domain::Referrers(), NormalizeEnum(*get("referrer"))))) {
        add(v1::REJECT_REASON_BAD_ENUM_VALUE);
      }
      if (event_id_ok) {
        const std::string id = absl::AsciiStrToLower(*event_id);
        auto it = valid_by_id.find(id);
        if (it != valid_by_id.end()) {
          if (it->second == rec.raw && row.reasons.empty()) {
            row.duplicate = true;
          } else {
            add(v1::REJECT_REASON_CONFLICTING_DUPLICATE);
          }
        } else if (row.reasons.empty()) {
          valid_by_id[id] = rec.raw;
        }
      }
      row.late = row.reasons.empty() && !row.duplicate && late;
      if (row.reasons.empty()) {
        for (const auto& [name, value] : f) {
          if (value) row.fields[name] = *value;
        }
      }
    }
    if (!row.reasons.empty()) {
      ++file.dead_letters;
      for (v1::RejectReason reason : row.reasons) ++file.reasons[reason];
    } else if (row.duplicate) {
      ++file.duplicates;
    } else {
      ++file.events;
      if (row.late) ++file.late;
    }
    file.rows.push_back(std::move(row));
  }
  return file;
}

}  // namespace ecomstream::generator::testing

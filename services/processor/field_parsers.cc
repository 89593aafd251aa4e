#include "services/processor/field_parsers.h"

#include <array>

namespace ecomstream::processor {
namespace {

inline bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Parses exactly `n` digits at `p`.
inline bool Digits(const char* p, int n, int64_t* out) {
  int64_t v = 0;
  for (int i = 0; i < n; ++i) {
    if (!IsDigit(p[i])) return false;
    v = v * 10 + (p[i] - '0');
  }
  *out = v;
  return true;
}

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

bool ParseIso8601(absl::string_view s, int64_t* unix_us) {
  // YYYY-MM-DD?hh:mm:ss is 19 characters.
  if (s.size() < 19) return false;
  const char* p = s.data();
  int64_t year, month, day, hour, minute, second;
  if (!Digits(p, 4, &year) || p[4] != '-' || !Digits(p + 5, 2, &month) || p[7] != '-' ||
      !Digits(p + 8, 2, &day) || (p[10] != 'T' && p[10] != ' ' && p[10] != 't') || !Digits(p + 11, 2, &hour) ||
      p[13] != ':' || !Digits(p + 14, 2, &minute) || p[16] != ':' || !Digits(p + 17, 2, &second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, static_cast<unsigned>(month)) || hour > 23 ||
      minute > 59 || second > 59) {
    return false;
  }
  size_t i = 19;
  int64_t micros = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && IsDigit(s[i])) {
      if (digits < 6) micros = micros * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0 || digits > 9) return false;
    for (int d = digits; d < 6; ++d) micros *= 10;
  }
  int64_t offset_seconds = 0;
  if (i < s.size()) {
    const char c = s[i];
    if (c == 'Z' || c == 'z') {
      ++i;
    } else if (c == '+' || c == '-') {
      int64_t oh, om;
      if (s.size() - i != 6 || !Digits(s.data() + i + 1, 2, &oh) || s[i + 3] != ':' ||
          !Digits(s.data() + i + 4, 2, &om) || oh > 23 || om > 59) {
        return false;
      }
      offset_seconds = (oh * 3600 + om * 60) * (c == '-' ? -1 : 1);
      i += 6;
    }
    if (i != s.size()) return false;
  }
  const int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  *unix_us = seconds * 1000000 + micros;
  return true;
}

}  // namespace

absl::string_view TrimField(absl::string_view field) {
  size_t begin = 0, end = field.size();
  while (begin < end && IsSpace(field[begin])) ++begin;
  while (end > begin && IsSpace(field[end - 1])) --end;
  return field.substr(begin, end - begin);
}

bool IsNullToken(absl::string_view t) {
  switch (t.size()) {
    case 0: return true;
    case 3: return t == "N/A" || t == "n/a";
    case 4: return t == "NULL" || t == "null" || t == "None";
    default: return false;
  }
}

bool ParseInt64(absl::string_view text, int64_t* out) {
  size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) i = 1;
  const size_t digits = text.size() - i;
  if (digits == 0 || digits > 18) return false;
  int64_t v = 0;
  for (; i < text.size(); ++i) {
    if (!IsDigit(text[i])) return false;
    v = v * 10 + (text[i] - '0');
  }
  *out = negative ? -v : v;
  return true;
}

bool ParsePriceCents(absl::string_view text, int64_t* cents) {
  size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) i = 1;
  int64_t whole = 0;
  int whole_digits = 0;
  while (i < text.size() && IsDigit(text[i])) {
    if (++whole_digits > 15) return false;
    whole = whole * 10 + (text[i] - '0');
    ++i;
  }
  if (whole_digits == 0) return false;
  int64_t fraction = 0;
  if (i < text.size()) {
    if (text[i] != '.') return false;
    ++i;
    const size_t fraction_digits = text.size() - i;
    if (fraction_digits == 0 || fraction_digits > 2) return false;
    if (!Digits(text.data() + i, static_cast<int>(fraction_digits), &fraction)) return false;
    if (fraction_digits == 1) fraction *= 10;
  }
  const int64_t v = whole * 100 + fraction;
  *cents = negative ? -v : v;
  return true;
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's days_from_civil.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool ParseTimestampMicros(absl::string_view text, int64_t* unix_us) {
  if (text.size() == 10 || text.size() == 13) {
    int64_t v;
    if (Digits(text.data(), static_cast<int>(text.size()), &v)) {
      *unix_us = text.size() == 10 ? v * 1000000 : v * 1000;
      return true;
    }
  }
  return ParseIso8601(text, unix_us);
}

size_t Utf8SequenceLength(const unsigned char* p, size_t available, bool* incomplete) {
  const unsigned char c = p[0];
  *incomplete = false;
  size_t length;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if (k >= available) {
      *incomplete = true;
      return 0;
    }
    const unsigned char next = p[k];
    if (k == 1 ? (next < lo || next > hi) : (next < 0x80 || next > 0xBF)) return 0;
  }
  return length;
}

bool IsValidUtf8(absl::string_view text) {
  const auto* b = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    if (b[i] < 0x80) {
      ++i;
      continue;
    }
    bool incomplete;
    const size_t length = Utf8SequenceLength(b + i, text.size() - i, &incomplete);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

bool FoldEnumName(absl::string_view text, char* buffer, size_t capacity, absl::string_view* out) {
  if (text.size() > capacity) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '-' || c == ' ') c = '_';
    buffer[i] = c;
  }
  *out = absl::string_view(buffer, text.size());
  return true;
}

}  // namespace ecomstream::processor

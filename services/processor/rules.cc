#include "services/processor/rules.h"

#include <utility>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/sha256.h"
#include "ecomstream/v1/rules.pb.h"
#include "services/processor/field_parsers.h"
#include "services/processor/file_lifecycle.h"

namespace ecomstream::processor {
namespace {

constexpr size_t kMaxVersionBytes = 64;
constexpr size_t kMaxCategoryNameBytes = 32;  // FoldEnumName's buffer in the row validator
constexpr size_t kMaxSynonymBytes = 64;
constexpr int64_t kMaxWindowUs = 3650LL * 24 * 3600 * 1000000;

// Values in messages are quoted and cut, so a hostile file cannot flood the log line.
std::string Quoted(absl::string_view value) {
  std::string out = "\"";
  for (char c : value.substr(0, 40)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  if (value.size() > 40) out += "...";
  return out + "\"";
}

bool IsSnakeName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxCategoryNameBytes) return false;
  for (char c : name) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) && !absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        c != '_') {
      return false;
    }
  }
  return name.front() != '_' && name.back() != '_';
}

bool IsVersionText(absl::string_view version) {
  if (version.size() > kMaxVersionBytes) return false;
  for (char c : version) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != ':' &&
        c != '+') {
      return false;
    }
  }
  return true;
}

absl::Status WindowFrom(absl::string_view field, const std::string& text, int64_t* us) {
  if (text.empty()) return absl::OkStatus();
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration() || d > absl::Microseconds(kMaxWindowUs)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " ", Quoted(text), " is not a duration between 1us and 3650 days (\"90m\", \"2h\")"));
  }
  *us = absl::ToInt64Microseconds(d);
  return absl::OkStatus();
}

}  // namespace

std::shared_ptr<const Rules> Rules::Builtin(RulesWindows windows) {
  auto rules = std::shared_ptr<Rules>(new Rules());
  rules->late_after_us_ = windows.late_after_us;
  rules->max_future_us_ = windows.max_future_us;
  rules->categories_ = domain::Categories();
  return rules;
}

absl::StatusOr<std::shared_ptr<const Rules>> Rules::FromJson(absl::string_view json, absl::string_view source,
                                                             RulesWindows windows) {
  const std::string where = absl::StrCat("rules file ", source, ": ");
  auto fail = [&where](absl::string_view what) { return absl::InvalidArgumentError(absl::StrCat(where, what)); };
  v1::Rules file;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // a misspelt field must not be ignored silently
  if (const auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), &file, options);
      !parsed.ok()) {
    // One line: the parser's message may hold a newline and the offending text.
    std::string why = absl::StrReplaceAll(parsed.message().as_string(), {{"\n", " "}, {"\r", " "}});
    if (why.size() > 200) why = absl::StrCat(why.substr(0, 200), "...");
    return fail(absl::StrCat("not a valid Rules message (protobuf JSON): ", why));
  }

  auto rules = std::shared_ptr<Rules>(new Rules());
  rules->version_ = file.version().empty() ? absl::StrCat("sha256:", Sha256Hex(json).substr(0, 12)) : file.version();
  if (!IsVersionText(file.version())) {
    return fail(absl::StrCat("version ", Quoted(file.version()),
                             " must be at most 64 characters of letters, digits and . _ - : +"));
  }
  rules->late_after_us_ = windows.late_after_us;
  rules->max_future_us_ = windows.max_future_us;
  if (absl::Status s = WindowFrom("late_after", file.late_after(), &rules->late_after_us_); !s.ok()) {
    return fail(s.message());
  }
  if (absl::Status s = WindowFrom("max_future", file.max_future(), &rules->max_future_us_); !s.ok()) {
    return fail(s.message());
  }

  // Categories: the file's replace built-in ones of the same name, or all of them.
  const bool replace = file.replace_defaults();
  std::vector<domain::Category> merged;
  if (!replace || file.categories().empty()) merged = domain::Categories();
  absl::flat_hash_set<std::string> listed;
  for (int i = 0; i < file.categories_size(); ++i) {
    const v1::RulesCategory& c = file.categories(i);
    const std::string entry = absl::StrCat("categories[", i, "] (", Quoted(c.name()), "): ");
    if (!IsSnakeName(c.name())) {
      return fail(absl::StrCat(entry, "name must be 1 to 32 characters of a-z, 0-9 and '_' (\"garden_tools\")"));
    }
    if (!listed.insert(c.name()).second) return fail(absl::StrCat(entry, "listed twice"));
    int64_t min_cents = 0, max_cents = 0;
    if (!ParsePriceCents(c.min_price(), &min_cents) || min_cents < 0 || min_cents > domain::kMaxPriceCents) {
      return fail(absl::StrCat(entry, "min_price ", Quoted(c.min_price()), " is not a price in 0.00..100000.00"));
    }
    if (!ParsePriceCents(c.max_price(), &max_cents) || max_cents < 0 || max_cents > domain::kMaxPriceCents) {
      return fail(absl::StrCat(entry, "max_price ", Quoted(c.max_price()), " is not a price in 0.00..100000.00"));
    }
    if (min_cents > max_cents) {
      return fail(absl::StrCat(entry, "min_price ", c.min_price(), " is above max_price ", c.max_price()));
    }
    if (c.first_product_id() < 0 || c.product_count() < 0 ||
        c.first_product_id() > (int64_t{1} << 53) - c.product_count() ||
        (c.product_count() > 0) != (c.first_product_id() > 0)) {
      return fail(absl::StrCat(entry, "first_product_id (", c.first_product_id(), ") and product_count (",
                               c.product_count(), ") must both be positive, or both 0"));
    }
    rules->names_.push_back(std::make_unique<std::string>(c.name()));
    const domain::Category category{*rules->names_.back(), min_cents, max_cents, c.first_product_id(),
                                    c.product_count()};
    bool replaced = false;
    for (domain::Category& existing : merged) {
      if (existing.name == category.name) {
        existing = category;
        replaced = true;
      }
    }
    if (!replaced) merged.push_back(category);
  }
  for (size_t i = 0; i < merged.size(); ++i) {
    const domain::Category& a = merged[i];
    for (size_t j = 0; j < i; ++j) {
      const domain::Category& b = merged[j];
      if (a.product_count > 0 && b.product_count > 0 && a.first_product_id < b.first_product_id + b.product_count &&
          b.first_product_id < a.first_product_id + a.product_count) {
        return fail(absl::StrCat("category ", Quoted(a.name), ": product ids ", a.first_product_id, "..",
                                 a.first_product_id + a.product_count - 1, " overlap those of ", Quoted(b.name)));
      }
    }
  }
  rules->categories_ = std::move(merged);

  for (int i = 0; i < file.countries_size(); ++i) {
    const std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(file.countries(i)));
    if (upper.size() != 2 || !absl::ascii_isalpha(static_cast<unsigned char>(upper[0])) ||
        !absl::ascii_isalpha(static_cast<unsigned char>(upper[1]))) {
      return fail(absl::StrCat("countries[", i, "] ", Quoted(file.countries(i)),
                               " is not a two-letter ISO 3166-1 alpha-2 code"));
    }
    rules->countries_.insert(upper);
  }
  rules->builtin_countries_ = !(replace && file.countries_size() > 0);

  for (const auto& [spelling, target] : file.event_type_synonyms()) {
    const std::string entry = absl::StrCat("event_type_synonyms[", Quoted(spelling), "]: ");
    const std::string key = domain::NormalizeName(spelling);
    if (key.empty() || spelling.size() > kMaxSynonymBytes) return fail(absl::StrCat(entry, "spelling must be 1 to 64 characters"));
    std::optional<v1::EventType> type;
    for (int t = v1::EVENT_TYPE_VIEW; t <= v1::EVENT_TYPE_PURCHASE; ++t) {
      if (domain::EventTypeName(static_cast<v1::EventType>(t)) == target) type = static_cast<v1::EventType>(t);
    }
    if (!type) {
      return fail(absl::StrCat(entry, Quoted(target),
                               " is not an event type (view, search, add_to_cart, remove_from_cart, wishlist, "
                               "purchase)"));
    }
    rules->event_types_[key] = *type;
  }
  rules->builtin_event_types_ = !(replace && file.event_type_synonyms_size() > 0);
  if (!rules->builtin_event_types_) {  // the stored spellings always stay
    for (int t = v1::EVENT_TYPE_VIEW; t <= v1::EVENT_TYPE_PURCHASE; ++t) {
      rules->event_types_.try_emplace(std::string(domain::EventTypeName(static_cast<v1::EventType>(t))),
                                      static_cast<v1::EventType>(t));
    }
  }

  for (const auto& [spelling, target] : file.segment_synonyms()) {
    const std::string entry = absl::StrCat("segment_synonyms[", Quoted(spelling), "]: ");
    const std::string key = domain::NormalizeName(spelling);
    if (key.empty() || spelling.size() > kMaxSynonymBytes) return fail(absl::StrCat(entry, "spelling must be 1 to 64 characters"));
    std::optional<v1::UserSegment> segment;
    for (int s = v1::USER_SEGMENT_NEW; s <= v1::USER_SEGMENT_AT_RISK; ++s) {
      if (domain::UserSegmentName(static_cast<v1::UserSegment>(s)) == target) segment = static_cast<v1::UserSegment>(s);
    }
    if (!segment) {
      return fail(absl::StrCat(entry, Quoted(target),
                               " is not a user segment (new, returning, premium, inactive, at_risk)"));
    }
    rules->segments_[key] = *segment;
  }
  rules->builtin_segments_ = !(replace && file.segment_synonyms_size() > 0);
  if (!rules->builtin_segments_) {
    for (int s = v1::USER_SEGMENT_NEW; s <= v1::USER_SEGMENT_AT_RISK; ++s) {
      rules->segments_.try_emplace(std::string(domain::UserSegmentName(static_cast<v1::UserSegment>(s))),
                                   static_cast<v1::UserSegment>(s));
    }
  }
  return std::shared_ptr<const Rules>(std::move(rules));
}

absl::StatusOr<std::shared_ptr<const Rules>> Rules::LoadFile(const std::string& path, RulesWindows windows) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxRulesFileBytes);
  if (absl::IsOutOfRange(text.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("rules file ", path, " is larger than ", kMaxRulesFileBytes, " bytes"));
  }
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("rules file ", path, " cannot be read: ", text.status().message()));
  }
  return FromJson(*text, path, windows);
}

const domain::Category* Rules::FindCategoryFolded(absl::string_view folded) const {
  for (const domain::Category& category : categories_) {
    if (category.name == folded) return &category;
  }
  return nullptr;
}

const domain::Category* Rules::FindCategory(absl::string_view text) const {
  return FindCategoryFolded(domain::NormalizeName(text));
}

const domain::Category* Rules::CategoryOfProduct(int64_t product_id) const {
  for (const domain::Category& category : categories_) {
    if (product_id >= category.first_product_id && product_id < category.first_product_id + category.product_count) {
      return &category;
    }
  }
  return nullptr;
}

std::optional<v1::EventType> Rules::ParseEventType(absl::string_view text) const {
  if (builtin_event_types_) {
    if (std::optional<v1::EventType> type = domain::ParseEventType(text)) return type;
    if (event_types_.empty()) return std::nullopt;
  }
  auto it = event_types_.find(domain::NormalizeName(text));
  if (it == event_types_.end()) return std::nullopt;
  return it->second;
}

std::optional<v1::UserSegment> Rules::ParseUserSegment(absl::string_view text) const {
  if (builtin_segments_) {
    if (std::optional<v1::UserSegment> segment = domain::ParseUserSegment(text)) return segment;
    if (segments_.empty()) return std::nullopt;
  }
  auto it = segments_.find(domain::NormalizeName(text));
  if (it == segments_.end()) return std::nullopt;
  return it->second;
}

bool Rules::IsCountryCode(absl::string_view upper_code) const {
  if (builtin_countries_ && domain::IsCountryCode(upper_code)) return true;
  return !countries_.empty() && countries_.contains(upper_code);
}

RulesStore::RulesStore(std::shared_ptr<const Rules> rules, metrics::Registry* registry) : registry_(registry) {
  Set(std::move(rules));
}

std::shared_ptr<const Rules> RulesStore::Get() const {
  absl::MutexLock lock(&mu_);
  return rules_;
}

void RulesStore::Set(std::shared_ptr<const Rules> rules) {
  absl::MutexLock lock(&mu_);
  if (registry_ != nullptr) {
    constexpr char kHelp[] = "1 for the rules version the processor validates with (0 for versions active before).";
    if (rules_ != nullptr) registry_->GetGauge("ecomstream_processor_rules_info", kHelp, {{"version", rules_->version()}}).Set(0);
    registry_->GetGauge("ecomstream_processor_rules_info", kHelp, {{"version", rules->version()}}).Set(1);
  }
  rules_ = std::move(rules);
}

absl::Status RulesStore::Reload(const std::string& path, RulesWindows windows) {
  absl::StatusOr<std::shared_ptr<const Rules>> loaded = Rules::LoadFile(path, windows);
  if (registry_ != nullptr) {
    registry_
        ->GetCounter("ecomstream_processor_rules_reloads_total", "Rules file reloads (SIGHUP) by result.",
                     {{"result", loaded.ok() ? "ok" : "error"}})
        .Increment();
  }
  if (!loaded.ok()) return loaded.status();
  Set(*std::move(loaded));
  return absl::OkStatus();
}

}  // namespace ecomstream::processor

#include "services/generator/anomaly_injector.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/domain.h"

namespace ecomstream::generator {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;

// The row one anomaly bends: the injector's draws, the file's schema version, the event and the
// encoder's plan. Each kind below is one function of it; every draw is made in the order written.
struct Bend {
  Rng& rng;
  SchemaVersion version;
  ShopperEvent& e;
  RowPlan& plan;

  bool v2() const { return version != SchemaVersion::kV1; }
  bool v3() const { return version == SchemaVersion::kV3; }
  // `column`'s field becomes the returned text (emptied here), written as is.
  std::string& Override(Column column) {
    plan.has_override = true;
    plan.column = column;
    plan.text.clear();
    return plan.text;
  }
  template <typename T>
  T PickOf(std::initializer_list<T> options) {
    return options.begin()[rng.Uniform(options.size())];
  }
  absl::string_view Pick(const std::vector<absl::string_view>& options) {
    return options[rng.Uniform(options.size())];
  }
  // `column`'s field becomes one of `values`.
  void OverrideWithOneOf(Column column, std::initializer_list<absl::string_view> values) {
    std::string& text = Override(column);
    text = std::string(PickOf(values));
  }
};
using BendFn = void (*)(Bend&);

// Spellings docs/rows.md cleans back to the event type (domain::ParseEventType).
const std::vector<absl::string_view>& Synonyms(v1::EventType type);
// "add_to_cart" -> "Add_To_Cart".
std::string TitleCase(absl::string_view text);

// Upper or title case event type; upper-case category (v2+); lower-case country (v3).
void NoiseCase(Bend& b) {
  const int choice = static_cast<int>(b.rng.Uniform(b.v3() ? 4 : b.v2() ? 3 : 2));
  if (choice == 2 && b.e.category != nullptr) {
    b.Override(Column::kCategory) = absl::AsciiStrToUpper(b.e.category->name);
  } else if (choice == 3) {
    b.Override(Column::kGeoCountry) = absl::AsciiStrToLower(b.e.place->country);
  } else {
    std::string& text = b.Override(Column::kEventType);
    const absl::string_view name = domain::EventTypeName(b.e.event_type);
    text = choice == 0 ? absl::AsciiStrToUpper(name) : TitleCase(name);
  }
}

// Spaces or a tab around a clean value.
void NoiseWhitespace(Bend& b) {
  const bool product = domain::IsProductEvent(b.e.event_type);
  const Column column =
      product ? b.PickOf({Column::kEventType, Column::kUserId, Column::kEventId, Column::kEventTime, Column::kPrice})
              : b.PickOf({Column::kEventType, Column::kUserId, Column::kEventId, Column::kEventTime});
  std::string& text = b.Override(column);
  text = std::string(b.PickOf<absl::string_view>({" ", "  ", "\t", ""}));
  AppendCleanField(b.e, column, &text);
  absl::StrAppend(&text, b.PickOf<absl::string_view>({" ", "   ", "\t "}));
}

void NoiseSynonym(Bend& b) {
  std::string& text = b.Override(Column::kEventType);
  text = std::string(b.Pick(Synonyms(b.e.event_type)));
}

// The same instant in another of the accepted formats.
void NoiseTimestampFormat(Bend& b) {
  std::string& text = b.Override(Column::kEventTime);
  const int64_t ms = b.e.event_time_ms;
  switch (b.rng.Uniform(5)) {
    case 0:  // space instead of T, no zone (UTC)
      AppendIsoMillis(ms, &text);
      text[10] = ' ';
      text.pop_back();
      break;
    case 1: {  // local time with an offset
      const int64_t offset_min = b.PickOf<int64_t>({330, -480, 60, -300, 540, 120});
      AppendIsoMillis(ms + offset_min * 60'000, &text);
      text.pop_back();
      const int64_t a = offset_min < 0 ? -offset_min : offset_min;
      absl::StrAppend(&text, offset_min < 0 ? "-" : "+", a / 60 < 10 ? "0" : "", a / 60, ":", a % 60 < 10 ? "0" : "",
                      a % 60);
      break;
    }
    case 2:  // epoch seconds (10 digits)
      AppendInt(ms / 1000, &text);
      break;
    case 3:  // epoch milliseconds (13 digits)
      AppendInt(ms, &text);
      break;
    default:  // no fraction
      AppendIsoMillis(ms / 1000 * 1000, &text);
      text.erase(19, 4);
      break;
  }
}

// A NULL marker in a nullable column the version has.
void NoiseNullMarker(Bend& b) {
  Column column;
  if (!b.v2()) {
    column = b.PickOf({Column::kProductId, Column::kPrice});
  } else if (!b.v3()) {
    column = b.PickOf({Column::kSessionId, Column::kCategory, Column::kQuantity, Column::kUserSegment});
  } else {
    column = b.PickOf({Column::kSessionId, Column::kCategory, Column::kQuantity, Column::kUserSegment,
                       Column::kDeviceType, Column::kBrowser, Column::kGeoCountry, Column::kGeoCity,
                       Column::kReferrer, Column::kCampaignId});
  }
  b.OverrideWithOneOf(column, {"N/A", "NULL", "null", "n/a", "None"});
}

void MissingRequired(Bend& b) {
  b.OverrideWithOneOf(b.PickOf({Column::kUserId, Column::kEventTime}), {"", "NULL", "N/A"});
}

// A UUID column (event_id or session_id) that is not a UUID.
void BadUuid(Bend& b, bool event_id) {
  std::string& text = b.Override(event_id ? Column::kEventId : Column::kSessionId);
  AppendUuid(UuidBytes(event_id ? b.e.event_id : b.e.session_id), &text);
  switch (b.rng.Uniform(4)) {
    case 0: text.pop_back(); break;                         // 35 characters
    case 1: text[b.rng.Uniform(8)] = 'g'; break;            // not hex
    case 2: absl::StrReplaceAll({{"-", ""}}, &text); break;  // no dashes
    default: text = absl::StrCat(event_id ? "evt-" : "sess-", b.rng.Range(10000000, 99999999)); break;
  }
}
void BadEventId(Bend& b) { BadUuid(b, /*event_id=*/true); }
void BadSessionId(Bend& b) { BadUuid(b, /*event_id=*/false); }

void BadUserId(Bend& b) {
  std::string& text = b.Override(Column::kUserId);
  const int64_t id = b.e.user_id == 0 ? 1 : b.e.user_id;
  switch (b.rng.Uniform(4)) {
    case 0: text = absl::StrCat("-", id); break;
    case 1: text = absl::StrCat("user_", id); break;
    case 2: text = absl::StrCat(id, ".5"); break;
    default: text = "abc"; break;
  }
}

void UnknownEventType(Bend& b) {
  b.OverrideWithOneOf(Column::kEventType, {"teleport", "refund", "click_ad", "share", "rate_product"});
}

void AnonymousAction(Bend& b) { b.e.user_id = domain::kAnonymousUserId; }

void MissingProduct(Bend& b) { b.OverrideWithOneOf(Column::kProductId, {"", "NULL", "N/A"}); }

void BadProductId(Bend& b) {
  std::string& text = b.Override(Column::kProductId);
  switch (b.rng.Uniform(5)) {
    case 0: text = "0"; break;
    case 1: text = absl::StrCat("-", b.e.product_id); break;
    case 2: text = "abc"; break;
    case 3: text = absl::StrCat(b.e.product_id, ".5"); break;
    default: text = absl::StrCat("SKU-", b.e.product_id); break;
  }
}

void UnknownCategory(Bend& b) {
  b.OverrideWithOneOf(Column::kCategory, {"spaceships", "antiques", "pet_rocks", "timeshares"});
}

void BadPrice(Bend& b) {
  std::string& text = b.Override(Column::kPrice);
  switch (b.rng.Uniform(7)) {
    case 0: AppendCents(-b.e.price_cents, &text); break;                  // negative
    case 1: text = "100000.01"; break;                                     // just above the limit
    case 2: text = "250000.00"; break;                                     // absurd
    case 3: absl::StrAppend(&text, b.e.price_cents / 100, ".999"); break;  // three decimals
    case 4: text = "abc"; break;
    case 5: text = "12.3.4"; break;
    default: text = std::string(b.PickOf<absl::string_view>({"", "N/A"})); break;  // product without price
  }
}

void BadQuantity(Bend& b) { b.OverrideWithOneOf(Column::kQuantity, {"0", "-1", "1001", "two", "2.5"}); }

void BadTimestamp(Bend& b) {
  b.OverrideWithOneOf(Column::kEventTime, {"yesterday", "not a date", "12/31/2025 10:00", "soon"});
}

// 2-30 days ahead: beyond the processor's 1 h --max_future whatever the file's span.
void FutureTimestamp(Bend& b) { b.e.event_time_ms += b.rng.Range(2 * kDayMs, 30 * kDayMs); }

void BadCountry(Bend& b) { b.OverrideWithOneOf(Column::kGeoCountry, {"XX", "ZZ", "QQ", "USA", "12"}); }

void BadEnumValue(Bend& b) {
  const Column column =
      b.v3() ? b.PickOf({Column::kUserSegment, Column::kDeviceType, Column::kBrowser, Column::kReferrer})
             : Column::kUserSegment;
  switch (column) {
    case Column::kUserSegment: b.OverrideWithOneOf(column, {"gold", "platinum", "churned", "whale"}); break;
    case Column::kDeviceType: b.OverrideWithOneOf(column, {"toaster", "smartwatch", "fridge"}); break;
    case Column::kBrowser: b.OverrideWithOneOf(column, {"netscape", "lynx", "mosaic"}); break;
    default: b.OverrideWithOneOf(column, {"carrier_pigeon", "billboard", "radio"}); break;
  }
}

void MalformedQuoting(Bend& b) {
  const Column column = b.PickOf({Column::kEventType, Column::kEventId, Column::kUserId});
  std::string& text = b.Override(column);
  AppendCleanField(b.e, column, &text);
  if (b.rng.Chance(0.5)) {
    text.insert(1 + b.rng.Uniform(text.size() - 1), 1, '"');  // a quote inside an unquoted field
  } else {
    // Text after the closing quote.
    text = absl::StrCat("\"", text, "\"", b.PickOf<absl::string_view>({"x", "1", "abc"}));
  }
}

void WrongColumnCount(Bend& b) {
  const auto& columns = ColumnsOf(b.version);
  std::string& text = b.Override(columns[b.rng.Uniform(columns.size())]);
  if (b.rng.Chance(0.5)) {
    b.plan.omit_column = true;
  } else {
    AppendCleanField(b.e, b.plan.column, &text);
    text += ",";  // one field too many
  }
}

void InvalidUtf8(Bend& b) {
  if (b.v3()) {
    // A city spelled in ISO-8859-1, as a legacy upstream system would send it.
    std::string& text = b.Override(Column::kGeoCity);
    const Place& place = *b.e.place;
    if (!place.city_latin1.empty()) {
      text = std::string(place.city_latin1);
    } else {
      text = std::string(place.city_csv);
      text.insert(text.back() == '"' ? text.size() - 1 : text.size(), "\xE9");
    }
  } else {
    b.Override(Column::kEventType) = absl::StrCat(domain::EventTypeName(b.e.event_type), "\xA0");  // Latin-1 no-break space
  }
}

struct KindInfo {
  AnomalyKind kind;
  absl::string_view name;
  RowOutcome outcome;
  v1::RejectReason reason;
  absl::string_view group;
  BendFn bend;  // null: the injector's own (a late event, the duplicates of a remembered row)
};

constexpr RowOutcome kEvent = RowOutcome::kEvent;
constexpr RowOutcome kDead = RowOutcome::kDeadLetter;

// Indexed by AnomalyKind.
const KindInfo kKinds[kNumAnomalyKinds] = {
    {AnomalyKind::kNoiseCase, "noise_case", kEvent, v1::REJECT_REASON_UNSPECIFIED, "noise", NoiseCase},
    {AnomalyKind::kNoiseWhitespace, "noise_whitespace", kEvent, v1::REJECT_REASON_UNSPECIFIED, "noise", NoiseWhitespace},
    {AnomalyKind::kNoiseSynonym, "noise_synonym", kEvent, v1::REJECT_REASON_UNSPECIFIED, "noise", NoiseSynonym},
    {AnomalyKind::kNoiseTimestampFormat, "noise_timestamp_format", kEvent, v1::REJECT_REASON_UNSPECIFIED, "noise", NoiseTimestampFormat},
    {AnomalyKind::kNoiseNullMarker, "noise_null_marker", kEvent, v1::REJECT_REASON_UNSPECIFIED, "noise", NoiseNullMarker},
    {AnomalyKind::kMissingRequired, "missing_required", kDead, v1::REJECT_REASON_MISSING_REQUIRED, "invalid", MissingRequired},
    {AnomalyKind::kBadEventId, "bad_event_id", kDead, v1::REJECT_REASON_BAD_EVENT_ID, "invalid", BadEventId},
    {AnomalyKind::kBadUserId, "bad_user_id", kDead, v1::REJECT_REASON_BAD_USER_ID, "invalid", BadUserId},
    {AnomalyKind::kBadSessionId, "bad_session_id", kDead, v1::REJECT_REASON_BAD_SESSION_ID, "invalid", BadSessionId},
    {AnomalyKind::kUnknownEventType, "unknown_event_type", kDead, v1::REJECT_REASON_UNKNOWN_EVENT_TYPE, "invalid", UnknownEventType},
    {AnomalyKind::kAnonymousAction, "anonymous_action", kDead, v1::REJECT_REASON_ANONYMOUS_ACTION, "invalid", AnonymousAction},
    {AnomalyKind::kMissingProduct, "missing_product", kDead, v1::REJECT_REASON_MISSING_PRODUCT, "invalid", MissingProduct},
    {AnomalyKind::kBadProductId, "bad_product_id", kDead, v1::REJECT_REASON_BAD_PRODUCT_ID, "invalid", BadProductId},
    {AnomalyKind::kUnknownCategory, "unknown_category", kDead, v1::REJECT_REASON_UNKNOWN_CATEGORY, "invalid", UnknownCategory},
    {AnomalyKind::kBadPrice, "bad_price", kDead, v1::REJECT_REASON_BAD_PRICE, "invalid", BadPrice},
    {AnomalyKind::kBadQuantity, "bad_quantity", kDead, v1::REJECT_REASON_BAD_QUANTITY, "invalid", BadQuantity},
    {AnomalyKind::kBadTimestamp, "bad_timestamp", kDead, v1::REJECT_REASON_BAD_TIMESTAMP, "invalid", BadTimestamp},
    {AnomalyKind::kFutureTimestamp, "future_timestamp", kDead, v1::REJECT_REASON_FUTURE_TIMESTAMP, "invalid", FutureTimestamp},
    {AnomalyKind::kBadCountry, "bad_country", kDead, v1::REJECT_REASON_BAD_COUNTRY, "invalid", BadCountry},
    {AnomalyKind::kBadEnumValue, "bad_enum_value", kDead, v1::REJECT_REASON_BAD_ENUM_VALUE, "invalid", BadEnumValue},
    {AnomalyKind::kConflictingDuplicate, "conflicting_duplicate", kDead, v1::REJECT_REASON_CONFLICTING_DUPLICATE, "invalid", nullptr},
    {AnomalyKind::kMalformedQuoting, "malformed_quoting", kDead, v1::REJECT_REASON_MALFORMED_QUOTING, "malformed", MalformedQuoting},
    {AnomalyKind::kWrongColumnCount, "wrong_column_count", kDead, v1::REJECT_REASON_WRONG_COLUMN_COUNT, "malformed", WrongColumnCount},
    {AnomalyKind::kInvalidUtf8, "invalid_utf8", kDead, v1::REJECT_REASON_INVALID_UTF8, "malformed", InvalidUtf8},
    {AnomalyKind::kExactDuplicate, "exact_duplicate", RowOutcome::kDuplicate, v1::REJECT_REASON_UNSPECIFIED, "", nullptr},
    {AnomalyKind::kLateEvent, "late_event", kEvent, v1::REJECT_REASON_UNSPECIFIED, "", nullptr},
};

const KindInfo& Info(AnomalyKind kind) { return kKinds[static_cast<int>(kind)]; }

// Spellings docs/rows.md cleans back to the event type (domain::ParseEventType).
const std::vector<absl::string_view>& Synonyms(v1::EventType type) {
  static const auto* kView = new std::vector<absl::string_view>{"page_view", "Page View", "product-view"};
  static const auto* kAdd =
      new std::vector<absl::string_view>{"cart", "addtocart", "Add To Cart", "add-to-cart", "cart_add"};
  static const auto* kRemove = new std::vector<absl::string_view>{"removefromcart", "cart_remove", "Remove From Cart"};
  static const auto* kWishlist = new std::vector<absl::string_view>{"add_to_wishlist", "Add-To-Wishlist"};
  static const auto* kPurchase = new std::vector<absl::string_view>{"buy", "order", "checkout", "Checkout"};
  static const auto* kNone = new std::vector<absl::string_view>{};
  switch (type) {
    case v1::EVENT_TYPE_VIEW: return *kView;
    case v1::EVENT_TYPE_ADD_TO_CART: return *kAdd;
    case v1::EVENT_TYPE_REMOVE_FROM_CART: return *kRemove;
    case v1::EVENT_TYPE_WISHLIST: return *kWishlist;
    case v1::EVENT_TYPE_PURCHASE: return *kPurchase;
    default: return *kNone;
  }
}

// "add_to_cart" -> "Add_To_Cart".
std::string TitleCase(absl::string_view text) {
  std::string out(text);
  bool start = true;
  for (char& c : out) {
    if (start) c = absl::ascii_toupper(static_cast<unsigned char>(c));
    start = (c == '_' || c == ' ' || c == '-');
  }
  return out;
}

}  // namespace

absl::string_view AnomalyKindName(AnomalyKind kind) { return Info(kind).name; }
RowOutcome OutcomeOf(AnomalyKind kind) { return Info(kind).outcome; }
v1::RejectReason ReasonOf(AnomalyKind kind) { return Info(kind).reason; }

AnomalyKindSet AllAnomalyKinds() { return AnomalyKindSet().set(); }

absl::StatusOr<AnomalyKindSet> ParseAnomalyKinds(absl::string_view list) {
  AnomalyKindSet kinds;
  for (absl::string_view entry : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry == "all") {
      kinds.set();
      continue;
    }
    bool known = false;
    for (const KindInfo& info : kKinds) {
      if (info.name == entry || info.group == entry) {
        kinds.set(static_cast<int>(info.kind));
        known = true;
      }
    }
    if (!known) {
      std::vector<absl::string_view> names = {"all", "noise", "invalid", "malformed"};
      for (const KindInfo& info : kKinds) names.push_back(info.name);
      return absl::InvalidArgumentError(absl::StrCat("--anomaly_kinds: unknown kind '", entry,
                                                     "' (known: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  if (kinds.none()) {
    return absl::InvalidArgumentError("--anomaly_kinds is empty (use --anomaly_rate=0 --late_rate=0 for clean data)");
  }
  return kinds;
}

AnomalyInjector::AnomalyInjector(uint64_t seed, Options options) : rng_(seed), options_(options) {
  candidates_.reserve(kNumAnomalyKinds);
}

void AnomalyInjector::BeginFile(SchemaVersion version) {
  version_ = version;
  pool_size_ = 0;
  pool_next_ = 0;
  valid_rows_in_file_ = 0;
}

bool AnomalyInjector::Applicable(AnomalyKind kind, const ShopperEvent& e) const {
  const bool v2 = version_ != SchemaVersion::kV1;
  const bool v3 = version_ == SchemaVersion::kV3;
  const bool product = domain::IsProductEvent(e.event_type);
  switch (kind) {
    case AnomalyKind::kNoiseSynonym:
      return !Synonyms(e.event_type).empty();
    case AnomalyKind::kNoiseNullMarker:
      // v1 has no nullable column except a search's product_id and price.
      return v2 || !product;
    case AnomalyKind::kBadSessionId:
    case AnomalyKind::kUnknownCategory:
    case AnomalyKind::kBadEnumValue:
      return v2;
    case AnomalyKind::kBadCountry:
      return v3;
    case AnomalyKind::kUnknownEventType:
      // An anonymous row with an unknown type would also be anonymous_action.
      return e.user_id != domain::kAnonymousUserId;
    case AnomalyKind::kAnonymousAction:
      return !domain::AllowedForAnonymous(e.event_type);
    case AnomalyKind::kMissingProduct:
    case AnomalyKind::kBadProductId:
    case AnomalyKind::kBadPrice:
      return product;
    case AnomalyKind::kBadQuantity:
      return v2 && product;
    case AnomalyKind::kConflictingDuplicate:
    case AnomalyKind::kExactDuplicate:
      return pool_size_ > 0;
    case AnomalyKind::kLateEvent:
      return false;  // drawn separately, at late_rate
    default:
      return true;
  }
}

RowVerdict AnomalyInjector::Apply(ShopperEvent* event, RowPlan* plan) {
  plan->Clear();
  RowVerdict verdict;
  if (options_.kinds.test(static_cast<int>(AnomalyKind::kLateEvent)) && rng_.Chance(options_.late_rate)) {
    event->event_time_ms -= rng_.Range(2 * kHourMs, 6 * kHourMs);
    verdict.anomalous = true;
    verdict.kind = AnomalyKind::kLateEvent;
    verdict.late = true;
    return verdict;
  }
  if (!rng_.Chance(options_.rate)) return verdict;
  candidates_.clear();
  for (int k = 0; k < kNumAnomalyKinds; ++k) {
    const auto kind = static_cast<AnomalyKind>(k);
    if (options_.kinds.test(k) && Applicable(kind, *event)) candidates_.push_back(kind);
  }
  if (candidates_.empty()) return verdict;
  const AnomalyKind kind = candidates_[rng_.Uniform(candidates_.size())];
  Inject(kind, event, plan);
  verdict.anomalous = true;
  verdict.kind = kind;
  verdict.outcome = OutcomeOf(kind);
  return verdict;
}

void AnomalyInjector::Remember(const ShopperEvent& event, absl::string_view record) {
  // Fill the pool with the file's first rows, then refresh one slot every 8th valid row.
  ++valid_rows_in_file_;
  if (pool_size_ == kPoolSize && valid_rows_in_file_ % 8 != 0) return;
  PooledRow& slot = pool_[pool_next_];
  pool_next_ = (pool_next_ + 1) % kPoolSize;
  if (pool_size_ < kPoolSize) ++pool_size_;
  slot.event = event;
  slot.record.assign(record.data(), record.size());
}

void AnomalyInjector::Inject(AnomalyKind kind, ShopperEvent* e, RowPlan* plan) {
  switch (kind) {
    case AnomalyKind::kConflictingDuplicate:
      // Same event_id as an earlier valid row, one non-id column changed, otherwise valid.
      *e = pool_[rng_.Uniform(pool_size_)].event;
      if (e->price_cents >= 0) {
        e->price_cents += rng_.Range(1, 500);
      } else {
        e->event_time_ms += 1000;
      }
      return;
    case AnomalyKind::kExactDuplicate:
      plan->verbatim = pool_[rng_.Uniform(pool_size_)].record;
      return;
    default:
      if (const BendFn bend = Info(kind).bend; bend != nullptr) {
        Bend row{rng_, version_, *e, *plan};
        bend(row);
      }
      return;
  }
}

}  // namespace ecomstream::generator

#include "services/processor/row_validator.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/domain.h"
#include "services/processor/field_parsers.h"

namespace ecomstream::processor {
namespace {

constexpr size_t kMaxDetailValueBytes = 64;
constexpr size_t kEnumBufferBytes = 32;

std::optional<v1::EventType> ParseEventTypeFast(const Rules& rules, absl::string_view t) {
  // The stored spellings first; everything else (case, '-', synonyms) through domain.
  switch (t.size()) {
    case 4:
      if (t == "view") return v1::EVENT_TYPE_VIEW;
      break;
    case 6:
      if (t == "search") return v1::EVENT_TYPE_SEARCH;
      break;
    case 8:
      if (t == "purchase") return v1::EVENT_TYPE_PURCHASE;
      if (t == "wishlist") return v1::EVENT_TYPE_WISHLIST;
      break;
    case 11:
      if (t == "add_to_cart") return v1::EVENT_TYPE_ADD_TO_CART;
      break;
    case 16:
      if (t == "remove_from_cart") return v1::EVENT_TYPE_REMOVE_FROM_CART;
      break;
  }
  return rules.ParseEventType(t);
}

// The canonical spelling from `list` of a case-folded `text`, or empty. The stored spellings
// (already folded) are tried first: most files use them.
absl::string_view FindInList(const std::vector<absl::string_view>& list, absl::string_view text) {
  for (absl::string_view name : list) {
    if (name == text) return name;
  }
  char buffer[kEnumBufferBytes];
  absl::string_view folded;
  if (!FoldEnumName(text, buffer, sizeof(buffer), &folded)) return {};
  for (absl::string_view name : list) {
    if (name == folded) return name;
  }
  return {};
}

const domain::Category* FindCategoryFast(const Rules& rules, absl::string_view text) {
  // A stored spelling is its own folded form.
  if (const domain::Category* category = rules.FindCategoryFolded(text)) return category;
  char buffer[kEnumBufferBytes];
  absl::string_view folded;
  if (FoldEnumName(text, buffer, sizeof(buffer), &folded)) {
    if (const domain::Category* category = rules.FindCategoryFolded(folded)) return category;
  }
  return rules.FindCategory(text);  // display names such as "Home & Garden"
}

std::optional<v1::UserSegment> ParseUserSegmentFast(const Rules& rules, absl::string_view text) {
  for (int s = v1::USER_SEGMENT_NEW; s <= v1::USER_SEGMENT_AT_RISK; ++s) {  // the stored spellings first
    if (domain::UserSegmentName(static_cast<v1::UserSegment>(s)) == text) return static_cast<v1::UserSegment>(s);
  }
  char buffer[kEnumBufferBytes];
  absl::string_view folded;
  if (FoldEnumName(text, buffer, sizeof(buffer), &folded)) {
    for (int s = v1::USER_SEGMENT_NEW; s <= v1::USER_SEGMENT_AT_RISK; ++s) {
      if (domain::UserSegmentName(static_cast<v1::UserSegment>(s)) == folded) return static_cast<v1::UserSegment>(s);
    }
  }
  return rules.ParseUserSegment(text);
}

const Rules& BuiltinRules() {
  static const auto* rules = new std::shared_ptr<const Rules>(Rules::Builtin());
  return **rules;
}

// Rows read before the event-id index gets a table sized for the whole file.
constexpr int64_t kRowsBeforeSizing = 1000;

// At most kMaxDetailValueBytes of a valid UTF-8 value, cut at a character boundary.
absl::string_view DetailValue(absl::string_view value) {
  if (value.size() <= kMaxDetailValueBytes) return value;
  size_t n = kMaxDetailValueBytes;
  while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  return value.substr(0, n);
}

inline void Assign(std::string* field, absl::string_view value) { field->assign(value.data(), value.size()); }

absl::string_view AsBytes(const Uuid& id) { return {reinterpret_cast<const char*>(id.data()), id.size()}; }

}  // namespace

void RowCounts::Add(const RowCounts& other) {
  rows += other.rows;
  events += other.events;
  dead_letters += other.dead_letters;
  duplicates += other.duplicates;
  late += other.late;
  for (int r = 0; r < kNumRejectReasons; ++r) by_reason[r] += other.by_reason[r];
}

std::string RowCounts::ReasonSummary() const {
  std::string out;
  for (int r = 0; r < kNumRejectReasons; ++r) {
    if (by_reason[r] == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : ",", domain::RejectReasonName(static_cast<RejectReason>(r)), ":",
                    by_reason[r]);
  }
  return out;
}

RowValidator::RowValidator(const Schema& schema, RowValidatorOptions options)
    : schema_(schema),
      options_(options),
      rules_(options.rules != nullptr ? options.rules : &BuiltinRules()),
      kept_rows_(options.earlier_rows == nullptr ? std::make_unique<KeptRows>() : nullptr),
      earlier_rows_(options.earlier_rows != nullptr ? options.earlier_rows : kept_rows_.get()),
      buffered_counts_(options.counters) {
  issues_.reserve(8);
}

absl::string_view RowValidator::Field(Column column, bool* present) const {
  const int index = schema_.index[column];
  if (index < 0) {
    *present = false;
    return {};
  }
  const absl::string_view value = TrimField(record_->fields[index]);
  *present = !IsNullToken(value);
  return value;
}

void RowValidator::AddIssue(RejectReason reason, int column, absl::string_view value, const char* rule) {
  issues_.push_back(Issue{reason, column, value, rule});
}

void RowValidator::CheckRecord() {
  const uint8_t flags = record_->flags;
  if (flags & kCsvMalformedQuoting) AddIssue(v1::REJECT_REASON_MALFORMED_QUOTING, -1, {}, nullptr);
  if (flags & kCsvTooLarge) AddIssue(v1::REJECT_REASON_ROW_TOO_LARGE, -1, {}, nullptr);
  if (flags & kCsvInvalidUtf8) AddIssue(v1::REJECT_REASON_INVALID_UTF8, -1, {}, nullptr);
  if (flags & kCsvNulByte) AddIssue(v1::REJECT_REASON_NUL_BYTE, -1, {}, nullptr);
  if (flags == 0 && static_cast<int>(record_->fields.size()) != schema_.field_count) {
    AddIssue(v1::REJECT_REASON_WRONG_COLUMN_COUNT, -1, {}, nullptr);
  }
}

void RowValidator::CheckFields() {
  parsed_ = Parsed();
  // The order of the checks is the order of a dead letter's reasons.
  const Identity identity = CheckIdentity();
  CheckEventTime();
  CheckSession();
  const bool product_event = identity.type_ok && domain::IsProductEvent(parsed_.event_type);
  CheckProduct(product_event);
  CheckAnonymousAction(identity);
  CheckCategory();
  CheckPriceAndQuantity(product_event);
  CheckCountry();
  CheckEnums();
  KeepFreeText();
}

RowValidator::Identity RowValidator::CheckIdentity() {
  Parsed& p = parsed_;
  Identity identity;
  bool present;
  absl::string_view v = Field(Column::kEventId, &present);  // event_id_ok_ is false (Validate)
  if (!present) {
    AddIssue(v1::REJECT_REASON_MISSING_REQUIRED, Column::kEventId, v, "a value is required");
  } else if (!ParseUuid(v, &p.event_id)) {
    AddIssue(v1::REJECT_REASON_BAD_EVENT_ID, Column::kEventId, v, "not a UUID (8-4-4-4-12 hex)");
  } else {
    event_id_ok_ = true;
  }

  v = identity.user_id = Field(Column::kUserId, &present);
  if (!present) {
    AddIssue(v1::REJECT_REASON_MISSING_REQUIRED, Column::kUserId, v, "a value is required");
  } else if (!ParseInt64(v, &p.user_id) || p.user_id < 0) {
    AddIssue(v1::REJECT_REASON_BAD_USER_ID, Column::kUserId, v, "not an integer >= 0");
  } else {
    identity.user_ok = true;
  }

  v = Field(Column::kEventType, &present);
  if (!present) {
    AddIssue(v1::REJECT_REASON_MISSING_REQUIRED, Column::kEventType, v, "a value is required");
  } else if (std::optional<v1::EventType> type = ParseEventTypeFast(*rules_, v)) {
    p.event_type = *type;
    identity.type_ok = true;
  } else {
    AddIssue(v1::REJECT_REASON_UNKNOWN_EVENT_TYPE, Column::kEventType, v, "not an event type");
  }
  return identity;
}

void RowValidator::CheckEventTime() {
  Parsed& p = parsed_;
  bool present;
  absl::string_view v = Field(Column::kEventTime, &present);
  if (!present) {
    AddIssue(v1::REJECT_REASON_MISSING_REQUIRED, Column::kEventTime, v, "a value is required");
  } else if (!ParseTimestampMicros(v, &p.event_time_us)) {
    AddIssue(v1::REJECT_REASON_BAD_TIMESTAMP, Column::kEventTime, v, "not an ISO 8601 time or epoch seconds/milliseconds");
  } else if (p.event_time_us > options_.reference_time_us + options_.max_future_us) {
    AddIssue(v1::REJECT_REASON_FUTURE_TIMESTAMP, Column::kEventTime, v, "later than the file's time plus --max_future");
  } else {
    p.late = p.event_time_us < options_.reference_time_us - options_.late_after_us;
  }
}

void RowValidator::CheckSession() {
  Parsed& p = parsed_;
  bool present;
  absl::string_view v = Field(Column::kSessionId, &present);
  if (present) {
    if (ParseUuid(v, &p.session_id)) {
      p.has_session = true;
    } else {
      AddIssue(v1::REJECT_REASON_BAD_SESSION_ID, Column::kSessionId, v, "not a UUID (8-4-4-4-12 hex)");
    }
  }
}

void RowValidator::CheckProduct(bool product_event) {
  Parsed& p = parsed_;
  bool present;
  absl::string_view v = Field(Column::kProductId, &present);
  if (present) {
    if (ParseInt64(v, &p.product_id) && p.product_id > 0) {
      p.has_product = true;
    } else {
      AddIssue(v1::REJECT_REASON_BAD_PRODUCT_ID, Column::kProductId, v, "not an integer > 0");
    }
  } else if (product_event) {
    AddIssue(v1::REJECT_REASON_MISSING_PRODUCT, Column::kProductId, v, "a product event needs a product_id");
  }
}

void RowValidator::CheckAnonymousAction(const Identity& identity) {
  if (identity.type_ok && identity.user_ok && parsed_.user_id == domain::kAnonymousUserId &&
      !domain::AllowedForAnonymous(parsed_.event_type)) {
    AddIssue(v1::REJECT_REASON_ANONYMOUS_ACTION, Column::kUserId, identity.user_id,
             "anonymous users (user_id 0) may only view or search");
  }
}

void RowValidator::CheckCategory() {
  Parsed& p = parsed_;
  bool present;
  if (schema_.version == 1) {
    if (p.has_product) {
      if (const domain::Category* category = rules_->CategoryOfProduct(p.product_id)) p.category = category->name;
    }
  } else {
    const absl::string_view v = Field(Column::kCategory, &present);
    if (present) {
      if (const domain::Category* category = FindCategoryFast(*rules_, v)) {
        p.category = category->name;
      } else {
        AddIssue(v1::REJECT_REASON_UNKNOWN_CATEGORY, Column::kCategory, v, "not a catalogue category");
      }
    }
  }
}

void RowValidator::CheckPriceAndQuantity(bool product_event) {
  Parsed& p = parsed_;
  bool present;
  absl::string_view v = Field(Column::kPrice, &present);
  if (present) {
    if (!ParsePriceCents(v, &p.price_cents)) {
      AddIssue(v1::REJECT_REASON_BAD_PRICE, Column::kPrice, v, "not a decimal with at most two fraction digits");
    } else if (p.price_cents < 0) {
      AddIssue(v1::REJECT_REASON_BAD_PRICE, Column::kPrice, v, "negative");
    } else if (p.price_cents > domain::kMaxPriceCents) {
      AddIssue(v1::REJECT_REASON_BAD_PRICE, Column::kPrice, v, "above 100000.00");
    } else {
      p.has_price = true;
    }
  } else if (product_event) {
    AddIssue(v1::REJECT_REASON_BAD_PRICE, Column::kPrice, v, "a product event needs a price");
  }

  v = Field(Column::kQuantity, &present);
  if (present) {
    int64_t quantity;
    if (ParseInt64(v, &quantity) && quantity >= 1 && quantity <= domain::kMaxQuantity) {
      p.has_quantity = true;
      p.quantity = static_cast<int32_t>(quantity);
    } else {
      AddIssue(v1::REJECT_REASON_BAD_QUANTITY, Column::kQuantity, v, "not an integer in 1..1000");
    }
  }
}

void RowValidator::CheckCountry() {
  Parsed& p = parsed_;
  bool present;
  absl::string_view v = Field(Column::kGeoCountry, &present);
  if (present) {
    char upper[2];
    bool ok = v.size() == 2;
    for (size_t i = 0; ok && i < 2; ++i) {
      char c = v[i];
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      upper[i] = c;
    }
    if (ok && rules_->IsCountryCode(absl::string_view(upper, 2))) {
      p.geo_country[0] = upper[0];
      p.geo_country[1] = upper[1];
      p.has_country = true;
    } else {
      AddIssue(v1::REJECT_REASON_BAD_COUNTRY, Column::kGeoCountry, v, "not an ISO 3166-1 alpha-2 code");
    }
  }
}

void RowValidator::CheckEnums() {
  Parsed& p = parsed_;
  bool present;
  absl::string_view v = Field(Column::kUserSegment, &present);
  if (present) {
    if (std::optional<v1::UserSegment> segment = ParseUserSegmentFast(*rules_, v)) {
      p.user_segment = *segment;
    } else {
      AddIssue(v1::REJECT_REASON_BAD_ENUM_VALUE, Column::kUserSegment, v, "not a user segment");
    }
  }
  struct ListColumn {
    Column column;
    const std::vector<absl::string_view>& list;
    absl::string_view* out;
    const char* rule;
  };
  const ListColumn lists[] = {
      {Column::kDeviceType, domain::DeviceTypes(), &p.device_type, "not a device type"},
      {Column::kBrowser, domain::Browsers(), &p.browser, "not a browser"},
      {Column::kReferrer, domain::Referrers(), &p.referrer, "not a referrer"},
  };
  for (const ListColumn& c : lists) {
    v = Field(c.column, &present);
    if (!present) continue;
    *c.out = FindInList(c.list, v);
    if (c.out->empty()) AddIssue(v1::REJECT_REASON_BAD_ENUM_VALUE, c.column, v, c.rule);
  }
}

void RowValidator::KeepFreeText() {
  Parsed& p = parsed_;
  bool present;
  absl::string_view v = Field(Column::kGeoCity, &present);
  if (present) p.geo_city = v;
  v = Field(Column::kCampaignId, &present);
  if (present) p.campaign_id = v;
}

bool RowValidator::SameEventId(int64_t row) {
  if (!status_.ok()) return false;
  status_ = earlier_rows_->Find(row, &earlier_);
  if (!status_.ok()) return false;
  const int index = schema_.index[Column::kEventId];
  Uuid id;
  if (index < 0 || static_cast<size_t>(index) >= earlier_.fields.size() ||
      !ParseUuid(TrimField(earlier_.fields[index]), &id) || id != parsed_.event_id) {
    return false;
  }
  earlier_raw_ = earlier_.raw;
  return true;
}

RowOutcome RowValidator::Conclude() {
  if (event_id_ok_) {
    const uint64_t hash = EventIdIndex::Hash(parsed_.event_id);
    const int64_t earlier = index_.Find(hash, [this](int64_t row) { return SameEventId(row); });
    if (issues_.empty()) {
      if (earlier == 0) {
        index_.Insert(hash, row_);
        earlier_rows_->Keep(row_, *record_);
      } else if (earlier_raw_ == record_->raw) {
        ++counts_.duplicates;
        return RowOutcome::kDuplicate;
      } else {
        AddIssue(v1::REJECT_REASON_CONFLICTING_DUPLICATE, Column::kEventId, {}, nullptr);
      }
    } else if (earlier != 0 && earlier_raw_ != record_->raw) {
      AddIssue(v1::REJECT_REASON_CONFLICTING_DUPLICATE, Column::kEventId, {}, nullptr);
    }
  }
  if (issues_.empty()) {
    ++counts_.events;
    if (parsed_.late) ++counts_.late;
    return RowOutcome::kEvent;
  }
  ++counts_.dead_letters;
  for (RejectReason reason : reasons()) ++counts_.by_reason[reason];
  return RowOutcome::kDeadLetter;
}

RowOutcome RowValidator::Validate(const CsvRecord& record, int64_t row) {
  record_ = &record;
  row_ = row;
  issues_.clear();
  event_id_ok_ = false;
  ++counts_.rows;
  earlier_rows_->Note(row, record);
  bytes_seen_ += record.raw_size + 1;
  if (counts_.rows == kRowsBeforeSizing && options_.file_bytes > 0) {
    // Room for the rest of the file at this many bytes per row, plus a tenth.
    const double rows_left = static_cast<double>(options_.file_bytes) * kRowsBeforeSizing /
                                 static_cast<double>(bytes_seen_) - kRowsBeforeSizing;
    index_.Reserve(static_cast<int64_t>(rows_left * 1.1));
  }
  CheckRecord();
  if (issues_.empty()) CheckFields();
  const RowOutcome outcome = Conclude();
  Count(outcome);
  return outcome;
}

void RowValidator::Count(RowOutcome outcome) {
  if (row_ <= options_.counted_after_row) return;
  ++buffered_counts_.received;
  switch (outcome) {
    case RowOutcome::kEvent:
      ++buffered_counts_.sent;
      break;
    case RowOutcome::kDuplicate:
      ++buffered_counts_.dropped;
      break;
    case RowOutcome::kDeadLetter:
      ++buffered_counts_.failed;
      break;
  }
  buffered_counts_.Row();
}

std::vector<RejectReason> RowValidator::reasons() const {
  std::vector<RejectReason> out;
  out.reserve(issues_.size());
  for (const Issue& issue : issues_) {
    // A rule can fail twice for one row only through distinct columns; report each reason once.
    if (std::find(out.begin(), out.end(), issue.reason) == out.end()) out.push_back(issue.reason);
  }
  return out;
}

void RowValidator::FillEvent(v1::Event* event) const {
  // Strings are assigned to the field's own std::string (made on the batch's arena):
  // set_x(data, size) would build a temporary std::string first (protobuf 3.21), one more heap
  // allocation and copy for the 16-byte ids. Empty fields stay unset.
  const Parsed& p = parsed_;
  Assign(event->mutable_event_id(), AsBytes(p.event_id));
  event->set_user_id(p.user_id);
  if (p.has_session) Assign(event->mutable_session_id(), AsBytes(p.session_id));
  event->set_event_type(p.event_type);
  if (p.has_product) event->set_product_id(p.product_id);
  if (!p.category.empty()) Assign(event->mutable_category(), p.category);
  if (p.has_price) event->set_price_cents(p.price_cents);
  if (p.has_quantity) event->set_quantity(p.quantity);
  if (p.has_price && domain::IsProductEvent(p.event_type)) {
    event->set_total_amount_cents(p.price_cents * (p.has_quantity ? p.quantity : 1));
  }
  event->set_event_time_us(p.event_time_us);
  event->set_user_segment(p.user_segment);
  if (!p.device_type.empty()) Assign(event->mutable_device_type(), p.device_type);
  if (!p.browser.empty()) Assign(event->mutable_browser(), p.browser);
  if (p.has_country) Assign(event->mutable_geo_country(), absl::string_view(p.geo_country, 2));
  if (!p.geo_city.empty()) Assign(event->mutable_geo_city(), p.geo_city);
  if (!p.referrer.empty()) Assign(event->mutable_referrer(), p.referrer);
  if (!p.campaign_id.empty()) Assign(event->mutable_campaign_id(), p.campaign_id);
  event->set_schema_version(schema_.version);
  event->set_late_arrival(p.late);
  event->set_source_row(row_);
}

void RowValidator::FillDeadLetter(v1::DeadLetter* dead_letter) const {
  const CsvRecord& record = *record_;
  dead_letter->set_row(row_);
  dead_letter->set_line(record.line);
  dead_letter->set_raw(record.raw.data(), record.raw.size());
  for (RejectReason reason : reasons()) dead_letter->add_reasons(reason);
  std::string detail;
  for (const Issue& issue : issues_) {
    if (!detail.empty()) detail += "; ";
    switch (issue.reason) {
      case v1::REJECT_REASON_MALFORMED_QUOTING:
        detail += "malformed quoting: a quote inside an unquoted field, text after a closing quote, or a quote left open";
        break;
      case v1::REJECT_REASON_ROW_TOO_LARGE:
        absl::StrAppend(&detail, "record is ", record.raw_size, " bytes, over the ", options_.max_row_bytes,
                        "-byte limit (raw holds the first ", record.raw.size(), ")");
        break;
      case v1::REJECT_REASON_INVALID_UTF8:
        absl::StrAppend(&detail, "bytes that are not UTF-8 (first bad byte at offset ", record.first_bad_byte, ")");
        break;
      case v1::REJECT_REASON_NUL_BYTE:
        absl::StrAppend(&detail, "NUL byte in the record (first bad byte at offset ", record.first_bad_byte, ")");
        break;
      case v1::REJECT_REASON_WRONG_COLUMN_COUNT:
        absl::StrAppend(&detail, "record has ", record.fields.size(), " fields, the header has ", schema_.field_count);
        break;
      case v1::REJECT_REASON_CONFLICTING_DUPLICATE:
        detail += "event_id: an earlier valid row of this file has the same event_id and different content";
        break;
      default:
        absl::StrAppend(&detail, ColumnName(static_cast<Column>(issue.column)), ": ", issue.rule, " (value \"",
                        DetailValue(issue.value), "\")");
        break;
    }
  }
  dead_letter->set_detail(std::move(detail));
  for (const Issue& issue : issues_) {
    if (issue.column >= 0) {
      const absl::string_view name = ColumnName(static_cast<Column>(issue.column));
      dead_letter->set_column(name.data(), name.size());
      break;
    }
  }
}

}  // namespace ecomstream::processor

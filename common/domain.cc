#include "common/domain.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace ecomstream::domain {
namespace {

// Lower-cases, trims, and turns runs of ' ', '-' and '&' into a single '_'.
std::string Normalize(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  std::string out;
  out.reserve(text.size());
  bool pending_sep = false;
  for (char c : text) {
    if (c == ' ' || c == '-' || c == '_' || c == '&') {
      pending_sep = !out.empty();
      continue;
    }
    if (pending_sep) out.push_back('_');
    pending_sep = false;
    out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

constexpr absl::string_view kCountryCodes =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW "
    "BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI "
    "FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN "
    "IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME "
    "MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF "
    "PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE "
    "YT ZA ZM ZW";

}  // namespace

std::string NormalizeName(absl::string_view text) { return Normalize(text); }

absl::string_view EventTypeName(EventType type) {
  switch (type) {
    case v1::EVENT_TYPE_VIEW: return "view";
    case v1::EVENT_TYPE_SEARCH: return "search";
    case v1::EVENT_TYPE_ADD_TO_CART: return "add_to_cart";
    case v1::EVENT_TYPE_REMOVE_FROM_CART: return "remove_from_cart";
    case v1::EVENT_TYPE_WISHLIST: return "wishlist";
    case v1::EVENT_TYPE_PURCHASE: return "purchase";
    default: return "";
  }
}

std::optional<EventType> ParseEventType(absl::string_view text) {
  static const auto* kByName = new absl::flat_hash_map<std::string, EventType>{
      {"view", v1::EVENT_TYPE_VIEW},
      {"page_view", v1::EVENT_TYPE_VIEW},
      {"product_view", v1::EVENT_TYPE_VIEW},
      {"search", v1::EVENT_TYPE_SEARCH},
      {"add_to_cart", v1::EVENT_TYPE_ADD_TO_CART},
      {"addtocart", v1::EVENT_TYPE_ADD_TO_CART},
      {"cart", v1::EVENT_TYPE_ADD_TO_CART},
      {"cart_add", v1::EVENT_TYPE_ADD_TO_CART},
      {"remove_from_cart", v1::EVENT_TYPE_REMOVE_FROM_CART},
      {"removefromcart", v1::EVENT_TYPE_REMOVE_FROM_CART},
      {"cart_remove", v1::EVENT_TYPE_REMOVE_FROM_CART},
      {"wishlist", v1::EVENT_TYPE_WISHLIST},
      {"add_to_wishlist", v1::EVENT_TYPE_WISHLIST},
      {"purchase", v1::EVENT_TYPE_PURCHASE},
      {"buy", v1::EVENT_TYPE_PURCHASE},
      {"order", v1::EVENT_TYPE_PURCHASE},
      {"checkout", v1::EVENT_TYPE_PURCHASE},
  };
  auto it = kByName->find(Normalize(text));
  if (it == kByName->end()) return std::nullopt;
  return it->second;
}

bool IsProductEvent(EventType type) { return type != v1::EVENT_TYPE_SEARCH && type != v1::EVENT_TYPE_UNSPECIFIED; }

bool AllowedForAnonymous(EventType type) { return type == v1::EVENT_TYPE_VIEW || type == v1::EVENT_TYPE_SEARCH; }

absl::string_view UserSegmentName(UserSegment segment) {
  switch (segment) {
    case v1::USER_SEGMENT_NEW: return "new";
    case v1::USER_SEGMENT_RETURNING: return "returning";
    case v1::USER_SEGMENT_PREMIUM: return "premium";
    case v1::USER_SEGMENT_INACTIVE: return "inactive";
    case v1::USER_SEGMENT_AT_RISK: return "at_risk";
    default: return "";
  }
}

std::optional<UserSegment> ParseUserSegment(absl::string_view text) {
  const std::string n = Normalize(text);
  if (n == "new") return v1::USER_SEGMENT_NEW;
  if (n == "returning") return v1::USER_SEGMENT_RETURNING;
  if (n == "premium" || n == "vip") return v1::USER_SEGMENT_PREMIUM;
  if (n == "inactive") return v1::USER_SEGMENT_INACTIVE;
  if (n == "at_risk" || n == "atrisk") return v1::USER_SEGMENT_AT_RISK;
  return std::nullopt;
}

const std::vector<Category>& Categories() {
  static const auto* kCategories = new std::vector<Category>{
      {"electronics", 1999, 249999, 100000, 800},
      {"computers", 29999, 399999, 110000, 400},
      {"phones", 9999, 179999, 120000, 300},
      {"clothing", 999, 19999, 200000, 1500},
      {"shoes", 2499, 29999, 210000, 600},
      {"home_garden", 499, 99999, 300000, 1200},
      {"books", 299, 7999, 400000, 5000},
      {"sports", 799, 149999, 500000, 900},
      {"beauty", 399, 19999, 600000, 700},
      {"toys", 499, 29999, 700000, 800},
      {"grocery", 99, 4999, 800000, 3000},
      {"automotive", 999, 199999, 900000, 500},
  };
  return *kCategories;
}

const Category* FindCategory(absl::string_view text) {
  const std::string n = Normalize(text);
  for (const Category& c : Categories()) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

const std::vector<absl::string_view>& DeviceTypes() {
  static const auto* k = new std::vector<absl::string_view>{"desktop", "mobile", "tablet", "smart_tv", "console"};
  return *k;
}

const std::vector<absl::string_view>& Browsers() {
  static const auto* k =
      new std::vector<absl::string_view>{"chrome", "safari", "firefox", "edge", "samsung_internet", "opera", "app"};
  return *k;
}

const std::vector<absl::string_view>& Referrers() {
  static const auto* k = new std::vector<absl::string_view>{"direct", "google", "bing", "facebook", "instagram",
                                                            "tiktok", "email", "affiliate", "youtube", "partner"};
  return *k;
}

bool IsCountryCode(absl::string_view upper_code) {
  static const auto* kCodes = [] {
    auto* set = new absl::flat_hash_set<std::string>();
    for (absl::string_view code : absl::StrSplit(kCountryCodes, ' ')) set->insert(std::string(code));
    return set;
  }();
  return upper_code.size() == 2 && kCodes->contains(upper_code);
}

std::string RejectReasonName(RejectReason reason) {
  std::string name = v1::RejectReason_Name(reason);
  constexpr absl::string_view kPrefix = "REJECT_REASON_";
  if (absl::string_view(name).substr(0, kPrefix.size()) == kPrefix) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

}  // namespace ecomstream::domain

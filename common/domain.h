// The e-commerce domain both sides agree on: event types, categories with their price ranges,
// user segments and the other closed lists. The generator draws from these lists; the processor
// validates against them. One place, so the two can never drift apart.
#ifndef ECOMSTREAM_COMMON_DOMAIN_H_
#define ECOMSTREAM_COMMON_DOMAIN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::domain {

using ::ecomstream::v1::EventType;
using ::ecomstream::v1::RejectReason;
using ::ecomstream::v1::UserSegment;

// Anonymous visitors carry user_id 0 and may only view or search.
inline constexpr int64_t kAnonymousUserId = 0;
// Prices above this (in cents) are absurd and rejected: 100,000.00.
inline constexpr int64_t kMaxPriceCents = 10'000'000;
inline constexpr int32_t kMaxQuantity = 1000;

// The form names are matched in: lower case, trimmed, runs of ' ', '-', '_' and '&' as one '_'
// ("Home & Garden" -> "home_garden").
std::string NormalizeName(absl::string_view text);

// "view", "add_to_cart", ... (the stored form).
absl::string_view EventTypeName(EventType type);
// Accepts the stored form and cleanable variants: any case, surrounding space, '-' or ' ' for
// '_', and synonyms ("cart" -> add_to_cart, "buy"/"order" -> purchase, "page_view" -> view).
std::optional<EventType> ParseEventType(absl::string_view text);
// View, add_to_cart, remove_from_cart, wishlist and purchase need a product.
bool IsProductEvent(EventType type);
// Anonymous users may do these.
bool AllowedForAnonymous(EventType type);

absl::string_view UserSegmentName(UserSegment segment);  // "new", "returning", ..., "" for unspecified
std::optional<UserSegment> ParseUserSegment(absl::string_view text);  // case/space/'-' tolerant

struct Category {
  absl::string_view name;       // stored form, lower snake case
  int64_t min_price_cents;      // the catalogue's price range
  int64_t max_price_cents;
  int64_t first_product_id;     // product ids [first, first + product_count)
  int32_t product_count;
};
const std::vector<Category>& Categories();
// Case/space tolerant; "Home & Garden" style display names map to "home_garden".
const Category* FindCategory(absl::string_view text);

// Closed lists for v3 context columns (stored lower case).
const std::vector<absl::string_view>& DeviceTypes();   // desktop, mobile, tablet, ...
const std::vector<absl::string_view>& Browsers();
const std::vector<absl::string_view>& Referrers();
// ISO 3166-1 alpha-2 codes, upper case.
bool IsCountryCode(absl::string_view upper_code);

// "wrong_column_count" for REJECT_REASON_WRONG_COLUMN_COUNT: the stored form of a reason.
std::string RejectReasonName(RejectReason reason);

}  // namespace ecomstream::domain

#endif  // ECOMSTREAM_COMMON_DOMAIN_H_

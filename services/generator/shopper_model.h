// The source of clean events: simulated shoppers browsing in concurrent sessions.
//
// Each session belongs to one user (or an anonymous visitor, user_id 0) and walks a funnel:
// search and view products, add viewed products to the cart or the wishlist, remove items,
// and check out the cart (one purchase event per cart item). Segments (new, returning, premium,
// inactive, at_risk) differ in activity (share of sessions, session length) and conversion.
// A user's segment is fixed by the user id range. Anonymous visitors only view and search.
// Categories, prices and product ids come from common/domain.h; a product's price is fixed.
//
// Every event is valid per docs/rows.md. Deterministic: the same seed and the same sequence
// of `now_ms` give the same events. Not thread-safe.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_SHOPPER_MODEL_H_
#define ECOMSTREAM_SERVICES_GENERATOR_SHOPPER_MODEL_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/domain.h"
#include "common/uuid.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/generator/random.h"

namespace ecomstream::generator {

// Where a shopper is. `city_csv` is the city as a CSV field (quoted when it holds a comma);
// `city_latin1` is the same name in ISO-8859-1 (invalid UTF-8), empty when the name is ASCII.
struct Place {
  absl::string_view country;  // ISO 3166-1 alpha-2, upper case
  absl::string_view city;
  absl::string_view city_csv;
  absl::string_view city_latin1;
};

// One event with every v3 column. "None" values are written as empty fields (NULL).
struct ShopperEvent {
  Uuid event_id{};
  Uuid session_id{};
  int64_t user_id = 0;  // 0 = anonymous
  v1::EventType event_type = v1::EVENT_TYPE_VIEW;
  int64_t product_id = 0;                         // 0 = none (search)
  const domain::Category* category = nullptr;     // nullptr = none
  int64_t price_cents = -1;                       // -1 = none (search)
  int32_t quantity = 0;                           // 0 = none (view, search, wishlist)
  int64_t event_time_ms = 0;                      // Unix milliseconds, UTC
  v1::UserSegment segment = v1::USER_SEGMENT_UNSPECIFIED;  // unspecified = none (anonymous)
  absl::string_view device_type;
  absl::string_view browser;
  const Place* place = nullptr;
  absl::string_view referrer;
  absl::string_view campaign_id;  // empty = none
};

struct SegmentProfile {
  v1::UserSegment segment;
  double session_share;      // share of signed-in sessions
  int64_t first_user_id;     // the segment's users are [first_user_id, first_user_id + user_count)
  int64_t user_count;
  double mean_events;        // mean session length in events (before checkout)
  double add_to_cart;        // P(add the viewed product to the cart)
  double checkout;           // P(check out a non-empty cart), per step and at session end
  double wishlist;           // P(wishlist the viewed product)
  double remove_from_cart;   // P(remove an item from a non-empty cart)
  double search;             // P(search instead of viewing)
};

class ShopperModel {
 public:
  struct Options {
    double anonymous_share = 0.20;  // share of sessions by anonymous visitors
    int concurrent_sessions = 256;  // sessions interleaved in the output
  };

  // The segments, in v1::UserSegment order (new, returning, premium, inactive, at_risk).
  static const std::vector<SegmentProfile>& Segments();
  // Popularity of each category, parallel to domain::Categories().
  static const std::vector<double>& CategoryWeights();
  // The fixed price of a product of `category`, inside the category's price range.
  static int64_t PriceCents(const domain::Category& category, int64_t product_id);
  // The places shoppers come from (countries with their cities).
  static const std::vector<Place>& Places();

  explicit ShopperModel(uint64_t seed) : ShopperModel(seed, Options{}) {}
  ShopperModel(uint64_t seed, Options options);

  // Fills `*event` with the next event, stamped `now_ms` (its UUIDv7 carries the same time).
  void Next(int64_t now_ms, ShopperEvent* event);

 private:
  static constexpr int kMaxCart = 8;
  struct CartItem {
    int64_t product_id;
    const domain::Category* category;
    int64_t price_cents;
    int32_t quantity;
  };
  struct Session {
    bool active = false;
    Uuid id{};
    int64_t user_id = 0;
    const SegmentProfile* profile = nullptr;  // nullptr = anonymous
    absl::string_view device_type;
    absl::string_view browser;
    const Place* place = nullptr;
    absl::string_view referrer;
    absl::string_view campaign_id;
    int remaining = 0;
    const domain::Category* interest = nullptr;
    int64_t viewed_product = 0;  // the product on screen, 0 = none
    CartItem cart[kMaxCart];
    int cart_size = 0;
    bool checking_out = false;
  };

  void Start(Session& s);
  void Step(Session& s, ShopperEvent* event);
  void EmitSearch(Session& s, ShopperEvent* event);
  void EmitView(Session& s, ShopperEvent* event);
  void EmitCartItem(Session& s, int index, v1::EventType type, ShopperEvent* event);
  const domain::Category* PickCategory();
  int64_t PickProduct(const domain::Category& category);

  Rng rng_;
  Options options_;
  std::vector<Session> sessions_;
  WeightedChoice segment_choice_;
  WeightedChoice category_choice_;
  WeightedChoice device_choice_;
  WeightedChoice browser_choice_;
  WeightedChoice place_choice_;
  WeightedChoice referrer_choice_;
  WeightedChoice quantity_choice_;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_SHOPPER_MODEL_H_

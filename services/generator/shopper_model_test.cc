#include "services/generator/shopper_model.h"

#include <map>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/domain.h"
#include "common/uuid.h"
#include "gtest/gtest.h"

namespace ecomstream::generator {
namespace {

constexpr int kEvents = 200'000;
constexpr int64_t kStartMs = 1'777'000'000'000;

std::vector<ShopperEvent> Generate(uint64_t seed, int n) {
  ShopperModel model(seed);
  std::vector<ShopperEvent> events(n);
  for (int i = 0; i < n; ++i) model.Next(kStartMs + i, &events[i]);
  return events;
}

TEST(ShopperModelTest, EveryEventIsValidForItsType) {
  for (const ShopperEvent& e : Generate(1, 50'000)) {
    ASSERT_NE(e.event_type, v1::EVENT_TYPE_UNSPECIFIED);
    EXPECT_GE(e.user_id, 0);
    if (domain::IsProductEvent(e.event_type)) {
      ASSERT_NE(e.category, nullptr);
      EXPECT_GE(e.product_id, e.category->first_product_id);
      EXPECT_LT(e.product_id, e.category->first_product_id + e.category->product_count);
      EXPECT_EQ(e.price_cents, ShopperModel::PriceCents(*e.category, e.product_id));
      EXPECT_GE(e.price_cents, e.category->min_price_cents);
      EXPECT_LE(e.price_cents, e.category->max_price_cents);
    } else {
      EXPECT_EQ(e.product_id, 0);
      EXPECT_EQ(e.price_cents, -1);
    }
    const bool has_quantity = e.event_type == v1::EVENT_TYPE_ADD_TO_CART ||
                              e.event_type == v1::EVENT_TYPE_REMOVE_FROM_CART ||
                              e.event_type == v1::EVENT_TYPE_PURCHASE;
    if (has_quantity) {
      EXPECT_GE(e.quantity, 1);
      EXPECT_LE(e.quantity, 5);
    } else {
      EXPECT_EQ(e.quantity, 0);
    }
    ASSERT_NE(e.place, nullptr);
    EXPECT_TRUE(domain::IsCountryCode(e.place->country)) << e.place->country;
    EXPECT_NE(std::find(domain::DeviceTypes().begin(), domain::DeviceTypes().end(), e.device_type),
              domain::DeviceTypes().end());
    EXPECT_NE(std::find(domain::Browsers().begin(), domain::Browsers().end(), e.browser), domain::Browsers().end());
    EXPECT_NE(std::find(domain::Referrers().begin(), domain::Referrers().end(), e.referrer),
              domain::Referrers().end());
  }
}

TEST(ShopperModelTest, EventIdsAreTimeOrderedUuidV7AndUnique) {
  absl::flat_hash_set<std::string> ids;
  const std::vector<ShopperEvent> events = Generate(2, 50'000);
  for (size_t i = 0; i < events.size(); ++i) {
    const Uuid& id = events[i].event_id;
    EXPECT_EQ(id[6] >> 4, 7);
    EXPECT_EQ(id[8] >> 6, 2);  // RFC 9562 variant
    int64_t ms = 0;
    for (int b = 0; b < 6; ++b) ms = ms << 8 | id[b];
    EXPECT_EQ(ms, kStartMs + static_cast<int64_t>(i));
    EXPECT_EQ(events[i].session_id[6] >> 4, 4);
    EXPECT_TRUE(ids.insert(FormatUuid(id)).second);
  }
}

TEST(ShopperModelTest, AnonymousVisitorsOnlyViewAndSearchWithoutSegment) {
  int anonymous = 0;
  for (const ShopperEvent& e : Generate(3, kEvents)) {
    if (e.user_id != domain::kAnonymousUserId) {
      EXPECT_NE(e.segment, v1::USER_SEGMENT_UNSPECIFIED);
      continue;
    }
    ++anonymous;
    EXPECT_TRUE(domain::AllowedForAnonymous(e.event_type)) << domain::EventTypeName(e.event_type);
    EXPECT_EQ(e.segment, v1::USER_SEGMENT_UNSPECIFIED);
  }
  EXPECT_GT(anonymous, 0);
}

// Within a session: add_to_cart only of a product viewed before; wishlist only of a viewed
// product; remove_from_cart and purchase only of a product in the cart (which leaves it).
TEST(ShopperModelTest, FunnelOrderHoldsWithinEverySession) {
  struct SessionState {
    std::set<int64_t> viewed;
    std::multiset<int64_t> cart;
    int64_t user_id;
  };
  absl::flat_hash_map<std::string, SessionState> sessions;
  int violations = 0;
  std::map<v1::EventType, int> types;
  for (const ShopperEvent& e : Generate(4, kEvents)) {
    SessionState& s = sessions.try_emplace(FormatUuid(e.session_id), SessionState{{}, {}, e.user_id}).first->second;
    EXPECT_EQ(s.user_id, e.user_id) << "a session belongs to one user";
    ++types[e.event_type];
    switch (e.event_type) {
      case v1::EVENT_TYPE_VIEW:
        s.viewed.insert(e.product_id);
        break;
      case v1::EVENT_TYPE_ADD_TO_CART:
      case v1::EVENT_TYPE_WISHLIST:
        if (!s.viewed.count(e.product_id)) ++violations;
        if (e.event_type == v1::EVENT_TYPE_ADD_TO_CART) s.cart.insert(e.product_id);
        break;
      case v1::EVENT_TYPE_REMOVE_FROM_CART:
      case v1::EVENT_TYPE_PURCHASE: {
        auto it = s.cart.find(e.product_id);
        if (it == s.cart.end()) {
          ++violations;
        } else {
          s.cart.erase(it);
        }
        break;
      }
      default:
        break;
    }
  }
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(types.size(), 6u) << "every event type occurs";
}

// Shares are computed over sessions (segments, anonymous) and events (types, categories);
// the tolerances are a few standard errors for 200k events (about 25k sessions).
TEST(ShopperModelTest, DistributionsMatchTheProfiles) {
  absl::flat_hash_map<std::string, v1::UserSegment> session_segment;
  absl::flat_hash_set<std::string> anonymous_sessions;
  std::map<v1::EventType, double> types;
  std::vector<double> views_by_category(domain::Categories().size());
  double views = 0;
  const std::vector<ShopperEvent> events = Generate(5, kEvents);
  for (const ShopperEvent& e : events) {
    const std::string session = FormatUuid(e.session_id);
    session_segment[session] = e.segment;
    if (e.user_id == 0) anonymous_sessions.insert(session);
    ++types[e.event_type];
    if (e.event_type == v1::EVENT_TYPE_VIEW || e.event_type == v1::EVENT_TYPE_SEARCH) {
      views_by_category[e.category - domain::Categories().data()] += 1;
      views += 1;
    }
  }
  const double sessions = static_cast<double>(session_segment.size());
  const double signed_in = sessions - static_cast<double>(anonymous_sessions.size());
  EXPECT_NEAR(anonymous_sessions.size() / sessions, 0.20, 0.015);
  std::map<v1::UserSegment, double> segment_sessions;
  for (const auto& [id, segment] : session_segment) {
    if (segment != v1::USER_SEGMENT_UNSPECIFIED) segment_sessions[segment] += 1;
  }
  for (const SegmentProfile& p : ShopperModel::Segments()) {
    EXPECT_NEAR(segment_sessions[p.segment] / signed_in, p.session_share, 0.015)
        << domain::UserSegmentName(p.segment);
  }
  double weight_sum = 0;
  for (double w : ShopperModel::CategoryWeights()) weight_sum += w;
  for (size_t c = 0; c < views_by_category.size(); ++c) {
    EXPECT_NEAR(views_by_category[c] / views, ShopperModel::CategoryWeights()[c] / weight_sum, 0.015)
        << domain::Categories()[c].name;
  }
  // A funnel narrows: views dominate, then carts, then purchases; every type is present.
  const double n = kEvents;
  EXPECT_GT(types[v1::EVENT_TYPE_VIEW] / n, 0.45);
  EXPECT_LT(types[v1::EVENT_TYPE_VIEW] / n, 0.75);
  EXPECT_GT(types[v1::EVENT_TYPE_SEARCH] / n, 0.10);
  EXPECT_LT(types[v1::EVENT_TYPE_SEARCH] / n, 0.30);
  EXPECT_GT(types[v1::EVENT_TYPE_ADD_TO_CART], types[v1::EVENT_TYPE_PURCHASE]);
  EXPECT_GT(types[v1::EVENT_TYPE_PURCHASE] / n, 0.01);
  EXPECT_GT(types[v1::EVENT_TYPE_REMOVE_FROM_CART] / n, 0.002);
  EXPECT_GT(types[v1::EVENT_TYPE_WISHLIST] / n, 0.005);
}

TEST(ShopperModelTest, PremiumShoppersConvertMoreThanInactiveOnes) {
  std::map<v1::UserSegment, double> views, purchases;
  for (const ShopperEvent& e : Generate(6, kEvents)) {
    if (e.event_type == v1::EVENT_TYPE_VIEW) views[e.segment] += 1;
    if (e.event_type == v1::EVENT_TYPE_PURCHASE) purchases[e.segment] += 1;
  }
  const auto rate = [&](v1::UserSegment s) { return purchases[s] / views[s]; };
  EXPECT_GT(rate(v1::USER_SEGMENT_PREMIUM), 2 * rate(v1::USER_SEGMENT_INACTIVE));
  EXPECT_GT(rate(v1::USER_SEGMENT_RETURNING), rate(v1::USER_SEGMENT_NEW));
  EXPECT_EQ(purchases[v1::USER_SEGMENT_UNSPECIFIED], 0) << "anonymous visitors never buy";
}

TEST(ShopperModelTest, UsersKeepTheirSegment) {
  absl::flat_hash_map<int64_t, v1::UserSegment> segment_of;
  for (const ShopperEvent& e : Generate(7, 100'000)) {
    if (e.user_id == 0) continue;
    auto [it, inserted] = segment_of.try_emplace(e.user_id, e.segment);
    EXPECT_EQ(it->second, e.segment) << e.user_id;
  }
}

TEST(ShopperModelTest, SameSeedSameEventsOtherSeedOtherEvents) {
  const std::vector<ShopperEvent> a = Generate(8, 1000), b = Generate(8, 1000), c = Generate(9, 1000);
  int differ = 0;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(a[i].event_id, b[i].event_id);
    EXPECT_EQ(a[i].product_id, b[i].product_id);
    differ += a[i].event_id != c[i].event_id;
  }
  EXPECT_EQ(differ, 1000);
}

TEST(ShopperModelTest, PlacesHaveLatin1SpellingsForNonAsciiCities) {
  int non_ascii = 0;
  for (const Place& p : ShopperModel::Places()) {
    if (p.city == "M\u00fcnchen") {
      EXPECT_EQ(p.city_latin1, "M\xfcnchen");
    }
    if (p.city == "Washington, D.C.") {
      EXPECT_EQ(p.city_csv, "\"Washington, D.C.\"");
    }
    if (!p.city_latin1.empty()) ++non_ascii;
  }
  EXPECT_GE(non_ascii, 5);
}

}  // namespace
}  // namespace ecomstream::generator

#include "services/generator/shopper_model.h"

#include <deque>
#include <string>
#include <utility>

#include "common/csv.h"

namespace ecomstream::generator {
namespace {

using v1::EventType;

struct CountryCities {
  absl::string_view country;
  double weight;
  std::vector<absl::string_view> cities;
};

// Plausible traffic by country; cities include non-ASCII names (UTF-8) and one with a comma.
const std::vector<CountryCities>& CountryTable() {
  static const auto* kTable = new std::vector<CountryCities>{
      {"US", 30, {"New York", "Los Angeles", "Chicago", "Houston", "Washington, D.C."}},
      {"GB", 8, {"London", "Manchester", "Edinburgh"}},
      {"DE", 8, {"Berlin", "M\u00fcnchen", "Hamburg", "K\u00f6ln"}},
      {"IN", 7, {"Mumbai", "Bengaluru", "Delhi"}},
      {"FR", 6, {"Paris", "Lyon", "Marseille"}},
      {"BR", 5, {"S\u00e3o Paulo", "Rio de Janeiro"}},
      {"JP", 5, {"Tokyo", "Osaka"}},
      {"CA", 4, {"Toronto", "Montr\u00e9al", "Vancouver"}},
      {"AU", 3, {"Sydney", "Melbourne"}},
      {"ES", 3, {"Madrid", "Barcelona"}},
      {"IT", 3, {"Milano", "Roma"}},
      {"NL", 3, {"Amsterdam", "Rotterdam"}},
      {"PL", 3, {"Warszawa", "Krak\u00f3w"}},
      {"MX", 3, {"Ciudad de M\u00e9xico", "Guadalajara"}},
      {"KR", 3, {"Seoul", "Busan"}},
      {"SE", 2, {"Stockholm", "Malm\u00f6", "G\u00f6teborg"}},
      {"NG", 2, {"Lagos"}},
      {"ZA", 2, {"Johannesburg", "Cape Town"}},
  };
  return *kTable;
}

// UTF-8 to ISO-8859-1 for code points below U+0100; "" when the text is plain ASCII.
std::string Latin1(absl::string_view utf8) {
  std::string out;
  bool non_ascii = false;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size()) {
      out.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3F)));
      non_ascii = true;
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return non_ascii ? out : std::string();
}

std::vector<double> WeightsFor(const std::vector<absl::string_view>& names,
                               const std::vector<std::pair<absl::string_view, double>>& table) {
  std::vector<double> weights;
  for (absl::string_view name : names) {
    double w = 1;
    for (const auto& [n, v] : table) {
      if (n == name) w = v;
    }
    weights.push_back(w);
  }
  return weights;
}

// Campaigns by referrer: (probability a visit carries a campaign, the campaigns).
struct CampaignRule {
  absl::string_view referrer;
  double share;
  std::vector<absl::string_view> campaigns;
};
const std::vector<CampaignRule>& CampaignRules() {
  static const auto* kRules = new std::vector<CampaignRule>{
      {"google", 0.25, {"search_brand_2026", "search_generic_2026"}},
      {"email", 0.9, {"newsletter_weekly", "cart_reminder", "loyalty_premium"}},
      {"facebook", 0.6, {"spring_sale_2026", "retargeting_cart", "influencer_q2"}},
      {"instagram", 0.6, {"spring_sale_2026", "influencer_q2"}},
      {"tiktok", 0.6, {"influencer_q2", "creator_collab"}},
      {"youtube", 0.5, {"creator_collab", "unboxing_series"}},
      {"affiliate", 1.0, {"aff_coupons", "aff_reviews"}},
      {"partner", 1.0, {"partner_bundle"}},
  };
  return *kRules;
}

}  // namespace

const std::vector<SegmentProfile>& ShopperModel::Segments() {
  static const auto* kSegments = new std::vector<SegmentProfile>{
      // segment, session share, users, mean events, cart, checkout, wishlist, remove, search
      {v1::USER_SEGMENT_NEW, 0.30, 1, 30000, 6, 0.10, 0.20, 0.04, 0.15, 0.25},
      {v1::USER_SEGMENT_RETURNING, 0.35, 30001, 60000, 9, 0.15, 0.35, 0.06, 0.12, 0.20},
      {v1::USER_SEGMENT_PREMIUM, 0.15, 90001, 10000, 12, 0.22, 0.50, 0.08, 0.08, 0.15},
      {v1::USER_SEGMENT_INACTIVE, 0.08, 100001, 50000, 3, 0.04, 0.10, 0.02, 0.20, 0.30},
      {v1::USER_SEGMENT_AT_RISK, 0.12, 150001, 20000, 5, 0.07, 0.15, 0.05, 0.25, 0.25},
  };
  return *kSegments;
}

const std::vector<double>& ShopperModel::CategoryWeights() {
  static const auto* kWeights = [] {
    const std::vector<std::pair<absl::string_view, double>> table = {
        {"electronics", 12}, {"computers", 6}, {"phones", 8}, {"clothing", 16}, {"shoes", 7}, {"home_garden", 10},
        {"books", 9},        {"sports", 7},    {"beauty", 8}, {"toys", 6},      {"grocery", 8}, {"automotive", 3},
    };
    std::vector<absl::string_view> names;
    for (const domain::Category& c : domain::Categories()) names.push_back(c.name);
    return new std::vector<double>(WeightsFor(names, table));
  }();
  return *kWeights;
}

int64_t ShopperModel::PriceCents(const domain::Category& category, int64_t product_id) {
  uint64_t state = static_cast<uint64_t>(product_id);
  const uint64_t h = SplitMix64(&state);
  const int64_t min_units = category.min_price_cents / 100;
  const int64_t max_units = category.max_price_cents / 100;
  // Prices skew low inside the range (h squared), and end in .99.
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  int64_t units = min_units + static_cast<int64_t>(u * u * static_cast<double>(max_units - min_units));
  int64_t price = units * 100 + 99;
  if (price > category.max_price_cents) price = category.max_price_cents;
  if (price < category.min_price_cents) price = category.min_price_cents;
  return price;
}

const std::vector<Place>& ShopperModel::Places() {
  static const auto* kPlaces = [] {
    // The strings live as long as the process; the Places point into them.
    auto* storage = new std::deque<std::string>();
    auto* places = new std::vector<Place>();
    for (const CountryCities& c : CountryTable()) {
      for (absl::string_view city : c.cities) {
        storage->emplace_back();
        AppendCsvField(city, &storage->back());
        absl::string_view csv = storage->back();
        storage->push_back(Latin1(city));
        absl::string_view latin1 = storage->back();
        places->push_back(Place{c.country, city, csv, latin1});
      }
    }
    return places;
  }();
  return *kPlaces;
}

namespace {

std::vector<double> PlaceWeights() {
  std::vector<double> weights;
  for (const CountryCities& c : CountryTable()) {
    for (size_t i = 0; i < c.cities.size(); ++i) {
      // The first city of a country is the busiest.
      weights.push_back(c.weight * (i == 0 ? 2.0 : 1.0) / static_cast<double>(c.cities.size() + 1));
    }
  }
  return weights;
}

std::vector<double> SegmentShares() {
  std::vector<double> shares;
  for (const SegmentProfile& p : ShopperModel::Segments()) shares.push_back(p.session_share);
  return shares;
}

}  // namespace

ShopperModel::ShopperModel(uint64_t seed, Options options)
    : rng_(seed),
      options_(options),
      sessions_(static_cast<size_t>(options.concurrent_sessions > 0 ? options.concurrent_sessions : 1)),
      segment_choice_(SegmentShares()),
      category_choice_(CategoryWeights()),
      device_choice_(WeightsFor(domain::DeviceTypes(),
                                {{"desktop", 44}, {"mobile", 44}, {"tablet", 8}, {"smart_tv", 2}, {"console", 2}})),
      browser_choice_(WeightsFor(domain::Browsers(), {{"chrome", 46},
                                                      {"safari", 26},
                                                      {"firefox", 6},
                                                      {"edge", 8},
                                                      {"samsung_internet", 5},
                                                      {"opera", 2},
                                                      {"app", 7}})),
      place_choice_(PlaceWeights()),
      referrer_choice_(WeightsFor(domain::Referrers(), {{"direct", 30},
                                                        {"google", 28},
                                                        {"bing", 4},
                                                        {"facebook", 8},
                                                        {"instagram", 7},
                                                        {"tiktok", 5},
                                                        {"email", 8},
                                                        {"affiliate", 4},
                                                        {"youtube", 3},
                                                        {"partner", 3}})),
      quantity_choice_({0.72, 0.17, 0.06, 0.03, 0.02}) {}

const domain::Category* ShopperModel::PickCategory() {
  return &domain::Categories()[category_choice_.Pick(rng_)];
}

int64_t ShopperModel::PickProduct(const domain::Category& category) {
  // A few products are popular: index = count * u^2 favours the catalogue's first items.
  const double u = rng_.UniformDouble();
  const auto index = static_cast<int64_t>(u * u * category.product_count);
  return category.first_product_id + index;
}

void ShopperModel::Start(Session& s) {
  s = Session();
  s.active = true;
  s.id = UuidV4(rng_.Next(), rng_.Next());
  if (rng_.Chance(options_.anonymous_share)) {
    s.user_id = domain::kAnonymousUserId;
    s.remaining = rng_.Geometric(3);
  } else {
    s.profile = &Segments()[segment_choice_.Pick(rng_)];
    s.user_id = s.profile->first_user_id + static_cast<int64_t>(rng_.Uniform(s.profile->user_count));
    s.remaining = rng_.Geometric(s.profile->mean_events);
  }
  s.device_type = domain::DeviceTypes()[device_choice_.Pick(rng_)];
  s.browser = domain::Browsers()[browser_choice_.Pick(rng_)];
  s.place = &Places()[place_choice_.Pick(rng_)];
  s.referrer = domain::Referrers()[referrer_choice_.Pick(rng_)];
  for (const CampaignRule& rule : CampaignRules()) {
    if (rule.referrer == s.referrer && rng_.Chance(rule.share)) {
      s.campaign_id = rule.campaigns[rng_.Uniform(rule.campaigns.size())];
    }
  }
  s.interest = PickCategory();
}

void ShopperModel::Next(int64_t now_ms, ShopperEvent* event) {
  Session& s = sessions_[rng_.Uniform(sessions_.size())];
  if (!s.active) Start(s);
  *event = ShopperEvent();
  event->event_id = UuidV7(now_ms, rng_.Next(), rng_.Next());
  event->session_id = s.id;
  event->user_id = s.user_id;
  event->event_time_ms = now_ms;
  event->segment = s.profile == nullptr ? v1::USER_SEGMENT_UNSPECIFIED : s.profile->segment;
  event->device_type = s.device_type;
  event->browser = s.browser;
  event->place = s.place;
  event->referrer = s.referrer;
  event->campaign_id = s.campaign_id;
  Step(s, event);
}

void ShopperModel::Step(Session& s, ShopperEvent* event) {
  if (s.checking_out) {
    // One purchase per cart item, last item first.
    EmitCartItem(s, s.cart_size - 1, v1::EVENT_TYPE_PURCHASE, event);
    if (--s.cart_size == 0) {
      s.checking_out = false;
      if (s.remaining <= 0 || rng_.Chance(0.6)) s.active = false;
    }
    return;
  }
  --s.remaining;
  const bool first = s.viewed_product == 0 && s.cart_size == 0;
  const SegmentProfile* p = s.profile;
  if (p == nullptr) {
    if (first && rng_.Chance(0.3)) {
      EmitSearch(s, event);
    } else if (rng_.Chance(0.2)) {
      EmitSearch(s, event);
    } else {
      EmitView(s, event);
    }
  } else if (s.viewed_product != 0 && s.cart_size < kMaxCart && rng_.Chance(p->add_to_cart)) {
    const domain::Category* category = s.interest;
    s.cart[s.cart_size] = CartItem{s.viewed_product, category, PriceCents(*category, s.viewed_product),
                                   static_cast<int32_t>(1 + quantity_choice_.Pick(rng_))};
    ++s.cart_size;
    EmitCartItem(s, s.cart_size - 1, v1::EVENT_TYPE_ADD_TO_CART, event);
    s.viewed_product = 0;
  } else if (s.viewed_product != 0 && rng_.Chance(p->wishlist)) {
    event->event_type = v1::EVENT_TYPE_WISHLIST;
    event->product_id = s.viewed_product;
    event->category = s.interest;
    event->price_cents = PriceCents(*s.interest, s.viewed_product);
    s.viewed_product = 0;
  } else if (s.cart_size > 0 && rng_.Chance(p->checkout)) {
    s.checking_out = true;
    EmitCartItem(s, s.cart_size - 1, v1::EVENT_TYPE_PURCHASE, event);
    if (--s.cart_size == 0) s.checking_out = false;
  } else if (s.cart_size > 0 && rng_.Chance(p->remove_from_cart)) {
    const int index = static_cast<int>(rng_.Uniform(s.cart_size));
    EmitCartItem(s, index, v1::EVENT_TYPE_REMOVE_FROM_CART, event);
    s.cart[index] = s.cart[s.cart_size - 1];
    --s.cart_size;
  } else if (rng_.Chance(first ? p->search * 1.5 : p->search)) {
    EmitSearch(s, event);
  } else {
    EmitView(s, event);
  }
  if (s.remaining <= 0 && !s.checking_out) {
    // Leaving: some shoppers check out what is in the cart first, the rest abandon it.
    if (p != nullptr && s.cart_size > 0 && rng_.Chance(p->checkout)) {
      s.checking_out = true;
    } else {
      s.active = false;
    }
  }
}

void ShopperModel::EmitSearch(Session& s, ShopperEvent* event) {
  s.interest = PickCategory();
  s.viewed_product = 0;
  event->event_type = v1::EVENT_TYPE_SEARCH;
  event->category = s.interest;
}

void ShopperModel::EmitView(Session& s, ShopperEvent* event) {
  if (rng_.Chance(0.25)) s.interest = PickCategory();
  s.viewed_product = PickProduct(*s.interest);
  event->event_type = v1::EVENT_TYPE_VIEW;
  event->product_id = s.viewed_product;
  event->category = s.interest;
  event->price_cents = PriceCents(*s.interest, s.viewed_product);
}

void ShopperModel::EmitCartItem(Session& s, int index, v1::EventType type, ShopperEvent* event) {
  const CartItem& item = s.cart[index];
  event->event_type = type;
  event->product_id = item.product_id;
  event->category = item.category;
  event->price_cents = item.price_cents;
  event->quantity = item.quantity;
}

}  // namespace ecomstream::generator

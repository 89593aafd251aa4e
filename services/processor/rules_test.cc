#include "services/processor/rules.h"

#include <string>
#include <utility>
#include <vector>

#include "common/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::TempDir;
using ::testing::HasSubstr;

constexpr int64_t kMinute = 60LL * 1000000;
constexpr RulesWindows kFlagWindows{60 * kMinute, 30 * kMinute};

std::shared_ptr<const Rules> Parse(absl::string_view json) {
  auto rules = Rules::FromJson(json, "r.json", kFlagWindows);
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? *rules : Rules::Builtin();
}

TEST(RulesTest, BuiltinRulesAreTheDomainCataloguesWithTheFlagWindows) {
  auto rules = Rules::Builtin(kFlagWindows);
  EXPECT_EQ(rules->version(), "builtin");
  EXPECT_EQ(rules->categories().size(), domain::Categories().size());
  ASSERT_NE(rules->FindCategory("Home & Garden"), nullptr);
  EXPECT_EQ(rules->FindCategory("Home & Garden")->name, "home_garden");
  EXPECT_EQ(rules->FindCategory("spaceships"), nullptr);
  EXPECT_EQ(rules->ParseEventType("Add To Cart"), v1::EVENT_TYPE_ADD_TO_CART);
  EXPECT_EQ(rules->ParseEventType("clickthrough"), std::nullopt);
  EXPECT_EQ(rules->ParseUserSegment("vip"), v1::USER_SEGMENT_PREMIUM);
  EXPECT_TRUE(rules->IsCountryCode("US"));
  EXPECT_FALSE(rules->IsCountryCode("XK"));
  EXPECT_EQ(rules->late_after_us(), 60 * kMinute);
  EXPECT_EQ(rules->max_future_us(), 30 * kMinute);
  ASSERT_NE(rules->CategoryOfProduct(400001), nullptr);
  EXPECT_EQ(rules->CategoryOfProduct(400001)->name, "books");
}

TEST(RulesTest, AFileAddsCategoriesCountriesSynonymsAndWindowsToTheBuiltinOnes) {
  auto rules = Parse(R"json({
    "version": "2024-05-01",
    "categories": [{"name": "spaceships", "minPrice": "1000.00", "maxPrice": "99999.99",
                    "firstProductId": "950000", "productCount": 10}],
    "countries": ["xk"],
    "eventTypeSynonyms": {"click through": "view"},
    "segmentSynonyms": {"Gold": "premium"},
    "lateAfter": "90m",
    "maxFuture": "2h"
  })json");
  EXPECT_EQ(rules->version(), "2024-05-01");
  EXPECT_EQ(rules->categories().size(), domain::Categories().size() + 1);
  ASSERT_NE(rules->FindCategory(" Spaceships "), nullptr);
  EXPECT_EQ(rules->FindCategory("spaceships")->min_price_cents, 100000);
  EXPECT_EQ(rules->FindCategory("spaceships")->max_price_cents, 9999999);
  EXPECT_EQ(rules->CategoryOfProduct(950009)->name, "spaceships");
  EXPECT_EQ(rules->CategoryOfProduct(950010), nullptr);
  EXPECT_NE(rules->FindCategory("books"), nullptr);
  EXPECT_EQ(rules->ParseEventType("Click-Through"), v1::EVENT_TYPE_VIEW);
  EXPECT_EQ(rules->ParseEventType("buy"), v1::EVENT_TYPE_PURCHASE);
  EXPECT_EQ(rules->ParseUserSegment("GOLD"), v1::USER_SEGMENT_PREMIUM);
  EXPECT_EQ(rules->ParseUserSegment("vip"), v1::USER_SEGMENT_PREMIUM);
  EXPECT_TRUE(rules->IsCountryCode("XK"));
  EXPECT_TRUE(rules->IsCountryCode("US"));
  EXPECT_EQ(rules->late_after_us(), 90 * kMinute);
  EXPECT_EQ(rules->max_future_us(), 120 * kMinute);
}

TEST(RulesTest, ReplaceDefaultsReplacesEachListTheFileGivesAndKeepsTheOthers) {
  auto rules = Parse(R"json({
    "replaceDefaults": true,
    "categories": [{"name": "books", "minPrice": "1.00", "maxPrice": "50.00"}],
    "eventTypeSynonyms": {"tap": "view"}
  })json");
  ASSERT_EQ(rules->categories().size(), 1u);
  EXPECT_EQ(rules->FindCategory("electronics"), nullptr);
  EXPECT_EQ(rules->FindCategory("books")->max_price_cents, 5000);
  EXPECT_EQ(rules->CategoryOfProduct(400001), nullptr) << "the replacing entry has no product ids";
  EXPECT_EQ(rules->ParseEventType("tap"), v1::EVENT_TYPE_VIEW);
  EXPECT_EQ(rules->ParseEventType("purchase"), v1::EVENT_TYPE_PURCHASE) << "stored spellings always stay";
  EXPECT_EQ(rules->ParseEventType("buy"), std::nullopt) << "built-in synonyms were replaced";
  EXPECT_TRUE(rules->IsCountryCode("US")) << "no countries given: the built-in list stays";
  EXPECT_EQ(rules->ParseUserSegment("vip"), v1::USER_SEGMENT_PREMIUM);
}

TEST(RulesTest, AFileWithoutVersionIsNamedByItsContent) {
  auto a = Parse(R"({"countries": ["XK"]})");
  auto b = Parse(R"({"countries": ["XK"] })");
  EXPECT_THAT(a->version(), ::testing::MatchesRegex("sha256:[0-9a-f]{12}"));
  EXPECT_NE(a->version(), b->version());
}

TEST(RulesTest, HostileFilesAreRefusedWithOneLineNamingTheEntry) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "rules file r.json: not a valid Rules message (protobuf JSON)"},
      {R"({"categoris": []})", "rules file r.json: not a valid Rules message (protobuf JSON): "},
      {R"({"categories": [{"name": "Garden Tools", "minPrice": "1", "maxPrice": "2"}]})",
       "rules file r.json: categories[0] (\"Garden Tools\"): name must be 1 to 32 characters of a-z, 0-9 and '_'"},
      {R"({"categories": [{"name": "a", "minPrice": "1", "maxPrice": "2"}, {"name": "toys", "minPrice": "5", "maxPrice": "2"}]})",
       "rules file r.json: categories[1] (\"toys\"): min_price 5 is above max_price 2"},
      {R"({"categories": [{"name": "a", "minPrice": "cheap", "maxPrice": "2"}]})",
       "rules file r.json: categories[0] (\"a\"): min_price \"cheap\" is not a price in 0.00..100000.00"},
      {R"({"categories": [{"name": "a", "minPrice": "1", "maxPrice": "100000.01"}]})",
       "rules file r.json: categories[0] (\"a\"): max_price \"100000.01\" is not a price in 0.00..100000.00"},
      {R"({"categories": [{"name": "a", "minPrice": "1", "maxPrice": "2"}, {"name": "a", "minPrice": "1", "maxPrice": "2"}]})",
       "rules file r.json: categories[1] (\"a\"): listed twice"},
      {R"({"categories": [{"name": "rockets", "minPrice": "1", "maxPrice": "2", "firstProductId": "400100", "productCount": 5}]})",
       "rules file r.json: category \"rockets\": product ids 400100..400104 overlap those of \"books\""},
      {R"({"categories": [{"name": "a", "minPrice": "1", "maxPrice": "2", "firstProductId": "-4", "productCount": 5}]})",
       "rules file r.json: categories[0] (\"a\"): first_product_id (-4) and product_count (5) must both be positive, or both 0"},
      {R"({"countries": ["USA"]})", "rules file r.json: countries[0] \"USA\" is not a two-letter ISO 3166-1 alpha-2 code"},
      {R"({"eventTypeSynonyms": {"poke": "like"}})",
       "rules file r.json: event_type_synonyms[\"poke\"]: \"like\" is not an event type (view, search, add_to_cart, "
       "remove_from_cart, wishlist, purchase)"},
      {R"({"eventTypeSynonyms": {" - ": "view"}})",
       "rules file r.json: event_type_synonyms[\" - \"]: spelling must be 1 to 64 characters"},
      {R"({"segmentSynonyms": {"gold": "platinum"}})",
       "rules file r.json: segment_synonyms[\"gold\"]: \"platinum\" is not a user segment (new, returning, premium, "
       "inactive, at_risk)"},
      {R"({"lateAfter": "soon"})",
       "rules file r.json: late_after \"soon\" is not a duration between 1us and 3650 days (\"90m\", \"2h\")"},
      {R"({"maxFuture": "-1h"})",
       "rules file r.json: max_future \"-1h\" is not a duration between 1us and 3650 days (\"90m\", \"2h\")"},
      {R"({"version": "v 1\u0007"})",
       "rules file r.json: version \"v 1\\x07\" must be at most 64 characters of letters, digits and . _ - : +"},
  };
  for (const auto& [json, message] : cases) {
    auto rules = Rules::FromJson(json, "r.json", kFlagWindows);
    ASSERT_FALSE(rules.ok()) << json;
    EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(std::string(rules.status().message()), ::testing::StartsWith(message)) << json;
    EXPECT_EQ(std::string(rules.status().message()).find('\n'), std::string::npos) << json;
  }
}

TEST(RulesTest, LoadFileNamesAMissingOrOversizedFile) {
  TempDir dir;
  auto missing = Rules::LoadFile(dir.path() + "/none.json", kFlagWindows);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()),
              ::testing::StartsWith("rules file " + dir.path() + "/none.json cannot be read"));
  ASSERT_TRUE(WriteFileAtomically(dir.path(), "big.json", std::string(kMaxRulesFileBytes + 1, ' ')).ok());
  auto big = Rules::LoadFile(dir.path() + "/big.json", kFlagWindows);
  EXPECT_EQ(big.status().message(), "rules file " + dir.path() + "/big.json is larger than 1048576 bytes");
}

TEST(RulesTest, TheExampleRulesFileUnderDeployLoads) {
  auto rules = Rules::LoadFile(std::string(ECOMSTREAM_SOURCE_DIR) + "/deploy/rules/rules.json", kFlagWindows);
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->version(), "2026-12-01");
  EXPECT_NE((*rules)->FindCategory("pet_supplies"), nullptr);
  EXPECT_EQ((*rules)->ParseUserSegment("gold"), v1::USER_SEGMENT_PREMIUM);
  EXPECT_EQ((*rules)->late_after_us(), 120 * kMinute);
}

TEST(RulesStoreTest, ReloadSwapsTheRulesAndABadFileKeepsTheOnesInForce) {
  TempDir dir;
  metrics::Registry registry;
  RulesStore store(Rules::Builtin(), &registry);
  ASSERT_TRUE(WriteFileAtomically(dir.path(), "r.json", R"({"version": "v2", "countries": ["XK"]})").ok());
  ASSERT_TRUE(store.Reload(dir.path() + "/r.json", kFlagWindows).ok());
  EXPECT_EQ(store.Get()->version(), "v2");
  EXPECT_TRUE(store.Get()->IsCountryCode("XK"));

  ASSERT_TRUE(WriteFileAtomically(dir.path(), "r.json", R"({"version": "v3", "countries": ["XKX"]})").ok());
  const absl::Status bad = store.Reload(dir.path() + "/r.json", kFlagWindows);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("countries[0] \"XKX\""));
  EXPECT_EQ(store.Get()->version(), "v2");

  const std::string text = registry.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_processor_rules_info{version=\"builtin\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_processor_rules_info{version=\"v2\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_processor_rules_reloads_total{result=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_processor_rules_reloads_total{result=\"error\"} 1\n"));
}

}  // namespace
}  // namespace ecomstream::processor

#include "common/domain.h"

#include "gtest/gtest.h"

namespace ecomstream::domain {
namespace {

TEST(DomainTest, EventTypeSynonymsAndCaseAreCleaned) {
  EXPECT_EQ(ParseEventType("Add To Cart"), v1::EVENT_TYPE_ADD_TO_CART);
  EXPECT_EQ(ParseEventType("add-to-cart"), v1::EVENT_TYPE_ADD_TO_CART);
  EXPECT_EQ(ParseEventType("  PURCHASE "), v1::EVENT_TYPE_PURCHASE);
  EXPECT_EQ(ParseEventType("page_view"), v1::EVENT_TYPE_VIEW);
  EXPECT_EQ(ParseEventType("teleport"), std::nullopt);
  EXPECT_EQ(ParseEventType(""), std::nullopt);
  EXPECT_EQ(EventTypeName(v1::EVENT_TYPE_REMOVE_FROM_CART), "remove_from_cart");
}

TEST(DomainTest, AnonymousMayOnlyViewOrSearch) {
  EXPECT_TRUE(AllowedForAnonymous(v1::EVENT_TYPE_VIEW));
  EXPECT_TRUE(AllowedForAnonymous(v1::EVENT_TYPE_SEARCH));
  EXPECT_FALSE(AllowedForAnonymous(v1::EVENT_TYPE_PURCHASE));
  EXPECT_FALSE(IsProductEvent(v1::EVENT_TYPE_SEARCH));
  EXPECT_TRUE(IsProductEvent(v1::EVENT_TYPE_WISHLIST));
}

TEST(DomainTest, AtLeastTenCategoriesWithSaneDisjointCatalogues) {
  ASSERT_GE(Categories().size(), 10u);
  for (const Category& c : Categories()) {
    EXPECT_LT(c.min_price_cents, c.max_price_cents) << c.name;
    EXPECT_LE(c.max_price_cents, kMaxPriceCents) << c.name;
    EXPECT_EQ(FindCategory(c.name), &c);
    EXPECT_GT(c.product_count, 0) << c.name;
  }
  // Product ids [first, first + count) of two categories never overlap.
  const std::vector<Category>& categories = Categories();
  for (size_t i = 0; i < categories.size(); ++i) {
    for (size_t j = i + 1; j < categories.size(); ++j) {
      const Category& a = categories[i];
      const Category& b = categories[j];
      EXPECT_TRUE(a.first_product_id + a.product_count <= b.first_product_id ||
                  b.first_product_id + b.product_count <= a.first_product_id)
          << a.name << " and " << b.name << " share product ids";
    }
  }
  EXPECT_EQ(FindCategory("Home & Garden")->name, "home_garden");
  EXPECT_EQ(FindCategory("weapons"), nullptr);
}

TEST(DomainTest, CountryCodesAreIsoAlpha2) {
  EXPECT_TRUE(IsCountryCode("US"));
  EXPECT_TRUE(IsCountryCode("DE"));
  EXPECT_FALSE(IsCountryCode("XX"));
  EXPECT_FALSE(IsCountryCode("us"));
  EXPECT_FALSE(IsCountryCode("USA"));
}

TEST(DomainTest, ReasonNamesAreLowerSnakeWithoutPrefix) {
  EXPECT_EQ(RejectReasonName(v1::REJECT_REASON_WRONG_COLUMN_COUNT), "wrong_column_count");
  EXPECT_EQ(RejectReasonName(v1::REJECT_REASON_ANONYMOUS_ACTION), "anonymous_action");
}

TEST(DomainTest, SegmentsParseTolerantly) {
  EXPECT_EQ(ParseUserSegment("At-Risk"), v1::USER_SEGMENT_AT_RISK);
  EXPECT_EQ(ParseUserSegment("premium"), v1::USER_SEGMENT_PREMIUM);
  EXPECT_EQ(ParseUserSegment("gold"), std::nullopt);
}

}  // namespace
}  // namespace ecomstream::domain

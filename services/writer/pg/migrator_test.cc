#include "services/writer/pg/migrator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>
#include "absl/strings/str_cat.h"

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;

TEST(MigrationsTest, EmbedsEverySqlFileInVersionOrder) {
  auto migrations = EmbeddedMigrations();
  ASSERT_TRUE(migrations.ok()) << migrations.status();
  // Versions ascend; numbers may have gaps (ranges are reserved per topic).
  std::vector<std::string> names;
  for (size_t i = 0; i < migrations->size(); ++i) {
    if (i > 0) {
      EXPECT_GT((*migrations)[i].version, (*migrations)[i - 1].version) << (*migrations)[i].name;
    }
    EXPECT_EQ((*migrations)[i].name.substr(0, 4), absl::StrCat(absl::Dec((*migrations)[i].version, absl::kZeroPad3), "_"));
    EXPECT_FALSE((*migrations)[i].sql.empty());
    EXPECT_EQ((*migrations)[i].checksum.size(), 64u);
    names.push_back((*migrations)[i].name);
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"001_core.sql", "002_event_stats.sql", "003_views.sql", "004_roles.sql",
                                              "005_writer_grants.sql", "006_writer_event_stats.sql",
                                              "010_segment_users.sql", "011_health_retention.sql", "020_redrive.sql", "021_quality_views_by_source.sql",
                                              "022_event_sources.sql", "023_cheaper_aggregate_upkeep.sql",
                                              "024_generic_aggregate_plans.sql"}));
  EXPECT_EQ(migrations->front().version, 1);
  EXPECT_EQ(migrations->back().name, "024_generic_aggregate_plans.sql");
  EXPECT_EQ((*migrations)[0].name, "001_core.sql");
  EXPECT_THAT((*migrations)[0].sql, HasSubstr("CREATE TABLE IF NOT EXISTS ecomstream.events"));
}

TEST(MigrationsTest, RejectsBadNamesAndDuplicateVersions) {
  auto bad = ParseMigrations({{"core.sql", "SELECT 1"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'core.sql' is not named NNN_description.sql"));
  EXPECT_FALSE(ParseMigrations({{"000_zero.sql", "SELECT 1"}}).ok());
  EXPECT_FALSE(ParseMigrations({{"01a_x.sql", "SELECT 1"}}).ok());
  EXPECT_FALSE(ParseMigrations({{"001_x.txt", "SELECT 1"}}).ok());
  auto twice = ParseMigrations({{"002_a.sql", "SELECT 1"}, {"2_b.sql", "SELECT 2"}});
  EXPECT_THAT(std::string(twice.status().message()), HasSubstr("share version 2"));
}

TEST(MigrationsTest, SortsByVersionNotByName) {
  auto migrations = ParseMigrations({{"10_late.sql", "SELECT 10"}, {"9_early.sql", "SELECT 9"}});
  ASSERT_TRUE(migrations.ok());
  EXPECT_EQ((*migrations)[0].version, 9);
  EXPECT_EQ((*migrations)[1].version, 10);
}

}  // namespace
}  // namespace ecomstream::writer

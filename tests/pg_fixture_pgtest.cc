#include "tests/pg_fixture.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ecomstream::testing {
namespace {

TEST(PgFixtureTest, EachCreatedDatabaseIsSeparateAndQueryable) {
  PgCluster& pg = SharedPgCluster();
  auto a = pg.CreateDatabase("fixture");
  auto b = pg.CreateDatabase("fixture");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(*a, *b);
  const std::string db_a = a->substr(a->rfind('=') + 1);
  const std::string db_b = b->substr(b->rfind('=') + 1);
  ASSERT_TRUE(pg.Psql(db_a, "CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (7)").ok());
  auto in_a = pg.Psql(db_a, "SELECT x FROM only_in_a");
  ASSERT_TRUE(in_a.ok()) << in_a.status();
  EXPECT_EQ(*in_a, "7\n");
  auto in_b = pg.Psql(db_b, "SELECT to_regclass('only_in_a') IS NULL");
  ASSERT_TRUE(in_b.ok()) << in_b.status();
  EXPECT_EQ(*in_b, "t\n") << "a table of one database is visible in the other";
  auto version = pg.Psql("postgres", "SHOW server_version_num");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_GE(std::stoi(*version), 150000);
}

TEST(PgFixtureTest, DataSurvivesStopAndRestart) {
  PgCluster& pg = SharedPgCluster();
  auto dsn = pg.CreateDatabase("restart");
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  std::string db = dsn->substr(dsn->rfind('=') + 1);
  ASSERT_TRUE(pg.Psql(db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3)").ok());
  ASSERT_TRUE(pg.Stop().ok());
  EXPECT_FALSE(pg.Psql(db, "SELECT 1").ok());
  ASSERT_TRUE(pg.Restart().ok());
  auto count = pg.Psql(db, "SELECT count(*) FROM t");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, "3\n");
}

TEST(PgFixtureTest, MalformedSqlIsAnErrorWithTheServerMessage) {
  auto result = SharedPgCluster().Psql("postgres", "SELEC 1");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("syntax error"), absl::string_view::npos) << result.status();
}

}  // namespace
}  // namespace ecomstream::testing

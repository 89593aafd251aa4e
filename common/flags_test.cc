#include "common/flags.h"

#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, flags_test_batch_rows, 100, "test flag");
ABSL_FLAG(std::string, flags_test_dsn, "", "test flag");

namespace ecomstream {
namespace {

std::map<std::string, std::string>* g_env = nullptr;
const char* FakeLookup(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

TEST(FlagsTest, EnvVarNameIsUpperCasedWithPrefix) {
  EXPECT_EQ(EnvVarForFlag("pg_dsn"), "ECOMSTREAM_PG_DSN");
}

TEST(FlagsTest, EnvironmentVariablesSetFlags) {
  std::map<std::string, std::string> env = {{"ECOMSTREAM_FLAGS_TEST_BATCH_ROWS", "250"},
                                            {"ECOMSTREAM_FLAGS_TEST_DSN", "host=/tmp port=5432"}};
  g_env = &env;
  ASSERT_TRUE(ApplyEnvironmentOverrides(&FakeLookup).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_test_batch_rows), 250);
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_test_dsn), "host=/tmp port=5432");
}

TEST(FlagsTest, MalformedEnvironmentValueNamesTheVariable) {
  std::map<std::string, std::string> env = {{"ECOMSTREAM_FLAGS_TEST_BATCH_ROWS", "12x; rm -rf /"}};
  g_env = &env;
  absl::Status status = ApplyEnvironmentOverrides(&FakeLookup);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("ECOMSTREAM_FLAGS_TEST_BATCH_ROWS"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace ecomstream

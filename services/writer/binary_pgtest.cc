// The ecomstream-writer binary: configuration errors, --migrate_only, serving, --health_check
// and SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/writer/pg/migrator.h"
#include "services/writer/pg/testing/writer_testing.h"
#include "tests/pg_fixture.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::writer {
namespace {

using ::ecomstream::testing::FreePort;
using ::ecomstream::testing::RunCommand;
using ::ecomstream::testing::SharedPgCluster;
using ::testing::HasSubstr;

std::string Writer() { return ::ecomstream::testing::BinPath("ecomstream-writer"); }

// Runs the writer to completion with extra environment; returns its exit code and output.
int RunWriter(std::vector<std::string> args, std::string* output, std::vector<std::string> env = {}) {
  std::vector<std::string> argv = {"env"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(Writer());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, output);
}

void ExpectConfigError(std::vector<std::string> args, const std::string& message, std::vector<std::string> env = {}) {
  std::string output;
  EXPECT_EQ(RunWriter(args, &output, env), 2) << output;
  const std::string line(absl::StripTrailingAsciiWhitespace(output));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(line, '\n')).size(), 1u) << "not one line: " << output;
  EXPECT_THAT(line, HasSubstr(message));
}

TEST(WriterBinaryTest, BadConfigurationExitsTwoWithOneClearLine) {
  ExpectConfigError({"--listen_address=0.0.0.0:50051"}, "is not a loopback address");
  ExpectConfigError({"--listen_address=nonsense"}, "--listen_address: address 'nonsense' is not host:port");
  ExpectConfigError({"--max_message_bytes=12"}, "--max_message_bytes=12 is out of range");
  ExpectConfigError({"--tls_cert=/nonexistent.pem", "--tls_key=/nonexistent.key"}, "--tls_cert=/nonexistent.pem");
  ExpectConfigError({"--pg_password_file=/nonexistent/secret"}, "--pg_password_file=/nonexistent/secret: cannot read");
  ExpectConfigError({}, "ECOMSTREAM_LEASE_SECONDS='soon' is not a valid --lease_seconds",
                    {"ECOMSTREAM_LEASE_SECONDS=soon"});
  ExpectConfigError({}, "is not a loopback address", {"ECOMSTREAM_LISTEN_ADDRESS=10.0.0.1:1"});
  ExpectConfigError({"--commit_lanes=0"}, "--commit_lanes=0 is out of range [1, 16]");
  ExpectConfigError({"--commit_lanes=-3"}, "--commit_lanes=-3 is out of range [1, 16]");
  ExpectConfigError({"--commit_lanes=99999999999"},
                    "--commit_lanes='99999999999' is not valid: Illegal value '99999999999' specified for flag "
                    "'commit_lanes'");
  ExpectConfigError({}, "ECOMSTREAM_COMMIT_LANES='two' is not a valid --commit_lanes", {"ECOMSTREAM_COMMIT_LANES=two"});
}

TEST(WriterBinaryTest, MigrateOnlyAppliesTheEmbeddedMigrationsAndExits) {
  auto dsn = SharedPgCluster().CreateDatabase("binary_migrate");
  ASSERT_TRUE(dsn.ok());
  std::string output;
  EXPECT_EQ(RunWriter({"--pg_dsn=" + *dsn, "--migrate_only"}, &output), 0) << output;
  auto embedded = EmbeddedMigrations();
  ASSERT_TRUE(embedded.ok());
  EXPECT_THAT(output, HasSubstr(absl::StrCat("Schema is current version=", embedded->back().version,
                                             " applied=", embedded->size())));
  EXPECT_EQ(testing::Sql(*dsn, "SELECT count(*) FROM ecomstream.schema_migrations"), absl::StrCat(embedded->size()));
  // From the environment, a second time: nothing left to apply.
  EXPECT_EQ(RunWriter({"--migrate_only"}, &output, {"ECOMSTREAM_PG_DSN=" + *dsn}), 0) << output;
  EXPECT_THAT(output, HasSubstr("applied=0"));
}

TEST(WriterBinaryTest, MigrateOnlyAgainstNoDatabaseFailsWithExitOne) {
  std::string output;
  EXPECT_EQ(RunWriter({"--pg_dsn=host=127.0.0.1 port=1 dbname=x connect_timeout=1", "--migrate_only",
                       "--migrate_timeout_seconds=1"},
                      &output),
            1)
      << output;
}

TEST(WriterBinaryTest, ServesUntilSigtermThenExitsZeroAndHealthCheckFollows) {
  auto dsn = SharedPgCluster().CreateDatabase("binary_serve");
  ASSERT_TRUE(dsn.ok());
  const std::string address = absl::StrCat("127.0.0.1:", FreePort());
  const ::ecomstream::testing::TempDir dir("writer-binary");
  const std::string log_path = dir.File("writer.log");
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    const std::string writer = Writer();
    const std::string dsn_flag = "--pg_dsn=" + *dsn;
    const std::string listen_flag = "--listen_address=" + address;
    ::execl(writer.c_str(), writer.c_str(), dsn_flag.c_str(), listen_flag.c_str(), "--migrate", "--drain_seconds=5",
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  std::string output;
  bool serving = false;
  for (int i = 0; i < 100 && !serving; ++i) {
    serving = RunWriter({"--health_check=" + address}, &output) == 0;
    if (!serving) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(serving) << output;
  EXPECT_THAT(output, HasSubstr("SERVING"));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  RunCommand({"cat", log_path}, &output);
  EXPECT_THAT(output, HasSubstr("Writer stopped drained=true"));
  EXPECT_EQ(RunWriter({"--health_check=" + address}, &output), 1);
  EXPECT_THAT(output, HasSubstr("no health answer from " + address));
}

}  // namespace
}  // namespace ecomstream::writer

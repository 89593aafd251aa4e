// The bootstrap as the binaries run it: service_test_service (service_test_main.cc) is started as
// a child process with real flags, environment, signals and a status server on 127.0.0.1:0.
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/status_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/testing/files.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace ecomstream {
namespace {

using ::ecomstream::testing::Process;
using ::ecomstream::testing::ReadFileToString;
using ::ecomstream::testing::RunCommand;
using ::ecomstream::testing::TempDir;
using ::ecomstream::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kWait = absl::Seconds(20);

// The test service, built next to this test binary.
std::string TestService() {
  char self[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir(self, n > 0 ? n : 0);
  return dir.substr(0, dir.rfind('/') + 1) + "service_test_service";
}

// Runs the test service to exit with `args` and extra `env` (KEY=VALUE); its stdout+stderr in *output.
int RunService(const std::vector<std::string>& args, std::string* output, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {"env", "OTEL_SDK_DISABLED=true"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.push_back(TestService());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, output);
}

std::vector<std::string> Lines(const std::string& text) { return absl::StrSplit(text, '\n', absl::SkipEmpty()); }

TEST(ServiceTest, ServesMetricsAndReadinessOnAnEphemeralPortReloadsOnSighupAndExitsZeroOnSigterm) {
  TempDir dir("service");
  const std::string log = dir.File("service.log");
  auto service = Process::Start({TestService(), "--metrics_address=127.0.0.1:0"}, log);
  ASSERT_TRUE(service.ok()) << service.status();
  int port = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const std::string text = ReadFileToString(log).value_or("");
        const size_t at = text.find("Started port=");
        if (at == std::string::npos) return false;
        const std::string rest = text.substr(at + 13);
        return absl::SimpleAtoi(rest.substr(0, rest.find_first_not_of("0123456789")), &port);
      },
      kWait, absl::Milliseconds(10)))
      << (*service)->LogTail();
  ASSERT_GT(port, 0);
  const std::string address = absl::StrCat("127.0.0.1:", port);

  httplib::Client client("127.0.0.1", port);
  const auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("ecomstream_build_info{service=\"bootstrap_test\""));
  EXPECT_THAT(metrics->body, HasSubstr("ecomstream_spans_exported_total "));
  std::string output;
  EXPECT_EQ(RunService({"--health_check=" + address}, &output), 0) << output;
  EXPECT_EQ(output, "ready\n");

  (*service)->Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil([&] { return ReadFileToString(log).value_or("").find("Reloaded") != std::string::npos; },
                        kWait, absl::Milliseconds(10)))
      << (*service)->LogTail();
  EXPECT_TRUE((*service)->Running()) << "SIGHUP is handled, it does not end the service";

  (*service)->Signal(SIGTERM);
  absl::StatusOr<int> code = (*service)->Wait(kWait);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << (*service)->LogTail();
  EXPECT_EQ(RunService({"--health_check=" + address}, &output), 1) << "nothing answers after the exit";
  ASSERT_EQ(Lines(output).size(), 1u) << output;
  EXPECT_THAT(output, StartsWith("ecomstream-bootstrap_test: "));
}

TEST(ServiceTest, AHostileEnvironmentValueExitsTwoWithOneLineNamingTheVariable) {
  std::string output;
  EXPECT_EQ(RunService({}, &output, {"ECOMSTREAM_COUNT=7\nrm -rf /"}), 2) << output;
  ASSERT_EQ(Lines(output).size(), 1u) << output;
  EXPECT_THAT(output, StartsWith("service_test_service: Environment variable ECOMSTREAM_COUNT='7\\nrm -rf /' "
                                 "is not a valid --count: "));
}

TEST(ServiceTest, AMalformedCommandLineValueExitsTwoWithOneLineNamingTheFlag) {
  std::string output;
  EXPECT_EQ(RunService({"--count=abc"}, &output), 2) << output;
  EXPECT_THAT(output, StartsWith("service_test_service: Command-line flag --count='abc' is not valid: "));
  ASSERT_EQ(Lines(output).size(), 1u) << output;

  EXPECT_EQ(RunService({"--count", "7\nrm -rf /"}, &output), 2) << output;
  EXPECT_THAT(output, StartsWith("service_test_service: Command-line flag --count='7\\nrm -rf /' is not valid: "));
  ASSERT_EQ(Lines(output).size(), 1u) << output;

  EXPECT_EQ(RunService({"--count"}, &output), 2) << output;
  EXPECT_EQ(output, "service_test_service: Command-line flag --count has no value\n");
}

TEST(ServiceTest, AnUnknownCommandLineFlagExitsTwoUnlessUndefokAllowsIt) {
  std::string output;
  EXPECT_EQ(RunService({"--cuont=3"}, &output), 2) << output;
  EXPECT_EQ(output, "service_test_service: Unknown command-line flag --cuont\n");
  // A bare "--" ends the flags: what follows is positional, not checked.
  EXPECT_EQ(RunService({"--bad_setting=stop here", "--", "--cuont=abc"}, &output), 2) << output;
  EXPECT_EQ(output, "ecomstream-bootstrap_test: stop here\n");
  // absl's own flags stay absl's: --helpfull lists this repository's flags.
  RunService({"--helpfull"}, &output);
  EXPECT_THAT(output, HasSubstr("--count (An integer setting, for malformed values.)")) << output;
  // --undefok names flags absl may ignore: the check leaves unknown names to absl then.
  EXPECT_EQ(RunService({"--undefok=cuont", "--cuont=3", "--bad_setting=stop here"}, &output), 2) << output;
  EXPECT_EQ(output, "ecomstream-bootstrap_test: stop here\n");
}

TEST(ServiceTest, AValidationErrorWithControlCharactersIsOneEscapedLineAndExitTwo) {
  std::string output;
  EXPECT_EQ(RunService({"--bad_setting=--name='a\nb' is not a name\x07"}, &output), 2) << output;
  EXPECT_EQ(output, "ecomstream-bootstrap_test: --name='a\\nb' is not a name\\x07\n");
}

TEST(ServiceTest, AMalformedOtelVariableExitsTwoWithOneLineNamingIt) {
  std::string output;
  EXPECT_EQ(RunService({}, &output, {"OTEL_SDK_DISABLED=false", "OTEL_TRACES_SAMPLER=sometimes"}), 2) << output;
  ASSERT_EQ(Lines(output).size(), 1u) << output;
  EXPECT_THAT(output, StartsWith("ecomstream-bootstrap_test: "));
  EXPECT_THAT(output, HasSubstr("OTEL_TRACES_SAMPLER"));
}

TEST(ServiceTest, AMetricsAddressThatIsMalformedOrTakenExitsTwoWithOneLine) {
  std::string output;
  EXPECT_EQ(RunService({"--metrics_address=nonsense"}, &output), 2) << output;
  ASSERT_EQ(Lines(output).size(), 1u) << output;
  EXPECT_THAT(output, StartsWith("ecomstream-bootstrap_test: address 'nonsense' is not host:port"));

  metrics::Registry registry;
  StatusServer taken(&registry, nullptr);
  ASSERT_TRUE(taken.Start("127.0.0.1:0").ok());
  EXPECT_EQ(RunService({absl::StrCat("--metrics_address=127.0.0.1:", taken.port())}, &output), 2) << output;
  ASSERT_EQ(Lines(output).size(), 1u) << output;
  EXPECT_THAT(output, StartsWith("ecomstream-bootstrap_test: "));
}

TEST(ServiceTest, ARunThatFailsExitsOneWithTheErrorLogged) {
  std::string output;
  EXPECT_EQ(RunService({"--run_error=disk on fire"}, &output), 1) << output;
  EXPECT_THAT(output, HasSubstr("Run failed error=\"INTERNAL: disk on fire\""));
}

}  // namespace
}  // namespace ecomstream

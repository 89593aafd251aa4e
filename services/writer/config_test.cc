#include "services/writer/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ecomstream::writer {
namespace {

using ::testing::HasSubstr;

void ExpectInvalid(const WriterConfig& config, const std::string& message) {
  const absl::Status status = config.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(message));
}

TEST(WriterConfigTest, DefaultsAreValid) { EXPECT_TRUE(WriterConfig().Validate().ok()); }

TEST(WriterConfigTest, LoopbackAddressesNeedNoTls) {
  for (const char* address : {"127.0.0.1:0", "localhost:50051", "[::1]:50051", "127.1.2.3:9"}) {
    WriterConfig config;
    config.listen_address = address;
    EXPECT_TRUE(config.Validate().ok()) << address;
  }
}

TEST(WriterConfigTest, RemoteAddressWithoutTlsNeedsExplicitFlag) {
  WriterConfig config;
  for (const char* address : {"0.0.0.0:50051", ":50051", "10.1.2.3:50051", "[::]:50051"}) {
    config.listen_address = address;
    ExpectInvalid(config, "is not a loopback address: serve it with --tls_cert/--tls_key or pass --allow_insecure_remote");
  }
  config.allow_insecure_remote = true;
  EXPECT_TRUE(config.Validate().ok());
}

TEST(WriterConfigTest, RejectsMalformedAddresses) {
  WriterConfig config;
  config.listen_address = "no-port";
  ExpectInvalid(config, "--listen_address: address 'no-port' is not host:port");
  config = WriterConfig();
  config.metrics_address = "127.0.0.1:99999";
  ExpectInvalid(config, "--metrics_address: address '127.0.0.1:99999' has no valid port");
}

TEST(WriterConfigTest, TlsNeedsBothReadableFiles) {
  WriterConfig config;
  config.tls_cert = "/nonexistent/cert.pem";
  ExpectInvalid(config, "--tls_cert and --tls_key must be given together");
  config.tls_key = "/nonexistent/key.pem";
  ExpectInvalid(config, "--tls_cert=/nonexistent/cert.pem: file does not exist or is not readable");
  config = WriterConfig();
  config.tls_client_ca = "/etc/hostname";
  ExpectInvalid(config, "--tls_client_ca needs --tls_cert and --tls_key");
}

TEST(WriterConfigTest, RejectsNumbersOutOfRange) {
  WriterConfig config;
  config.max_message_bytes = 12;
  ExpectInvalid(config, "--max_message_bytes=12 is out of range [4096, 1073741824]");
  config = WriterConfig();
  config.lease_seconds = 0;
  ExpectInvalid(config, "--lease_seconds=0 is out of range");
  config = WriterConfig();
  config.pg_max_connections = -1;
  ExpectInvalid(config, "--pg_max_connections=-1 is out of range");
}

TEST(WriterConfigTest, CommitLanesOutsideOneToSixteenAreRefused) {
  for (const auto& [lanes, message] : std::vector<std::pair<int, std::string>>{
           {0, "--commit_lanes=0 is out of range [1, 16]"},
           {-2, "--commit_lanes=-2 is out of range [1, 16]"},
           {17, "--commit_lanes=17 is out of range [1, 16]"},
           {2147483647, "--commit_lanes=2147483647 is out of range [1, 16]"}}) {
    WriterConfig config;
    config.commit_lanes = lanes;
    ExpectInvalid(config, message);
  }
  WriterConfig config;
  config.commit_lanes = 1;
  EXPECT_TRUE(config.Validate().ok());
  config.commit_lanes = 16;
  EXPECT_TRUE(config.Validate().ok());
}

}  // namespace
}  // namespace ecomstream::writer

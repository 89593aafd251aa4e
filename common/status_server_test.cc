#include "common/status_server.h"

#include <atomic>

#include "gtest/gtest.h"

namespace ecomstream {
namespace {

TEST(StatusServerTest, ReadyzFollowsTheReadinessFunctionAndProbeAgrees) {
  metrics::Registry registry;
  std::atomic<bool> ready{false};
  StatusServer server(&registry, [&] { return ready.load(); });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  ASSERT_GT(server.port(), 0);
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  absl::Status probe = ProbeReady(address);
  EXPECT_EQ(probe.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(probe.message().find("503"), absl::string_view::npos) << probe;
  ready = true;
  EXPECT_TRUE(ProbeReady(address).ok());
  server.Stop();
  EXPECT_EQ(ProbeReady(address, 500).code(), absl::StatusCode::kUnavailable);
}

TEST(StatusServerTest, SplitHostPortRejectsMalformedAddresses) {
  EXPECT_EQ(SplitHostPort("localhost").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitHostPort("host:").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitHostPort("host:99999").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitHostPort("host:80; rm -rf /").status().code(), absl::StatusCode::kInvalidArgument);
  auto ok = SplitHostPort("[::1]:9090");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->first, "::1");
  EXPECT_EQ(ok->second, 9090);
  EXPECT_EQ(SplitHostPort(":9090")->first, "0.0.0.0");
}

TEST(StatusServerTest, PortAlreadyInUseIsUnavailable) {
  metrics::Registry registry;
  StatusServer first(&registry, nullptr);
  ASSERT_TRUE(first.Start("127.0.0.1:0").ok());
  StatusServer second(&registry, nullptr);
  EXPECT_EQ(second.Start("127.0.0.1:" + std::to_string(first.port())).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ecomstream

// common/metrics.h's exposition passes the same checks as the services' live /metrics.
#include <limits>

#include "common/metrics.h"
#include "gtest/gtest.h"
#include "tests/otel/metrics_check.h"

namespace ecomstream::testing {
namespace {

TEST(MetricsRegistryCheckTest, ExportTextPassesPromtoolAndTheInfBucketCheck) {
  metrics::Registry registry;
  metrics::RegisterBuildInfo(registry, "ecomstream-test");
  registry.GetCounter("ecomstream_rows_total", "Rows read, by outcome.", {{"outcome", "inserted"}}).Increment(7);
  registry.GetCounter("ecomstream_rows_total", "Rows read, by outcome.",
                      {{"outcome", "dead_letter"}, {"reason", "bad \"price\"\n, {x}"}})
      .Increment();
  registry.GetGauge("ecomstream_inflight_batches", "Unacknowledged batches.").Set(3);
  metrics::Histogram& latency = registry.GetHistogram(
      "ecomstream_commit_latency_seconds", "Commit latency.", metrics::LatencyBuckets(), {{"service", "writer"}});
  for (double seconds : {0.0001, 0.002, 0.002, 0.5, 3.0, 1e9}) latency.Observe(seconds);
  // A labelled histogram that has seen nothing must still be complete.
  registry.GetHistogram("ecomstream_commit_latency_seconds", "Commit latency.", metrics::LatencyBuckets(),
                        {{"service", "idle"}});
  registry.GetHistogram("ecomstream_batch_rows", "Rows per batch.", metrics::SizeBuckets()).Observe(500);

  const std::string text = registry.ExportText();
  const absl::Status status = CheckMetricsText(text);
  EXPECT_TRUE(status.ok()) << status << "\n" << text;
}

}  // namespace
}  // namespace ecomstream::testing

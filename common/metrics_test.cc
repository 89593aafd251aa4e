#include "common/metrics.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ecomstream::metrics {
namespace {

TEST(MetricsTest, CounterExportsExactIntegersWithLabelsAndHelp) {
  Registry registry;
  Counter& inserted = registry.GetCounter("ecomstream_rows_total", "Rows by outcome.", {{"outcome", "inserted"}});
  inserted.Increment(1234567);
  registry.GetCounter("ecomstream_rows_total", "Rows by outcome.", {{"outcome", "dead_letter"}}).Increment(3);
  EXPECT_EQ(&inserted, &registry.GetCounter("ecomstream_rows_total", "", {{"outcome", "inserted"}}));
  EXPECT_EQ(registry.ExportText(),
            "# HELP ecomstream_rows_total Rows by outcome.\n"
            "# TYPE ecomstream_rows_total counter\n"
            "ecomstream_rows_total{outcome=\"dead_letter\"} 3\n"
            "ecomstream_rows_total{outcome=\"inserted\"} 1234567\n");
}

TEST(MetricsTest, CounterIgnoresNegativeIncrements) {
  Registry registry;
  Counter& c = registry.GetCounter("ecomstream_x_total", "x");
  c.Increment(2);
  c.Increment(-5);
  EXPECT_EQ(c.Value(), 2);
}

TEST(MetricsTest, HistogramHasCumulativeBucketsInfSumAndCount) {
  Registry registry;
  Histogram& h = registry.GetHistogram("ecomstream_commit_seconds", "Commit latency.", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(registry.ExportText(),
            "# HELP ecomstream_commit_seconds Commit latency.\n"
            "# TYPE ecomstream_commit_seconds histogram\n"
            "ecomstream_commit_seconds_bucket{le=\"0.1\"} 1\n"
            "ecomstream_commit_seconds_bucket{le=\"1\"} 3\n"
            "ecomstream_commit_seconds_bucket{le=\"+Inf\"} 4\n"
            "ecomstream_commit_seconds_sum 8.05\n"
            "ecomstream_commit_seconds_count 4\n");
}

TEST(MetricsTest, HostileLabelValuesAreEscaped) {
  Registry registry;
  registry.GetGauge("ecomstream_g", "g", {{"file", "a\"b\\c\nd"}}).Set(1.5);
  EXPECT_NE(registry.ExportText().find("ecomstream_g{file=\"a\\\"b\\\\c\\nd\"} 1.5\n"), std::string::npos)
      << registry.ExportText();
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry registry;
  Counter& c = registry.GetCounter("ecomstream_c_total", "c");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) c.Increment();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), 400000);
}

TEST(MetricsTest, CollectHooksRunBeforeEachExportInOrderUntilRemoved) {
  Registry registry;
  Gauge& mirrored = registry.GetGauge("ecomstream_mirrored", "m");
  std::vector<int> calls;
  const int first = registry.AddCollectHook([&] {
    calls.push_back(1);
    mirrored.Set(static_cast<double>(calls.size()));
  });
  // A hook may register metrics: it runs outside the registry's metric lock.
  const int second = registry.AddCollectHook([&] {
    calls.push_back(2);
    registry.GetCounter("ecomstream_scrapes_total", "s").Increment();
  });
  EXPECT_EQ(registry.ExportText(),
            "# HELP ecomstream_mirrored m\n# TYPE ecomstream_mirrored gauge\necomstream_mirrored 1\n"
            "# HELP ecomstream_scrapes_total s\n# TYPE ecomstream_scrapes_total counter\necomstream_scrapes_total 1\n");
  registry.RemoveCollectHook(first);
  registry.RemoveCollectHook(12345);  // unknown: ignored
  (void)registry.ExportText();
  registry.RemoveCollectHook(second);
  (void)registry.ExportText();
  EXPECT_EQ(calls, (std::vector<int>{1, 2, 2}));
}

}  // namespace
}  // namespace ecomstream::metrics

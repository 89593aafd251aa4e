#include "common/span_metrics.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "common/tracer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/otel/test_collector.h"

namespace ecomstream::tracing {
namespace {

using ::testing::HasSubstr;

// Reports whatever stats the test sets.
class StubProcessor : public SpanProcessor {
 public:
  void OnEnd(std::unique_ptr<SpanData>) override {}
  absl::Status ForceFlush(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Shutdown(absl::Duration) override { return absl::OkStatus(); }
  ExportStats stats() const override {
    absl::MutexLock lock(&mu_);
    return stats_;
  }
  void set_stats(const ExportStats& stats) {
    absl::MutexLock lock(&mu_);
    stats_ = stats;
  }

 private:
  mutable absl::Mutex mu_;
  ExportStats stats_;
};

constexpr char kSeriesAt0[] =
    "# HELP ecomstream_spans_dropped_total Spans never exported, by reason (queue_full, export_failed, shutdown).\n"
    "# TYPE ecomstream_spans_dropped_total counter\n"
    "ecomstream_spans_dropped_total{reason=\"export_failed\"} 0\n"
    "ecomstream_spans_dropped_total{reason=\"queue_full\"} 0\n"
    "ecomstream_spans_dropped_total{reason=\"shutdown\"} 0\n"
    "# HELP ecomstream_spans_exported_total Spans the OTLP collector accepted.\n"
    "# TYPE ecomstream_spans_exported_total counter\n"
    "ecomstream_spans_exported_total 0\n"
    "# HELP ecomstream_spans_queued Spans waiting for export now.\n"
    "# TYPE ecomstream_spans_queued gauge\n"
    "ecomstream_spans_queued 0\n";

TEST(SpanExportMetricsTest, EveryScrapeCopiesTheExportersCountersExactly) {
  auto processor = std::make_unique<StubProcessor>();
  StubProcessor* stub = processor.get();
  Tracer tracer(TracerOptions(), std::move(processor));
  metrics::Registry registry;
  SpanExportMetrics span_metrics(&tracer, &registry);
  EXPECT_EQ(registry.ExportText(), kSeriesAt0);

  ExportStats stats;
  stats.exported = 1000;
  stats.dropped_queue_full = 7;
  stats.dropped_export_failed = 512;
  stats.dropped_shutdown = 3;
  stats.queued = 40;
  stub->set_stats(stats);
  std::string text = registry.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_exported_total 1000\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_dropped_total{reason=\"queue_full\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_dropped_total{reason=\"export_failed\"} 512\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_dropped_total{reason=\"shutdown\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_queued 40\n"));

  // A second scrape with nothing new does not count twice; the gauge follows the queue down.
  stats.exported = 1040;
  stats.queued = 0;
  stub->set_stats(stats);
  span_metrics.Update();
  text = registry.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_exported_total 1040\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_dropped_total{reason=\"export_failed\"} 512\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_queued 0\n"));
}

TEST(SpanExportMetricsTest, ADisabledTracerExportsZerosAndTheHookLeavesWithTheObject) {
  std::unique_ptr<Tracer> tracer = Tracer::Disabled();
  metrics::Registry registry;
  {
    SpanExportMetrics span_metrics(tracer.get(), &registry);
    tracer->StartSpan("file.write", SpanKind::kProducer).End();
    EXPECT_EQ(registry.ExportText(), kSeriesAt0);
  }
  tracer.reset();
  EXPECT_EQ(registry.ExportText(), kSeriesAt0) << "a scrape after both are gone must not touch the tracer";
}

TEST(SpanExportMetricsTest, SpansAcceptedByARealCollectorAndRefusedByAFailingOneAreCountedApart) {
  auto collector = testing::TestCollector::Start();
  ASSERT_TRUE(collector.ok()) << collector.status();
  absl::StatusOr<std::unique_ptr<Tracer>> tracer_or = (*collector)->NewTracer("ecomstream-test");
  ASSERT_TRUE(tracer_or.ok()) << tracer_or.status();
  Tracer& tracer = **tracer_or;
  metrics::Registry registry;
  SpanExportMetrics span_metrics(&tracer, &registry);

  for (int i = 0; i < 5; ++i) tracer.StartSpan("batch.send", SpanKind::kClient).End();
  ASSERT_TRUE(tracer.ForceFlush(absl::Seconds(10)).ok());
  (*collector)->SetExportStatus(absl::UnavailableError("collector down"));
  for (int i = 0; i < 3; ++i) tracer.StartSpan("batch.send", SpanKind::kClient).End();
  EXPECT_EQ(tracer.ForceFlush(absl::Seconds(10)).code(), absl::StatusCode::kUnavailable);

  const std::string text = registry.ExportText();
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_exported_total 5\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_dropped_total{reason=\"export_failed\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("ecomstream_spans_dropped_total{reason=\"queue_full\"} 0\n"));
  EXPECT_EQ((*collector)->span_count(), 5u);
}

}  // namespace
}  // namespace ecomstream::tracing

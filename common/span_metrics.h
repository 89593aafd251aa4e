// The span exporter's counters as Prometheus series, the same in every service that has a Tracer
// (docs/design.md, "Metrics, health, logs": spans exported and dropped):
//
//   ecomstream_spans_exported_total                      spans the collector accepted
//   ecomstream_spans_dropped_total{reason="queue_full"}  the export queue was full (collector slow or down)
//   ecomstream_spans_dropped_total{reason="export_failed"}  the Export call failed or was rejected
//   ecomstream_spans_dropped_total{reason="shutdown"}    ended after Shutdown or still queued at its deadline
//   ecomstream_spans_queued                              spans waiting for export now (gauge)
//
// The values are copied from Tracer::stats() at every scrape (a Registry collect hook), so they
// are exact when read. A disabled tracer, or one without an exporter, exports zeros.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<tracing::Tracer> tracer, tracing::Tracer::FromEnvironment("ecomstream-writer"));
//   tracing::SpanExportMetrics span_metrics(tracer.get(), &metrics::Registry::Default());
//
// Declare it after the Tracer: it must be destroyed first (the destructor removes the hook).
// Thread-safe.
#ifndef ECOMSTREAM_COMMON_SPAN_METRICS_H_
#define ECOMSTREAM_COMMON_SPAN_METRICS_H_

#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "common/tracer.h"

namespace ecomstream::tracing {

class SpanExportMetrics {
 public:
  // Registers the series in `registry`. Both must outlive this object.
  SpanExportMetrics(const Tracer* tracer, metrics::Registry* registry);
  ~SpanExportMetrics();
  SpanExportMetrics(const SpanExportMetrics&) = delete;
  SpanExportMetrics& operator=(const SpanExportMetrics&) = delete;

  // Copies the tracer's current stats into the series (also done before every ExportText).
  void Update();

 private:
  const Tracer* const tracer_;
  metrics::Registry* const registry_;
  metrics::Counter& exported_;
  metrics::Counter& dropped_queue_full_;
  metrics::Counter& dropped_export_failed_;
  metrics::Counter& dropped_shutdown_;
  metrics::Gauge& queued_;
  absl::Mutex mu_;
  ExportStats copied_ ABSL_GUARDED_BY(mu_);  // what the counters hold
  int hook_id_ = -1;
};

}  // namespace ecomstream::tracing

#endif  // ECOMSTREAM_COMMON_SPAN_METRICS_H_

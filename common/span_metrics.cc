#include "common/span_metrics.h"

#include <cstdint>

namespace ecomstream::tracing {
namespace {

constexpr char kExportedHelp[] = "Spans the OTLP collector accepted.";
constexpr char kDroppedHelp[] = "Spans never exported, by reason (queue_full, export_failed, shutdown).";

metrics::Counter& Dropped(metrics::Registry* registry, const char* reason) {
  return registry->GetCounter("ecomstream_spans_dropped_total", kDroppedHelp, {{"reason", reason}});
}

// Counters only grow: add what the tracer counted since the last copy.
void CatchUp(metrics::Counter& counter, uint64_t now, uint64_t copied) {
  if (now > copied) counter.Increment(static_cast<double>(now - copied));
}

}  // namespace

SpanExportMetrics::SpanExportMetrics(const Tracer* tracer, metrics::Registry* registry)
    : tracer_(tracer),
      registry_(registry),
      exported_(registry->GetCounter("ecomstream_spans_exported_total", kExportedHelp)),
      dropped_queue_full_(Dropped(registry, "queue_full")),
      dropped_export_failed_(Dropped(registry, "export_failed")),
      dropped_shutdown_(Dropped(registry, "shutdown")),
      queued_(registry->GetGauge("ecomstream_spans_queued", "Spans waiting for export now.")) {
  hook_id_ = registry_->AddCollectHook([this] { Update(); });
}

SpanExportMetrics::~SpanExportMetrics() { registry_->RemoveCollectHook(hook_id_); }

void SpanExportMetrics::Update() {
  absl::MutexLock lock(&mu_);  // read under the lock too, so copied_ never goes backwards
  const ExportStats now = tracer_->stats();
  CatchUp(exported_, now.exported, copied_.exported);
  CatchUp(dropped_queue_full_, now.dropped_queue_full, copied_.dropped_queue_full);
  CatchUp(dropped_export_failed_, now.dropped_export_failed, copied_.dropped_export_failed);
  CatchUp(dropped_shutdown_, now.dropped_shutdown, copied_.dropped_shutdown);
  queued_.Set(static_cast<double>(now.queued));
  copied_ = now;
}

}  // namespace ecomstream::tracing

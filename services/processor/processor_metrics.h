// processor_metrics: every Prometheus series the processor exports, looked up once.
//
// Names follow docs/design.md ("metrics"): `ecomstream_processor_` prefix, base units, counters end in
// `_total`. Each component also counts what it received, sent, dropped and failed
// in the `ecomstream_processor_component_*_total{component="..."}` families.
// Thread-safe: every member is a lock-free metric.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_METRICS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_METRICS_H_

#include <array>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/metrics.h"
#include "services/processor/component_counters.h"
#include "services/processor/row_validator.h"

namespace ecomstream::processor {

class ProcessorMetrics {
 public:
  // Registers every series in `registry`, which must outlive this object.
  explicit ProcessorMetrics(metrics::Registry& registry);
  ProcessorMetrics(const ProcessorMetrics&) = delete;
  ProcessorMetrics& operator=(const ProcessorMetrics&) = delete;

  // Adds one batch's worth of row outcomes (events, duplicates, dead letters by reason).
  void CountRows(const RowCounts& counts);
  // Adds the writer's verdict on one acked batch.
  void CountAck(const v1::Ack& ack);

  // Components.
  ComponentCounters directory_source;  // files: discovered / handed on / ignored names / scan errors
  // Moved by the components themselves (csv_reader.h, row_validator.h, batcher.h).
  ComponentCounters csv_reader;        // records (header too): read / passed on / - / unreadable, read errors
  ComponentCounters row_validator;     // rows past the resume point: validated / events / duplicates / dead letters
  ComponentCounters batcher;           // rows in / batches out
  ComponentCounters writer_client;     // batches: queued / written / dropped (refused) / stream failures
  ComponentCounters file_lifecycle;    // files: to move / archived or deleted or quarantined / - / errors

  // Rows by outcome as the processor decided: event, duplicate, dead_letter by reason (a dead
  // letter with two reasons counts under each).
  metrics::Counter& rows_event;
  metrics::Counter& rows_duplicate;
  metrics::Counter& rows_late;
  std::array<metrics::Counter*, kNumRejectReasons> rows_dead_letter{};
  // Rows by the writer's verdict: inserted, updated, unchanged, dead_lettered, duplicate.
  metrics::Counter& acked_inserted;
  metrics::Counter& acked_updated;
  metrics::Counter& acked_unchanged;
  metrics::Counter& acked_dead_lettered;
  metrics::Counter& acked_duplicates;

  // Files by outcome.
  metrics::Counter& files_committed;
  metrics::Counter& files_already_committed;
  metrics::Counter& files_quarantined;
  metrics::Counter& files_held_by_other;
  metrics::Counter& files_failed;

  metrics::Counter& batches_sent;
  metrics::Counter& batches_resent;
  metrics::Counter& batches_acked;
  metrics::Counter& unexpected_acks;
  // Files seen in the inbox and not finished (waiting, being read or awaiting acks), as of the
  // last scan of the inbox.
  metrics::Gauge& backlog_files;
  metrics::Gauge& in_flight_batches;
  metrics::Gauge& in_flight_bytes;
  metrics::Counter& stream_reconnects;
  metrics::Counter& claim_retries;
  metrics::Gauge& circuit_open;
  metrics::Counter& circuit_opened;

  metrics::Histogram& file_discovery_delay_seconds;  // visible in the inbox -> picked up
  metrics::Histogram& batch_ack_latency_seconds;     // written on the stream -> acked
  metrics::Histogram& file_commit_latency_seconds;   // visible in the inbox -> last batch acked
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_METRICS_H_

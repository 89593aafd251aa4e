#include "services/processor/processor_metrics.h"

#include <string>

#include "common/domain.h"

namespace ecomstream::processor {
namespace {

constexpr absl::string_view kRows = "ecomstream_processor_rows_total";
constexpr absl::string_view kRowsHelp = "Rows read, by the processor's outcome (and reject reason for dead letters).";
constexpr absl::string_view kAcked = "ecomstream_processor_acked_rows_total";
constexpr absl::string_view kAckedHelp = "Rows acknowledged by the writer, by its outcome.";
constexpr absl::string_view kFiles = "ecomstream_processor_files_total";
constexpr absl::string_view kFilesHelp = "Files finished, by outcome.";
constexpr absl::string_view kBatches = "ecomstream_processor_batches_total";
constexpr absl::string_view kBatchesHelp = "Batches on the Write stream, by event.";

metrics::Counter& Component(metrics::Registry& r, absl::string_view what, absl::string_view component) {
  const std::string name = std::string("ecomstream_processor_component_") + std::string(what) + "_total";
  return r.GetCounter(name, "Items each pipeline component received, sent, dropped or failed on.",
                      {{"component", std::string(component)}});
}

}  // namespace

ComponentCounters::ComponentCounters(metrics::Registry& r, absl::string_view component)
    : received(Component(r, "received", component)),
      sent(Component(r, "sent", component)),
      dropped(Component(r, "dropped", component)),
      failed(Component(r, "failed", component)) {}

ProcessorMetrics::ProcessorMetrics(metrics::Registry& r)
    : directory_source(r, "directory_source"),
      csv_reader(r, "csv_reader"),
      row_validator(r, "row_validator"),
      batcher(r, "batcher"),
      writer_client(r, "writer_client"),
      file_lifecycle(r, "file_lifecycle"),
      rows_event(r.GetCounter(kRows, kRowsHelp, {{"outcome", "event"}})),
      rows_duplicate(r.GetCounter(kRows, kRowsHelp, {{"outcome", "duplicate"}})),
      rows_late(r.GetCounter("ecomstream_processor_late_events_total",
                             "Valid events older than the file's time minus --late_after (kept, flagged).")),
      acked_inserted(r.GetCounter(kAcked, kAckedHelp, {{"outcome", "inserted"}})),
      acked_updated(r.GetCounter(kAcked, kAckedHelp, {{"outcome", "updated"}})),
      acked_unchanged(r.GetCounter(kAcked, kAckedHelp, {{"outcome", "unchanged"}})),
      acked_dead_lettered(r.GetCounter(kAcked, kAckedHelp, {{"outcome", "dead_lettered"}})),
      acked_duplicates(r.GetCounter(kAcked, kAckedHelp, {{"outcome", "duplicate"}})),
      files_committed(r.GetCounter(kFiles, kFilesHelp, {{"outcome", "committed"}})),
      files_already_committed(r.GetCounter(kFiles, kFilesHelp, {{"outcome", "already_committed"}})),
      files_quarantined(r.GetCounter(kFiles, kFilesHelp, {{"outcome", "quarantined"}})),
      files_held_by_other(r.GetCounter(kFiles, kFilesHelp, {{"outcome", "held_by_other"}})),
      files_failed(r.GetCounter(kFiles, kFilesHelp, {{"outcome", "failed"}})),
      batches_sent(r.GetCounter(kBatches, kBatchesHelp, {{"event", "sent"}})),
      batches_resent(r.GetCounter(kBatches, kBatchesHelp, {{"event", "resent"}})),
      batches_acked(r.GetCounter(kBatches, kBatchesHelp, {{"event", "acked"}})),
      unexpected_acks(r.GetCounter("ecomstream_processor_unexpected_acks_total",
                                   "Acks that matched no unacknowledged batch (ignored).")),
      backlog_files(r.GetGauge("ecomstream_processor_backlog_files",
                               "Files seen in the inbox and not finished, as of the last scan.")),
      in_flight_batches(r.GetGauge("ecomstream_processor_in_flight_batches",
                                   "Batches written or queued and not yet acknowledged (the window).")),
      in_flight_bytes(r.GetGauge("ecomstream_processor_in_flight_bytes",
                                 "Estimated bytes of the batches in the window.")),
      stream_reconnects(r.GetCounter("ecomstream_processor_stream_reconnects_total",
                                     "Write streams opened again after one ended with batches unacknowledged.")),
      claim_retries(r.GetCounter("ecomstream_processor_claim_retries_total",
                                 "ClaimFile calls that failed with a retryable error.")),
      circuit_open(r.GetGauge("ecomstream_processor_circuit_breaker_open",
                              "1 while the circuit breaker towards the writer is open.")),
      circuit_opened(r.GetCounter("ecomstream_processor_circuit_breaker_opened_total",
                                  "Times the circuit breaker towards the writer opened.")),
      file_discovery_delay_seconds(r.GetHistogram("ecomstream_processor_file_discovery_delay_seconds",
                                                  "From a file becoming visible in the inbox to its pick-up.",
                                                  metrics::LatencyBuckets())),
      batch_ack_latency_seconds(r.GetHistogram("ecomstream_processor_batch_ack_latency_seconds",
                                               "From writing a batch on the stream to its ack (after COMMIT).",
                                               metrics::LatencyBuckets())),
      file_commit_latency_seconds(r.GetHistogram("ecomstream_processor_file_commit_latency_seconds",
                                                 "From a file becoming visible in the inbox to its last ack.",
                                                 metrics::LatencyBuckets())) {
  for (int reason = 1; reason < kNumRejectReasons; ++reason) {
    if (!v1::RejectReason_IsValid(reason)) continue;
    rows_dead_letter[reason] = &r.GetCounter(
        kRows, kRowsHelp,
        {{"outcome", "dead_letter"}, {"reason", domain::RejectReasonName(static_cast<v1::RejectReason>(reason))}});
  }
}

void ProcessorMetrics::CountRows(const RowCounts& counts) {
  rows_event.Increment(static_cast<double>(counts.events));
  rows_duplicate.Increment(static_cast<double>(counts.duplicates));
  rows_late.Increment(static_cast<double>(counts.late));
  for (int reason = 0; reason < kNumRejectReasons; ++reason) {
    if (counts.by_reason[reason] != 0 && rows_dead_letter[reason] != nullptr) {
      rows_dead_letter[reason]->Increment(static_cast<double>(counts.by_reason[reason]));
    }
  }
}

void ProcessorMetrics::CountAck(const v1::Ack& ack) {
  acked_inserted.Increment(static_cast<double>(ack.inserted()));
  acked_updated.Increment(static_cast<double>(ack.updated()));
  acked_unchanged.Increment(static_cast<double>(ack.unchanged()));
  acked_dead_lettered.Increment(static_cast<double>(ack.dead_lettered()));
  acked_duplicates.Increment(static_cast<double>(ack.duplicates()));
}

}  // namespace ecomstream::processor

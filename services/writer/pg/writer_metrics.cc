#include "services/writer/pg/writer_metrics.h"

#include "absl/strings/ascii.h"
#include "common/time_util.h"

namespace ecomstream::writer {
namespace {

constexpr char kRows[] = "ecomstream_writer_rows_total";
constexpr char kRowsHelp[] = "Rows received, by where they ended.";
constexpr char kBatches[] = "ecomstream_writer_batches_total";
constexpr char kBatchesHelp[] = "Batches, by result.";
constexpr char kFastPath[] = "ecomstream_writer_fast_path_total";
constexpr char kFastPathHelp[] = "Batches begun ahead of their commit: finished that way, or run again.";

}  // namespace

WriterMetrics::WriterMetrics(metrics::Registry* registry)
    : registry_(registry),
      inserted_(registry->GetCounter(kRows, kRowsHelp, {{"outcome", "inserted"}})),
      updated_(registry->GetCounter(kRows, kRowsHelp, {{"outcome", "updated"}})),
      unchanged_(registry->GetCounter(kRows, kRowsHelp, {{"outcome", "unchanged"}})),
      duplicate_(registry->GetCounter(kRows, kRowsHelp, {{"outcome", "duplicate"}})),
      dead_lettered_(registry->GetCounter(kRows, kRowsHelp, {{"outcome", "dead_lettered"}})),
      committed_(registry->GetCounter(kBatches, kBatchesHelp, {{"result", "committed"}})),
      already_committed_(registry->GetCounter(kBatches, kBatchesHelp, {{"result", "already_committed"}})),
      failed_(registry->GetCounter(kBatches, kBatchesHelp, {{"result", "failed"}})),
      fast_finished_(registry->GetCounter(kFastPath, kFastPathHelp, {{"result", "finished"}})),
      fast_ran_again_(registry->GetCounter(kFastPath, kFastPathHelp, {{"result", "ran_again"}})),
      commit_latency_(registry->GetHistogram("ecomstream_writer_commit_latency_seconds",
                                             "Time from BEGIN to COMMIT of a batch's transaction.",
                                             metrics::LatencyBuckets())),
      end_to_end_latency_(registry->GetHistogram("ecomstream_end_to_end_latency_seconds",
                                                 "Time from the file's drop into the inbox to the commit of its batch.",
                                                 metrics::LatencyBuckets())),
      batch_rows_(registry->GetHistogram("ecomstream_writer_batch_rows", "Rows per committed batch.",
                                         metrics::SizeBuckets())) {}

void WriterMetrics::RecordBatch(const v1::Ack& ack, const std::map<std::string, int64_t>& reasons,
                                double commit_seconds, int64_t file_drop_time_us) {
  if (ack.already_committed()) {
    already_committed_.Increment();
    return;
  }
  committed_.Increment();
  inserted_.Increment(static_cast<double>(ack.inserted()));
  updated_.Increment(static_cast<double>(ack.updated()));
  unchanged_.Increment(static_cast<double>(ack.unchanged()));
  duplicate_.Increment(static_cast<double>(ack.duplicates()));
  dead_lettered_.Increment(static_cast<double>(ack.dead_lettered()));
  for (const auto& [reason, count] : reasons) {
    registry_
        ->GetCounter("ecomstream_writer_dead_letters_total", "Dead-lettered rows, by reason.", {{"reason", reason}})
        .Increment(static_cast<double>(count));
  }
  commit_latency_.Observe(commit_seconds);
  batch_rows_.Observe(static_cast<double>(ack.last_row() - ack.first_row() + 1));
  if (file_drop_time_us > 0) {
    end_to_end_latency_.Observe(static_cast<double>(ack.commit_time_us() - file_drop_time_us) / 1e6);
  }
}

void WriterMetrics::RecordBatchFailure(absl::StatusCode code) {
  failed_.Increment();
  registry_
      ->GetCounter("ecomstream_writer_batch_errors_total", "Failed batches, by status code.",
                   {{"code", absl::AsciiStrToLower(absl::StatusCodeToString(code))}})
      .Increment();
}

void WriterMetrics::RecordClaim(v1::ClaimFileResponse::Outcome outcome) {
  std::string name = absl::AsciiStrToLower(v1::ClaimFileResponse::Outcome_Name(outcome));
  if (name.rfind("outcome_", 0) == 0) name = name.substr(8);
  registry_->GetCounter("ecomstream_writer_claims_total", "ClaimFile answers, by outcome.", {{"outcome", name}})
      .Increment();
}

}  // namespace ecomstream::writer

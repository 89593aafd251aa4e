// What the generator's rows must become downstream (docs/rows.md, "The generator's ground
// truth"), counted per file for its manifest and per run for --summary_file.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_GROUND_TRUTH_H_
#define ECOMSTREAM_SERVICES_GENERATOR_GROUND_TRUTH_H_

#include <array>
#include <cstdint>
#include <string>

#include "ecomstream/v1/ingest.pb.h"
#include "services/generator/anomaly_injector.h"

namespace ecomstream::generator {

struct GroundTruth {
  int64_t rows = 0;
  std::array<int64_t, kNumAnomalyKinds> anomalies{};

  // Rows of kinds whose outcome (OutcomeOf) is a dead letter, resp. an exact duplicate.
  int64_t dead_letters() const { return RowsWithOutcome(RowOutcome::kDeadLetter); }
  int64_t exact_duplicates() const { return RowsWithOutcome(RowOutcome::kDuplicate); }
  // Valid events older than their file's creation time - 1 h (only late_event rows are).
  int64_t late_events() const { return anomalies[static_cast<int>(AnomalyKind::kLateEvent)]; }
  // Rows that end up in ecomstream.events.
  int64_t valid_events() const { return rows - dead_letters() - exact_duplicates(); }
  void Count(const RowVerdict& verdict);
  void Add(const GroundTruth& other);

 private:
  int64_t RowsWithOutcome(RowOutcome outcome) const;
};

// Sets the manifest's ground-truth fields: anomaly_counts (kinds with a non-zero count),
// expected_valid_events, expected_dead_letters, exact_duplicates, late_events and rows.
void FillManifest(const GroundTruth& truth, v1::FileManifest* manifest);

// The --summary_file document: exactly events_written, files, valid_distinct_events,
// expected_dead_letters, exact_duplicates, late_events and anomalies {kind: count} for every
// kind in `kinds` (zero counts included), in that order, ending in a newline.
std::string SummaryJson(const GroundTruth& run, int64_t files, const AnomalyKindSet& kinds);

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_GROUND_TRUTH_H_

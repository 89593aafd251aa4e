#include "services/generator/ground_truth.h"

#include "absl/strings/str_cat.h"

namespace ecomstream::generator {

void GroundTruth::Count(const RowVerdict& verdict) {
  ++rows;
  if (verdict.anomalous) ++anomalies[static_cast<int>(verdict.kind)];
}

int64_t GroundTruth::RowsWithOutcome(RowOutcome outcome) const {
  int64_t n = 0;
  for (int k = 0; k < kNumAnomalyKinds; ++k) {
    if (OutcomeOf(static_cast<AnomalyKind>(k)) == outcome) n += anomalies[k];
  }
  return n;
}

void GroundTruth::Add(const GroundTruth& other) {
  rows += other.rows;
  for (int k = 0; k < kNumAnomalyKinds; ++k) anomalies[k] += other.anomalies[k];
}

void FillManifest(const GroundTruth& truth, v1::FileManifest* manifest) {
  manifest->set_rows(truth.rows);
  manifest->set_expected_valid_events(truth.valid_events());
  manifest->set_expected_dead_letters(truth.dead_letters());
  manifest->set_exact_duplicates(truth.exact_duplicates());
  manifest->set_late_events(truth.late_events());
  auto& counts = *manifest->mutable_anomaly_counts();
  counts.clear();
  for (int k = 0; k < kNumAnomalyKinds; ++k) {
    if (truth.anomalies[k] > 0) counts[std::string(AnomalyKindName(static_cast<AnomalyKind>(k)))] = truth.anomalies[k];
  }
}

std::string SummaryJson(const GroundTruth& run, int64_t files, const AnomalyKindSet& kinds) {
  std::string json = absl::StrCat("{\n  \"events_written\": ", run.rows, ",\n  \"files\": ", files,
                                  ",\n  \"valid_distinct_events\": ", run.valid_events(),
                                  ",\n  \"expected_dead_letters\": ", run.dead_letters(),
                                  ",\n  \"exact_duplicates\": ", run.exact_duplicates(),
                                  ",\n  \"late_events\": ", run.late_events(), ",\n  \"anomalies\": {");
  bool first = true;
  for (int k = 0; k < kNumAnomalyKinds; ++k) {
    if (!kinds.test(k)) continue;
    absl::StrAppend(&json, first ? "\n" : ",\n", "    \"", AnomalyKindName(static_cast<AnomalyKind>(k)),
                    "\": ", run.anomalies[k]);
    first = false;
  }
  absl::StrAppend(&json, first ? "}\n}\n" : "\n  }\n}\n");
  return json;
}

}  // namespace ecomstream::generator

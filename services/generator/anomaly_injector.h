// The transform that bends clean rows into the anomalies of docs/rows.md, one per row, and
// says exactly what it did so the run's ground truth is exact.
//
// Every kind has one expected outcome (OutcomeOf) and, for dead letters, exactly one reason
// (ReasonOf), with every other rule of docs/rows.md still satisfied:
//   noise_*            cleanable noise; the row stays a valid event
//   <reason name>      an invalid value that trips exactly that RejectReason
//   malformed_quoting, wrong_column_count, invalid_utf8
//                      a broken record that ends at its physical line end (record-level reasons:
//                      the fields of such a record are not interpreted)
//   exact_duplicate    the same bytes as an earlier valid row of the same file
//   conflicting_duplicate  an earlier valid row's event_id with one other column changed
//   late_event         event_time 2-6 h before the file's creation time, otherwise valid
// Normal rows are stamped by the caller within the file's span; future_timestamp adds 2-30
// days, so it lies beyond the processor's 1 h --max_future whatever the file's span.
//
// Deterministic for a seed and a sequence of calls. Not thread-safe.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_ANOMALY_INJECTOR_H_
#define ECOMSTREAM_SERVICES_GENERATOR_ANOMALY_INJECTOR_H_

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/generator/csv_row_encoder.h"
#include "services/generator/random.h"
#include "services/generator/schema.h"
#include "services/generator/shopper_model.h"

namespace ecomstream::generator {

enum class AnomalyKind : uint8_t {
  kNoiseCase,
  kNoiseWhitespace,
  kNoiseSynonym,
  kNoiseTimestampFormat,
  kNoiseNullMarker,
  kMissingRequired,
  kBadEventId,
  kBadUserId,
  kBadSessionId,
  kUnknownEventType,
  kAnonymousAction,
  kMissingProduct,
  kBadProductId,
  kUnknownCategory,
  kBadPrice,
  kBadQuantity,
  kBadTimestamp,
  kFutureTimestamp,
  kBadCountry,
  kBadEnumValue,
  kConflictingDuplicate,
  kMalformedQuoting,
  kWrongColumnCount,
  kInvalidUtf8,
  kExactDuplicate,
  kLateEvent,
};
inline constexpr int kNumAnomalyKinds = 26;
using AnomalyKindSet = std::bitset<kNumAnomalyKinds>;

// "noise_case", "bad_price", ... (dead-letter kinds carry their reason's stored name).
absl::string_view AnomalyKindName(AnomalyKind kind);
RowOutcome OutcomeOf(AnomalyKind kind);
// The reason a dead-letter kind trips; REJECT_REASON_UNSPECIFIED for the other kinds.
v1::RejectReason ReasonOf(AnomalyKind kind);
AnomalyKindSet AllAnomalyKinds();
// A comma list of kind names and the groups "all", "noise", "invalid", "malformed".
// kInvalidArgument naming the unknown entry, or for an empty list.
absl::StatusOr<AnomalyKindSet> ParseAnomalyKinds(absl::string_view list);

// What the injector did to one row.
struct RowVerdict {
  bool anomalous = false;
  AnomalyKind kind = AnomalyKind::kNoiseCase;  // meaningful when anomalous
  RowOutcome outcome = RowOutcome::kEvent;
  bool late = false;  // a valid event older than the file's creation time - 1 h
};

class AnomalyInjector {
 public:
  struct Options {
    double rate = 0.02;        // share of rows given one of the enabled kinds except late_event
    double late_rate = 0.005;  // share of rows that arrive late (if late_event is enabled)
    AnomalyKindSet kinds = AllAnomalyKinds();
  };

  AnomalyInjector(uint64_t seed, Options options);

  // Starts a file of `version`: rows remembered for duplicates are forgotten (duplicates never
  // cross files) and only kinds that the version's columns can express are drawn.
  void BeginFile(SchemaVersion version);
  // Decides the next row's anomaly. May rewrite `*event` (late_event, future_timestamp,
  // anonymous_action, conflicting_duplicate) and fills `*plan` for the encoder.
  RowVerdict Apply(ShopperEvent* event, RowPlan* plan);
  // Offers a row that was written as a valid event (verdict outcome kEvent) and its record
  // bytes without terminator, as a source for later duplicates in the same file.
  void Remember(const ShopperEvent& event, absl::string_view record);

 private:
  static constexpr int kPoolSize = 16;
  struct PooledRow {
    ShopperEvent event;
    std::string record;
  };

  bool Applicable(AnomalyKind kind, const ShopperEvent& event) const;
  // Bends the row into `kind`: the kind's own function (anomaly_injector.cc's table), or for the
  // two duplicates, a row remembered from this file.
  void Inject(AnomalyKind kind, ShopperEvent* event, RowPlan* plan);

  Rng rng_;
  Options options_;
  SchemaVersion version_ = SchemaVersion::kV3;
  std::vector<AnomalyKind> candidates_;  // scratch
  std::array<PooledRow, kPoolSize> pool_;
  int pool_size_ = 0;
  int pool_next_ = 0;
  int64_t valid_rows_in_file_ = 0;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_ANOMALY_INJECTOR_H_

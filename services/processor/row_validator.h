// row_validator: cleans and validates one CSV record into an Event, a DeadLetter, or an exact
// duplicate (docs/rows.md, "Cleaning", "Validation" and "Outcomes").
//
// One validator per file: it remembers where the file's valid rows are, by event id, to tell
// exact duplicates (same bytes) from conflicting ones (event_id_index.h: about 8 bytes per
// distinct valid event id; a possible duplicate is confirmed by reading the earlier row again
// through EarlierRows). Everything else is per row and allocation-free on the path of a valid
// row. Not thread-safe.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_ROW_VALIDATOR_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_ROW_VALIDATOR_H_

#include <array>
#include <memory>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "common/csv_schema.h"  // RowOutcome
#include "common/uuid.h"
#include "ecomstream/v1/ingest.pb.h"
#include "absl/status/status.h"
#include "services/processor/component_counters.h"
#include "services/processor/csv_reader.h"
#include "services/processor/earlier_rows.h"
#include "services/processor/event_id_index.h"
#include "services/processor/rules.h"
#include "services/processor/schema_registry.h"

namespace ecomstream::processor {

using ::ecomstream::v1::RejectReason;

inline constexpr int kNumRejectReasons = v1::RejectReason_ARRAYSIZE;

struct RowValidatorOptions {
  // docs/rows.md "reference time": the manifest's created_time_us or the file's mtime.
  int64_t reference_time_us = 0;
  int64_t late_after_us = 3600LL * 1000000;  // event_time < reference - late_after: late_arrival
  int64_t max_future_us = 3600LL * 1000000;  // event_time > reference + max_future: rejected
  size_t max_row_bytes = 65536;              // for the row_too_large detail only
  // Catalogues (categories, countries, synonyms); null: the built-in rules. Must outlive the
  // validator. (Its windows are late_after_us and max_future_us above.)
  const Rules* rules = nullptr;
  // Reads earlier rows again for the duplicate check (see earlier_rows.h); must outlive the
  // validator. Null: the validator keeps a copy of each valid row (single rows, tests).
  EarlierRows* earlier_rows = nullptr;
  // The file's size, to size the event-id index once the bytes per row are known; 0: unknown.
  int64_t file_bytes = 0;
  // Counts rows validated / events / exact duplicates / dead letters (may be null; must outlive
  // the validator; brought up to date every 1024 rows and when the validator is
  // destroyed). Rows up to `counted_after_row` only rebuild the duplicate state for a resumed
  // file: an earlier claimant counted them.
  ComponentCounters* counters = nullptr;
  int64_t counted_after_row = 0;
};

// Counts over every record a validator has seen.
struct RowCounts {
  int64_t rows = 0;
  int64_t events = 0;
  int64_t dead_letters = 0;
  int64_t duplicates = 0;
  int64_t late = 0;
  std::array<int64_t, kNumRejectReasons> by_reason{};  // indexed by RejectReason

  void Add(const RowCounts& other);
  // "bad_price:2,nul_byte:1" for reasons with a non-zero count, in reason order.
  std::string ReasonSummary() const;
};

class RowValidator {
 public:
  RowValidator(const Schema& schema, RowValidatorOptions options);

  // Classifies data row `row` (1-based). The result stays available through FillEvent,
  // FillDeadLetter and reasons() until the next call; `record` must stay valid until then too.
  RowOutcome Validate(const CsvRecord& record, int64_t row);

  // After kEvent: the cleaned event, upgraded to v3.
  void FillEvent(v1::Event* event) const;
  // After kDeadLetter: row, line, raw bytes, every reason, the first offending column and a
  // detail naming each column and value.
  void FillDeadLetter(v1::DeadLetter* dead_letter) const;
  // After kDeadLetter: the reasons, in the order the rules are checked.
  std::vector<RejectReason> reasons() const;
  // After kEvent: whether the event is flagged late_arrival.
  bool late() const { return parsed_.late; }

  const RowCounts& counts() const { return counts_; }
  // Not OK when an earlier row could not be read again: the last outcome is then unreliable
  // and the file must not be sent.
  const absl::Status& status() const { return status_; }
  // Bytes held by the duplicate state.
  size_t duplicate_state_bytes() const { return index_.memory_bytes(); }

 private:
  struct Issue {
    RejectReason reason;
    int column;               // Column, or -1 for the whole record
    absl::string_view value;  // the offending (trimmed) value
    const char* rule;         // what was expected
  };
  struct Parsed {
    Uuid event_id;
    int64_t user_id = 0;
    Uuid session_id;
    bool has_session = false;
    v1::EventType event_type = v1::EVENT_TYPE_UNSPECIFIED;
    bool has_product = false;
    int64_t product_id = 0;
    absl::string_view category;  // canonical (static storage) or empty
    bool has_price = false;
    int64_t price_cents = 0;
    bool has_quantity = false;
    int32_t quantity = 0;
    int64_t event_time_us = 0;
    v1::UserSegment user_segment = v1::USER_SEGMENT_UNSPECIFIED;
    absl::string_view device_type, browser, referrer;  // canonical (static storage) or empty
    char geo_country[2] = {0, 0};
    bool has_country = false;
    absl::string_view geo_city, campaign_id;  // views into the record
    bool late = false;
  };

  // The trimmed field for `column`, or an empty view with *present = false when the column is
  // missing from the schema or NULL.
  absl::string_view Field(Column column, bool* present) const;
  void AddIssue(RejectReason reason, int column, absl::string_view value, const char* rule);
  void CheckRecord();
  // Parses every field into parsed_, adding an issue per broken rule, group by group.
  void CheckFields();
  // What the identity check leaves for the cross-field rule on anonymous users.
  struct Identity {
    absl::string_view user_id;  // the trimmed text
    bool user_ok = false;
    bool type_ok = false;
  };
  // event_id, user_id and event_type (required).
  Identity CheckIdentity();
  // event_time (required): bad, too far in the future, or late.
  void CheckEventTime();
  void CheckSession();
  // product_id: required when `product_event`.
  void CheckProduct(bool product_event);
  // Anonymous users may only view or search.
  void CheckAnonymousAction(const Identity& identity);
  // v1: derived from the product; later versions: from the catalogue.
  void CheckCategory();
  // price (required when `product_event`) and quantity.
  void CheckPriceAndQuantity(bool product_event);
  void CheckCountry();
  // user_segment, device_type, browser, referrer.
  void CheckEnums();
  // geo_city and campaign_id, as they are.
  void KeepFreeText();
  RowOutcome Conclude();
  // Counts the current row's outcome for options_.counters.
  void Count(RowOutcome outcome);
  // Whether `row` (from the index) carries the current row's event id; sets earlier_raw_.
  bool SameEventId(int64_t row);

  Schema schema_;
  RowValidatorOptions options_;
  const Rules* rules_;
  RowCounts counts_;

  // Current row.
  const CsvRecord* record_ = nullptr;
  int64_t row_ = 0;
  Parsed parsed_;
  std::vector<Issue> issues_;
  bool event_id_ok_ = false;

  // The first valid row of each event id so far.
  EventIdIndex index_;
  std::unique_ptr<EarlierRows> kept_rows_;  // when options_.earlier_rows is null
  EarlierRows* earlier_rows_;
  CsvRecord earlier_;                // the row SameEventId read last
  absl::string_view earlier_raw_;    // its raw bytes, after SameEventId said true
  uint64_t bytes_seen_ = 0;          // raw bytes of the rows so far, for the index's size
  absl::Status status_;
  BufferedCounts buffered_counts_;   // into options_.counters
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_ROW_VALIDATOR_H_

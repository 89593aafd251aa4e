// Test-only: an independent reading of docs/rows.md, used to check that every row the
// generator writes ends where its ground truth says (event, dead letter with the expected
// reason, exact duplicate; late or not). Written from the document, not from the processor.
// Assumes, as the document groups them, that record-level reasons (malformed_quoting,
// invalid_utf8, nul_byte, row_too_large, wrong_column_count) stop field validation.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_TESTING_ROW_ORACLE_H_
#define ECOMSTREAM_SERVICES_GENERATOR_TESTING_ROW_ORACLE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::generator::testing {

struct OracleRow {
  int64_t row = 0;   // 1-based data row
  int64_t line = 0;  // physical line the record starts on (header = 1)
  std::string raw;   // record bytes without terminator
  std::vector<v1::RejectReason> reasons;  // empty: an event or an exact duplicate
  bool duplicate = false;
  bool late = false;
  // Cleaned field values by lower-case column name (NULL = absent); valid rows only.
  std::map<std::string, std::string> fields;
};

struct OracleFile {
  int schema_version = 0;  // 1, 2, 3; 0 = header matches no version (quarantine)
  std::vector<std::string> header;
  std::vector<OracleRow> rows;
  int64_t events = 0;
  int64_t dead_letters = 0;
  int64_t duplicates = 0;
  int64_t late = 0;
  std::map<v1::RejectReason, int64_t> reasons;
};

// Classifies every row of `content` against `reference_time_us` (the manifest's created time):
// late before reference - 1 h, future after reference + 1 h.
OracleFile ClassifyCsv(absl::string_view content, int64_t reference_time_us);

// Parses event_time per docs/rows.md; false when unparseable.
bool ParseEventTime(absl::string_view text, int64_t* unix_us);

}  // namespace ecomstream::generator::testing

#endif  // ECOMSTREAM_SERVICES_GENERATOR_TESTING_ROW_ORACLE_H_

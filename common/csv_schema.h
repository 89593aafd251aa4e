// The input CSV's one schema definition (docs/rows.md, "Schema versions"): every column of the
// latest version with its header name, the version that introduced it and whether a row needs
// a value in it; what a schema version is (its columns are the first ones of Column: v1 the
// first 6, v2 the first 10, v3 all 16); and the outcome every row ends in. The generator
// writes files by it, the processor reads them by it, the test oracles judge both by it.
// Header-only.
#ifndef ECOMSTREAM_COMMON_CSV_SCHEMA_H_
#define ECOMSTREAM_COMMON_CSV_SCHEMA_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"

namespace ecomstream {

// Where a row of an input file ends: a stored event, a dead letter with its reasons, or an exact
// duplicate of an earlier record of the same file (dropped, counted).
enum class RowOutcome { kEvent, kDeadLetter, kDuplicate };

namespace csv_schema {

// The v3 columns, in the order of the tables in docs/rows.md.
enum Column : int {
  kEventId,
  kUserId,
  kEventType,
  kProductId,
  kPrice,
  kEventTime,
  kSessionId,
  kCategory,
  kQuantity,
  kUserSegment,
  kDeviceType,
  kBrowser,
  kGeoCountry,
  kGeoCity,
  kReferrer,
  kCampaignId,
  kNumColumns,
};

enum class SchemaVersion : uint8_t { kV1 = 1, kV2 = 2, kV3 = 3 };
inline constexpr SchemaVersion kLatestVersion = SchemaVersion::kV3;
inline constexpr std::array<SchemaVersion, 3> kSchemaVersions = {SchemaVersion::kV1, SchemaVersion::kV2,
                                                                  SchemaVersion::kV3};

struct ColumnSpec {
  absl::string_view name;  // in the header (matched case-insensitively, trimmed)
  SchemaVersion since;     // the first version that has the column
  // A row without a value here is a dead letter (missing_required). The other columns may be
  // empty (NULL), except where docs/rows.md ties them to the event type (product, price).
  bool required;
};

// Indexed by Column.
inline constexpr std::array<ColumnSpec, kNumColumns> kColumns = {{
    {"event_id", SchemaVersion::kV1, true},
    {"user_id", SchemaVersion::kV1, true},
    {"event_type", SchemaVersion::kV1, true},
    {"product_id", SchemaVersion::kV1, false},
    {"price", SchemaVersion::kV1, false},
    {"event_time", SchemaVersion::kV1, true},
    {"session_id", SchemaVersion::kV2, false},
    {"category", SchemaVersion::kV2, false},
    {"quantity", SchemaVersion::kV2, false},
    {"user_segment", SchemaVersion::kV2, false},
    {"device_type", SchemaVersion::kV3, false},
    {"browser", SchemaVersion::kV3, false},
    {"geo_country", SchemaVersion::kV3, false},
    {"geo_city", SchemaVersion::kV3, false},
    {"referrer", SchemaVersion::kV3, false},
    {"campaign_id", SchemaVersion::kV3, false},
}};

// The header name of each column, indexed by Column.
inline constexpr std::array<absl::string_view, kNumColumns> kColumnNames = [] {
  std::array<absl::string_view, kNumColumns> names{};
  for (int c = 0; c < kNumColumns; ++c) names[c] = kColumns[c].name;
  return names;
}();

inline absl::string_view ColumnName(Column column) { return kColumns[column].name; }
inline bool IsRequired(Column column) { return kColumns[column].required; }

// How many columns a version has (its columns are the first ones of Column).
constexpr int ColumnCount(SchemaVersion version) {
  int count = 0;
  for (const ColumnSpec& spec : kColumns) count += spec.since <= version ? 1 : 0;
  return count;
}
// The same for a version number 1, 2 or 3; 0 otherwise.
constexpr int ColumnCount(int version) {
  return version >= 1 && version <= 3 ? ColumnCount(static_cast<SchemaVersion>(version)) : 0;
}

// A version's columns are a prefix of Column: a later column never comes in an earlier version.
constexpr bool ColumnsArePrefixes() {
  for (int c = 1; c < kNumColumns; ++c) {
    if (kColumns[c].since < kColumns[c - 1].since) return false;
  }
  return true;
}
static_assert(ColumnsArePrefixes(), "columns must be ordered by the version that introduced them");
static_assert(ColumnCount(SchemaVersion::kV1) == 6 && ColumnCount(SchemaVersion::kV2) == 10 &&
              ColumnCount(SchemaVersion::kV3) == kNumColumns);

// The version's columns in canonical order.
inline const std::vector<Column>& ColumnsOf(SchemaVersion version) {
  static const auto* const kPrefixes = [] {
    auto* prefixes = new std::array<std::vector<Column>, kSchemaVersions.size()>;
    for (size_t v = 0; v < kSchemaVersions.size(); ++v) {
      for (int c = 0; c < ColumnCount(kSchemaVersions[v]); ++c) (*prefixes)[v].push_back(static_cast<Column>(c));
    }
    return prefixes;
  }();
  return (*kPrefixes)[static_cast<int>(version) - 1];
}

// "v1", "v2", "v3".
constexpr absl::string_view SchemaVersionName(SchemaVersion version) {
  switch (version) {
    case SchemaVersion::kV1: return "v1";
    case SchemaVersion::kV2: return "v2";
    case SchemaVersion::kV3: return "v3";
  }
  return "v3";
}

// "v1", "v2" or "v3" to the version; nullopt otherwise.
inline std::optional<SchemaVersion> ParseSchemaVersion(absl::string_view text) {
  for (SchemaVersion version : kSchemaVersions) {
    if (text == SchemaVersionName(version)) return version;
  }
  return std::nullopt;
}

// The column with this header name (exact, lower case); -1 for none.
inline int FindColumn(absl::string_view name) {
  for (int c = 0; c < kNumColumns; ++c) {
    if (kColumns[c].name == name) return c;
  }
  return -1;
}

}  // namespace csv_schema
}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_CSV_SCHEMA_H_

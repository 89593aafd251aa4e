// The CSV schema versions of docs/rows.md and their columns.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_
#define ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ecomstream::generator {

enum class SchemaVersion : uint8_t { kV1 = 1, kV2 = 2, kV3 = 3 };

// Every column of the latest schema, in the canonical order of docs/rows.md: v1's six, then the
// four v2 adds, then the six v3 adds (so a version's columns are a prefix of this enum).
enum class Column : uint8_t {
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
};
inline constexpr int kNumColumns = 16;

// "event_id", ... as written in the header.
absl::string_view ColumnName(Column column);
// "v1", "v2", "v3".
absl::string_view SchemaVersionName(SchemaVersion version);
// The version's columns in canonical order.
const std::vector<Column>& ColumnsOf(SchemaVersion version);
bool HasColumn(SchemaVersion version, Column column);

// What --schema_version asks for: one version for every file, or a per-file choice ("mixed").
struct SchemaChoice {
  bool mixed = false;
  SchemaVersion version = SchemaVersion::kV3;
};
// "v1", "v2", "v3" or "mixed"; kInvalidArgument otherwise.
absl::StatusOr<SchemaChoice> ParseSchemaChoice(absl::string_view text);

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_

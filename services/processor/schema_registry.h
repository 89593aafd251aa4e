// schema_registry: recognises a file's schema version from its header and maps its columns onto
// the latest schema, v3 (docs/rows.md, "Schema versions").
//
// Thread-safe (stateless).
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_SCHEMA_REGISTRY_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_SCHEMA_REGISTRY_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ecomstream::processor {

// The v3 columns, in the order the tables in docs/rows.md list them.
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

// "event_id", "user_id", ... the header name of a column.
absl::string_view ColumnName(Column column);

struct Schema {
  int version = 0;      // 1, 2 or 3
  int field_count = 0;  // columns in the file's header
  // Index of each v3 column in the file's records, -1 when the version lacks it.
  std::array<int, kNumColumns> index{};
};

class SchemaRegistry {
 public:
  // Columns each version has: v1 6, v2 10, v3 16 (prefixes of the Column enum).
  static int ColumnCount(int version);
  // Recognises a header (names in any order, case-insensitive, surrounding ASCII space ignored)
  // that is exactly one version's column set. Otherwise kInvalidArgument with a message naming
  // the unknown, missing or repeated columns (it becomes the quarantine reason).
  static absl::StatusOr<Schema> Detect(const std::vector<absl::string_view>& header);
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_SCHEMA_REGISTRY_H_

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
#include "common/csv_schema.h"

namespace ecomstream::processor {

// The v3 columns and the header name of each, as common/csv_schema.h defines them.
using Column = csv_schema::Column;
using csv_schema::ColumnName;

struct Schema {
  int version = 0;      // 1, 2 or 3
  int field_count = 0;  // columns in the file's header
  // Index of each v3 column in the file's records, -1 when the version lacks it.
  std::array<int, Column::kNumColumns> index{};
};

class SchemaRegistry {
 public:
  // Recognises a header (names in any order, case-insensitive, surrounding ASCII space ignored)
  // that is exactly one version's column set. Otherwise kInvalidArgument with a message naming
  // the unknown, missing or repeated columns (it becomes the quarantine reason).
  static absl::StatusOr<Schema> Detect(const std::vector<absl::string_view>& header);
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_SCHEMA_REGISTRY_H_

// The CSV schema versions of docs/rows.md and their columns.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_
#define ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/csv_schema.h"

namespace ecomstream::generator {

enum class SchemaVersion : uint8_t { kV1 = 1, kV2 = 2, kV3 = 3 };

// Every column of the latest schema (common/csv_schema.h): a version's columns are a prefix.
using Column = csv_schema::Column;
using csv_schema::ColumnName;

// "v1", "v2", "v3".
absl::string_view SchemaVersionName(SchemaVersion version);
// The version's columns in canonical order.
const std::vector<Column>& ColumnsOf(SchemaVersion version);

// What --schema_version asks for: one version for every file, or a per-file choice ("mixed").
struct SchemaChoice {
  bool mixed = false;
  SchemaVersion version = SchemaVersion::kV3;
};
// "v1", "v2", "v3" or "mixed"; kInvalidArgument otherwise.
absl::StatusOr<SchemaChoice> ParseSchemaChoice(absl::string_view text);

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_

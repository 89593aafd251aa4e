// The generator's side of the CSV schema (common/csv_schema.h): the --schema_version choice.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_
#define ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/csv_schema.h"

namespace ecomstream::generator {

// The schema versions and their columns, as common/csv_schema.h defines them.
using csv_schema::Column;
using csv_schema::ColumnName;
using csv_schema::ColumnsOf;
using csv_schema::SchemaVersion;
using csv_schema::SchemaVersionName;

// What --schema_version asks for: one version for every file, or a per-file choice ("mixed").
struct SchemaChoice {
  bool mixed = false;
  SchemaVersion version = SchemaVersion::kV3;
};
// "v1", "v2", "v3" or "mixed"; kInvalidArgument otherwise.
absl::StatusOr<SchemaChoice> ParseSchemaChoice(absl::string_view text);

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_SCHEMA_H_

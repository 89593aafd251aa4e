#include "services/generator/schema.h"

#include "absl/strings/str_cat.h"

namespace ecomstream::generator {

absl::string_view SchemaVersionName(SchemaVersion version) {
  switch (version) {
    case SchemaVersion::kV1: return "v1";
    case SchemaVersion::kV2: return "v2";
    case SchemaVersion::kV3: return "v3";
  }
  return "v3";
}

const std::vector<Column>& ColumnsOf(SchemaVersion version) {
  static const auto* kColumns = [] {
    auto* columns = new std::vector<Column>[3];
    for (int v = 0; v < 3; ++v) {
      for (int c = 0; c < csv_schema::ColumnCount(v + 1); ++c) {
        columns[v].push_back(static_cast<Column>(c));
      }
    }
    return columns;
  }();
  return kColumns[static_cast<int>(version) - 1];
}

absl::StatusOr<SchemaChoice> ParseSchemaChoice(absl::string_view text) {
  if (text == "mixed") return SchemaChoice{true, SchemaVersion::kV3};
  for (SchemaVersion v : {SchemaVersion::kV1, SchemaVersion::kV2, SchemaVersion::kV3}) {
    if (text == SchemaVersionName(v)) return SchemaChoice{false, v};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--schema_version='", text, "' is not one of v1, v2, v3, mixed"));
}

}  // namespace ecomstream::generator

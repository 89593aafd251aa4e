#include "services/generator/schema.h"

#include "absl/strings/str_cat.h"

namespace ecomstream::generator {
namespace {

constexpr absl::string_view kColumnNames[kNumColumns] = {
    "event_id",  "user_id",  "event_type",   "product_id",  "price",   "event_time", "session_id", "category",
    "quantity",  "user_segment", "device_type", "browser", "geo_country", "geo_city", "referrer",   "campaign_id",
};

int ColumnCount(SchemaVersion version) {
  switch (version) {
    case SchemaVersion::kV1: return 6;
    case SchemaVersion::kV2: return 10;
    case SchemaVersion::kV3: return kNumColumns;
  }
  return kNumColumns;
}

}  // namespace

absl::string_view ColumnName(Column column) { return kColumnNames[static_cast<int>(column)]; }

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
      for (int c = 0; c < ColumnCount(static_cast<SchemaVersion>(v + 1)); ++c) {
        columns[v].push_back(static_cast<Column>(c));
      }
    }
    return columns;
  }();
  return kColumns[static_cast<int>(version) - 1];
}

bool HasColumn(SchemaVersion version, Column column) { return static_cast<int>(column) < ColumnCount(version); }

absl::StatusOr<SchemaChoice> ParseSchemaChoice(absl::string_view text) {
  if (text == "mixed") return SchemaChoice{true, SchemaVersion::kV3};
  for (SchemaVersion v : {SchemaVersion::kV1, SchemaVersion::kV2, SchemaVersion::kV3}) {
    if (text == SchemaVersionName(v)) return SchemaChoice{false, v};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--schema_version='", text, "' is not one of v1, v2, v3, mixed"));
}

}  // namespace ecomstream::generator

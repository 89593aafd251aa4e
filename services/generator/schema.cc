#include "services/generator/schema.h"

#include <optional>

#include "absl/strings/str_cat.h"

namespace ecomstream::generator {

absl::StatusOr<SchemaChoice> ParseSchemaChoice(absl::string_view text) {
  if (text == "mixed") return SchemaChoice{true, csv_schema::kLatestVersion};
  if (const std::optional<SchemaVersion> version = csv_schema::ParseSchemaVersion(text)) {
    return SchemaChoice{false, *version};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--schema_version='", text, "' is not one of v1, v2, v3, mixed"));
}

}  // namespace ecomstream::generator

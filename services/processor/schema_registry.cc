#include "services/processor/schema_registry.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ecomstream::processor {
namespace {

// Header names end up in a quarantine reason: keep them short and printable.
std::string Printable(absl::string_view name) {
  std::string out;
  for (char c : name.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

}  // namespace

absl::StatusOr<Schema> SchemaRegistry::Detect(const std::vector<absl::string_view>& header) {
  Schema schema;
  schema.index.fill(-1);
  schema.field_count = static_cast<int>(header.size());
  std::vector<std::string> unknown, repeated, missing;
  int highest = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(header[i]));
    const int column = csv_schema::FindColumn(name);
    if (column < 0) {
      unknown.push_back(Printable(name));
    } else if (schema.index[column] >= 0) {
      repeated.push_back(name);
    } else {
      schema.index[column] = static_cast<int>(i);
      highest = std::max(highest, column);
    }
  }
  // The first version that has every column named.
  for (csv_schema::SchemaVersion version : csv_schema::kSchemaVersions) {
    if (highest < csv_schema::ColumnCount(version)) {
      schema.version = static_cast<int>(version);
      break;
    }
  }
  if (schema.version != 0) {
    for (int c = 0; c < csv_schema::ColumnCount(schema.version); ++c) {
      if (schema.index[c] < 0) missing.push_back(std::string(ColumnName(static_cast<Column>(c))));
    }
  }
  if (unknown.empty() && repeated.empty() && missing.empty() && schema.version != 0) return schema;
  std::string message = "header matches no schema version (v1, v2 or v3)";
  if (!unknown.empty()) absl::StrAppend(&message, "; unknown columns: ", absl::StrJoin(unknown, ", "));
  if (!repeated.empty()) absl::StrAppend(&message, "; repeated columns: ", absl::StrJoin(repeated, ", "));
  if (!missing.empty()) {
    absl::StrAppend(&message, "; missing for v", schema.version, ": ", absl::StrJoin(missing, ", "));
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace ecomstream::processor

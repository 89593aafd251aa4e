#include "tests/e2e/e2e_util.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ecomstream::testing {

absl::Status CopyFileAtomically(const std::string& from, const std::string& to) {
  auto content = ReadFileToString(from);
  if (!content.ok()) return content.status();
  const size_t slash = to.rfind('/');
  if (slash == std::string::npos) return WriteFileAtomically(".", to, *content);
  return WriteFileAtomically(to.substr(0, slash), to.substr(slash + 1), *content);
}

absl::StatusOr<GeneratorSummary> ReadGeneratorSummary(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  google::protobuf::Struct doc;
  auto parsed = google::protobuf::util::JsonStringToMessage(*text, &doc);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.ToString()));
  const auto& fields = doc.fields();
  GeneratorSummary summary;
  const std::pair<const char*, int64_t*> required[] = {
      {"events_written", &summary.events_written},
      {"files", &summary.files},
      {"valid_distinct_events", &summary.valid_distinct_events},
      {"expected_dead_letters", &summary.expected_dead_letters},
      {"exact_duplicates", &summary.exact_duplicates},
      {"late_events", &summary.late_events},
  };
  for (const auto& [name, out] : required) {
    auto it = fields.find(name);
    if (it == fields.end() || it->second.kind_case() != google::protobuf::Value::kNumberValue) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no numeric field ", name, " in ", *text));
    }
    *out = static_cast<int64_t>(it->second.number_value());
  }
  auto anomalies = fields.find("anomalies");
  if (anomalies != fields.end() && anomalies->second.kind_case() == google::protobuf::Value::kStructValue) {
    for (const auto& [kind, value] : anomalies->second.struct_value().fields()) {
      summary.anomalies[kind] = static_cast<int64_t>(value.number_value());
    }
  }
  return summary;
}

}  // namespace ecomstream::testing

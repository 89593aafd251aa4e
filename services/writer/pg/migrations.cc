#include "services/writer/pg/migrations.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace ecomstream::writer {

absl::StatusOr<std::vector<Migration>> ParseMigrations(const std::vector<SqlFile>& files) {
  std::vector<Migration> migrations;
  for (const SqlFile& file : files) {
    const absl::string_view name = file.name;
    const size_t underscore = name.find('_');
    int version = 0;
    if (underscore == absl::string_view::npos || underscore == 0 || !absl::EndsWith(name, ".sql") ||
        !std::all_of(name.begin(), name.begin() + underscore, absl::ascii_isdigit) ||
        !absl::SimpleAtoi(name.substr(0, underscore), &version) || version < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration file '", name, "' is not named NNN_description.sql with NNN >= 1"));
    }
    migrations.push_back(Migration{version, std::string(name), file.sql, Sha256Hex(file.sql)});
  }
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version == migrations[i - 1].version) {
      return absl::InvalidArgumentError(absl::StrCat("migrations '", migrations[i - 1].name, "' and '",
                                                     migrations[i].name, "' share version ",
                                                     migrations[i].version));
    }
  }
  return migrations;
}

absl::StatusOr<std::vector<Migration>> EmbeddedMigrations() { return ParseMigrations(EmbeddedSqlFiles()); }

}  // namespace ecomstream::writer

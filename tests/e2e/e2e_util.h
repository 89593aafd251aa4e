// Helpers for tests that run the real binaries: copying files into a watched directory, and the
// generator's --summary_file. Processes (BinPath, Process), waits, temporary directories, files
// and ports come from tests/testing/ (included here); PostgreSQL from tests/pg_fixture.h.
#ifndef ECOMSTREAM_TESTS_E2E_E2E_UTIL_H_
#define ECOMSTREAM_TESTS_E2E_E2E_UTIL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/testing/files.h"
#include "tests/testing/ports.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace ecomstream::testing {

// Copies a file (mode 0644) through WriteFileAtomically (a temp file in the destination's .tmp/, then a
// rename), so a directory watcher never sees it half-written.
absl::Status CopyFileAtomically(const std::string& from, const std::string& to);

// The generator's --summary_file (docs/design.md, "Files").
struct GeneratorSummary {
  int64_t events_written = 0;
  int64_t files = 0;
  int64_t valid_distinct_events = 0;
  int64_t expected_dead_letters = 0;
  int64_t exact_duplicates = 0;
  int64_t late_events = 0;
  std::map<std::string, int64_t> anomalies;
};
// kInvalidArgument if the JSON is malformed or a required field is missing.
absl::StatusOr<GeneratorSummary> ReadGeneratorSummary(const std::string& path);

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_E2E_E2E_UTIL_H_

// Reading files and listing directories in test checks.
#ifndef ECOMSTREAM_TESTS_TESTING_FILES_H_
#define ECOMSTREAM_TESTS_TESTING_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ecomstream::testing {

// The whole file; kNotFound if it cannot be read.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Names (not paths) of the regular files in `dir` that end in `suffix` and do not start with a
// dot, sorted. Empty if the directory does not exist.
std::vector<std::string> ListFiles(const std::string& dir, absl::string_view suffix = "");

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_TESTING_FILES_H_

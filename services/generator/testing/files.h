// Test-only filesystem helpers shared by the generator's tests.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_TESTING_FILES_H_
#define ECOMSTREAM_SERVICES_GENERATOR_TESTING_FILES_H_

#include <string>
#include <vector>

namespace ecomstream::generator::testing {

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// The entry names of `dir` (without "." and ".."), sorted; empty when it cannot be read.
std::vector<std::string> ListDir(const std::string& dir);
// A path under this test process's scratch directory (removed at exit) unique to `name`, removed
// if present (not created).
std::string FreshPath(const std::string& name);

}  // namespace ecomstream::generator::testing

#endif  // ECOMSTREAM_SERVICES_GENERATOR_TESTING_FILES_H_

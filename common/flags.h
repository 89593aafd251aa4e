// Command-line parsing shared by the three binaries.
//
// ParseCommandLineWithEnv sets every ecomstream flag from ECOMSTREAM_<FLAG> (upper case) in the
// environment, then parses the command line, so a flag given there wins over the environment. A malformed
// environment value is an error naming the variable; the caller prints it and exits 2.
#ifndef ECOMSTREAM_COMMON_FLAGS_H_
#define ECOMSTREAM_COMMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ecomstream {

// `text` for one line on stderr: control characters (a newline in a hostile flag value) become
// \n or \xNN.
std::string OneLine(absl::string_view text);

// Returns the environment variable name for a flag: "pg_dsn" -> "ECOMSTREAM_PG_DSN".
std::string EnvVarForFlag(absl::string_view flag_name);

// Sets flags from ECOMSTREAM_<FLAG> variables. Call before absl::ParseCommandLine. Only flags defined
// in this repository's sources (common/, services/, tests/ and bench/) are considered. `environ_lookup` is
// std::getenv by default; tests pass their own.
absl::Status ApplyEnvironmentOverrides(const char* (*environ_lookup)(const char*) = nullptr);

// absl::ParseCommandLine + ApplyEnvironmentOverrides + usage text. On a bad environment value
// prints one line "<program>: <error>" to stderr and exits 2 (a malformed command-line value is
// absl::ParseCommandLine's own error and exit code). Returns positional arguments.
std::vector<char*> ParseCommandLineWithEnv(int argc, char** argv, absl::string_view usage);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_FLAGS_H_

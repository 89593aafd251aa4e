// Command-line parsing shared by the three binaries.
//
// ParseCommandLineWithEnv sets every ecomstream flag from ECOMSTREAM_<FLAG> (upper case) in the
// environment, then parses the command line, so a flag given there wins over the environment. A malformed
// environment or command-line value is an error naming the variable or flag: one line, exit 2.
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

// Checks the command line's values for this repository's flags (--NAME=VALUE and --NAME VALUE;
// a boolean --NAME or --noNAME takes none) and that every flag named exists, before
// absl::ParseCommandLine, whose own errors exit 1. Arguments after a bare "--" are positional;
// absl's flags (--help, --flagfile, ...) and, with --undefok, unknown names are left to absl.
absl::Status CheckCommandLineValues(int argc, char** argv);

// ApplyEnvironmentOverrides + CheckCommandLineValues + absl::ParseCommandLine + usage text. On a
// bad environment or command-line value, or an unknown flag, prints one line "<program>: <error>"
// to stderr and exits 2. Returns positional arguments.
std::vector<char*> ParseCommandLineWithEnv(int argc, char** argv, absl::string_view usage);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_FLAGS_H_

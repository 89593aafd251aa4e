#include "common/flags.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace ecomstream {
namespace {

const char* DefaultLookup(const char* name) { return std::getenv(name); }

// Whether a flag defined in `file` is one of this repository's (as opposed to a library's).
// Flags absl's parser handles itself, which absl::FindCommandLineFlag does not know.
bool IsAbslBuiltinFlag(absl::string_view name) {
  for (const absl::string_view builtin : {"help", "helpfull", "helpshort", "helppackage", "helpmatch", "version",
                                          "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
    if (name == builtin) return true;
  }
  return false;
}

bool IsOurFlagFile(absl::string_view file) {
  return absl::StrContains(file, "services/") || absl::StrContains(file, "common/") ||
         absl::StrContains(file, "tests/") || absl::StrContains(file, "bench/");
}

}  // namespace

absl::Status CheckCommandLineValues(int argc, char** argv) {
  const bool undefined_allowed = std::any_of(argv + std::min(argc, 1), argv + argc, [](const char* arg) {
    return absl::StartsWith(arg, "--undefok") || absl::StartsWith(arg, "-undefok");
  });
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;  // the rest is positional
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    if (arg.empty()) continue;
    const size_t equals = arg.find('=');
    const absl::string_view name = arg.substr(0, equals);
    if (IsAbslBuiltinFlag(name)) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      absl::string_view negated = name;
      if (equals == absl::string_view::npos && absl::ConsumePrefix(&negated, "no")) {
        const absl::CommandLineFlag* positive = absl::FindCommandLineFlag(negated);
        if (positive != nullptr && positive->IsOfType<bool>()) continue;  // --noNAME
      }
      if (undefined_allowed) continue;  // absl decides with --undefok's list
      return absl::InvalidArgumentError(absl::StrCat("Unknown command-line flag --", name));
    }
    if (!IsOurFlagFile(flag->Filename())) continue;  // absl's own: --help, --flagfile, ...
    std::string value;
    if (equals != absl::string_view::npos) {
      value = std::string(arg.substr(equals + 1));
    } else if (flag->IsOfType<bool>()) {
      continue;  // --NAME alone sets a boolean
    } else if (i + 1 < argc) {
      value = argv[++i];  // --NAME VALUE
    } else {
      return absl::InvalidArgumentError(absl::StrCat("Command-line flag --", name, " has no value"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Command-line flag --", name, "='", value, "' is not valid: ", error));
    }
  }
  return absl::OkStatus();
}

std::string OneLine(absl::string_view text) {
  std::string line;
  line.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      line += "\\n";
    } else if (byte < 0x20 || byte == 0x7f) {
      line += absl::StrFormat("\\x%02x", byte);
    } else {
      line += c;
    }
  }
  return line;
}

std::string EnvVarForFlag(absl::string_view flag_name) {
  return absl::StrCat("ECOMSTREAM_", absl::AsciiStrToUpper(flag_name));
}

absl::Status ApplyEnvironmentOverrides(const char* (*environ_lookup)(const char*)) {
  if (environ_lookup == nullptr) environ_lookup = &DefaultLookup;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsOurFlagFile(flag->Filename())) continue;
    const std::string var = EnvVarForFlag(name);
    const char* value = environ_lookup(var.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Environment variable ", var, "='", value, "' is not a valid --", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

std::vector<char*> ParseCommandLineWithEnv(int argc, char** argv, absl::string_view usage) {
  absl::SetProgramUsageMessage(usage);
  // absl's --help lists only flags of a file named after the program ("No flags matched." for
  // services/*/main.cc): list this repository's flags instead.
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = IsOurFlagFile;
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  // Environment first, so that the command line, parsed after it, wins.
  absl::Status status = ApplyEnvironmentOverrides();
  if (status.ok()) status = CheckCommandLineValues(argc, argv);
  if (!status.ok()) {
    // One line, even when the value holds a newline: "<program>: Environment variable ...".
    absl::string_view program = argc > 0 ? argv[0] : "";
    program.remove_prefix(std::min(program.size(), program.rfind('/') + 1));
    std::fprintf(stderr, "%s: %s\n", std::string(program).c_str(), OneLine(status.message()).c_str());
    std::exit(2);
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace ecomstream

#include "tests/testing/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "tests/testing/process.h"

namespace ecomstream::testing {

std::string TmpRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

TempDir::TempDir(absl::string_view prefix) {
  std::string tmpl = absl::StrCat(TmpRoot(), "/ecomstream-", prefix, "-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp(%s) failed: %s\n", tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::getenv("ECOMSTREAM_KEEP_TEST_DIRS") != nullptr) {
    std::fprintf(stderr, "Kept test directory %s\n", path_.c_str());
    return;
  }
  RunCommand({"rm", "-rf", path_});
}

std::string TempDir::File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

std::string TempDir::Subdir(absl::string_view name) const {
  std::string dir = File(name);
  RunCommand({"mkdir", "-p", dir});
  return dir;
}

const std::string& ScratchDir() {
  // A function-local static: destroyed (directory removed) at normal exit.
  static const TempDir dir("scratch");
  return dir.path();
}

}  // namespace ecomstream::testing

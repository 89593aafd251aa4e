#include "services/generator/testing/files.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "tests/testing/files.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::generator::testing {

std::string ReadFile(const std::string& path) { return ::ecomstream::testing::ReadFileToString(path).value_or(""); }

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string FreshPath(const std::string& name) {
  const std::string path = absl::StrCat(::ecomstream::testing::ScratchDir(), "/generator_", name);
  (void)std::system(absl::StrCat("rm -rf '", path, "'").c_str());
  return path;
}

}  // namespace ecomstream::generator::testing

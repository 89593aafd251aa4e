// Temporary directories a test owns: created with mkdtemp under $TMPDIR (or /tmp), removed with
// their contents afterwards, so no two tests (or two runs) ever share a file name.
//
//   TempDir dir;                                   // one per test (or per fixture)
//   std::string cert = dir.File("cert.pem");        // <dir>/cert.pem
//   std::string inbox = dir.Subdir("inbox");        // created
//
//   std::string scratch = ScratchDir();            // this process's directory, removed at exit
//
// Set ECOMSTREAM_KEEP_TEST_DIRS=1 to keep them for a post-mortem (their paths go to stderr).
#ifndef ECOMSTREAM_TESTS_TESTING_TEMP_DIR_H_
#define ECOMSTREAM_TESTS_TESTING_TEMP_DIR_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ecomstream::testing {

class TempDir {
 public:
  // A fresh directory ecomstream-<prefix>-XXXXXX under $TMPDIR (or /tmp); aborts if mkdtemp fails.
  explicit TempDir(absl::string_view prefix = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name (not created).
  std::string File(absl::string_view name) const;
  // path()/name, created (with parents) if missing.
  std::string Subdir(absl::string_view name) const;

 private:
  std::string path_;
};

// A directory private to this process, created on first use and removed at normal exit. The
// tests of one process run one after another: a test that uses a fixed name under it starts by
// removing what an earlier test of the binary left there.
const std::string& ScratchDir();

// $TMPDIR, or /tmp when it is unset or empty.
std::string TmpRoot();

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_TESTING_TEMP_DIR_H_

// The PostgreSQL cluster of a ctest run (the pg_cluster fixture in tests/CMakeLists.txt):
//
//   test_pg start INFO_PATH   starts a cluster under $TMPDIR, writes INFO_PATH for the tests
//                             (with a copy of its fresh initdb output, see StartOptions)
//   test_pg stop INFO_PATH    stops it and removes its directory and INFO_PATH
//
// `start` first stops a cluster a killed earlier run left behind at INFO_PATH.
#include <cstdio>
#include <cstring>
#include <string>

#include "tests/pg_fixture.h"

int main(int argc, char** argv) {
  using ::ecomstream::testing::PgCluster;
  if (argc != 3 || (std::strcmp(argv[1], "start") != 0 && std::strcmp(argv[1], "stop") != 0)) {
    std::fprintf(stderr, "Usage: %s start|stop INFO_PATH\n", argv[0]);
    return 2;
  }
  const std::string info = argv[2];
  absl::Status stopped = PgCluster::StopFromInfo(info);
  if (!stopped.ok()) {
    std::fprintf(stderr, "Cannot stop the test cluster of %s: %s\n", info.c_str(), stopped.ToString().c_str());
    return 1;
  }
  if (std::strcmp(argv[1], "stop") == 0) {
    std::printf("Test cluster stopped info=%s\n", info.c_str());
    return 0;
  }
  ::ecomstream::testing::StartOptions options;
  options.keep_initdb_copy = true;  // for the tests that start a cluster of their own
  auto cluster = PgCluster::Start(options);
  if (!cluster.ok()) {
    std::fprintf(stderr, "Cannot start the test cluster: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  absl::Status written = (*cluster)->WriteInfo(info);
  if (!written.ok()) {
    std::fprintf(stderr, "%s\n", written.ToString().c_str());
    return 1;
  }
  std::printf("Test cluster started port=%d dir=%s info=%s\n", (*cluster)->port(), (*cluster)->dir().c_str(),
              info.c_str());
  return 0;
}

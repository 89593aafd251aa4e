#include "tests/testing/ports.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"

namespace ecomstream::testing {
namespace {

std::string LockDir() {
  const char* dir = std::getenv("ECOMSTREAM_TEST_PORT_LOCKS");
  return dir != nullptr && *dir != '\0' ? dir : "/tmp/ecomstream-port-locks";
}

// A port the kernel picks for 127.0.0.1:0 (bound, then released); 0 on error.
int EphemeralPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Takes the lock file of `port` for the life of the process (the descriptor stays open).
bool LockPort(const std::string& dir, int port) {
  const std::string path = absl::StrCat(dir, "/", port, ".lock");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  return true;  // fd deliberately kept: the lock lasts until this process exits
}

}  // namespace

int FreePort() {
  static std::mutex mu;
  static std::set<int>* handed_out = new std::set<int>();
  std::lock_guard<std::mutex> lock(mu);
  const std::string dir = LockDir();
  // Shared by every user that runs tests: world-writable and sticky, like /tmp.
  if (::mkdir(dir.c_str(), 01777) == 0) ::chmod(dir.c_str(), 01777);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = EphemeralPort();
    if (port == 0 || handed_out->count(port) > 0) continue;
    if (!LockPort(dir, port)) continue;
    handed_out->insert(port);
    return port;
  }
  std::fprintf(stderr, "FreePort: cannot reserve a port (lock files in %s): %s\n", dir.c_str(), std::strerror(errno));
  std::abort();
}

}  // namespace ecomstream::testing

#include "services/writer/config.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_server.h"

namespace ecomstream::writer {
namespace {

absl::Status CheckReadable(absl::string_view flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", path, ": file does not exist or is not readable"));
  }
  return absl::OkStatus();
}

absl::Status CheckRange(absl::string_view flag, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, " is out of range [", min, ", ", max, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status WriterConfig::Validate() const {
  auto listen = SplitHostPort(listen_address);
  if (!listen.ok()) return absl::InvalidArgumentError(absl::StrCat("--listen_address: ", listen.status().message()));
  if (!tls() && !allow_insecure_remote && !IsLoopbackHost(listen->first)) {
    return absl::InvalidArgumentError(absl::StrCat("--listen_address=", listen_address,
                                                   " is not a loopback address: serve it with --tls_cert/--tls_key "
                                                   "or pass --allow_insecure_remote"));
  }
  if (!metrics_address.empty()) {
    auto metrics = SplitHostPort(metrics_address);
    if (!metrics.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--metrics_address: ", metrics.status().message()));
    }
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key must be given together");
  }
  if (!tls_client_ca.empty() && !tls()) {
    return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key (mTLS is TLS first)");
  }
  for (const auto& [flag, path] : {std::pair<absl::string_view, const std::string&>{"tls_cert", tls_cert},
                                   {"tls_key", tls_key},
                                   {"tls_client_ca", tls_client_ca}}) {
    if (absl::Status status = CheckReadable(flag, path); !status.ok()) return status;
  }
  if (absl::Status s = CheckRange("pg_max_connections", pg_max_connections, 1, 1000); !s.ok()) return s;
  if (absl::Status s = CheckRange("max_message_bytes", max_message_bytes, 4096, 1 << 30); !s.ok()) return s;
  if (absl::Status s = CheckRange("lease_seconds", lease_seconds, 1, 86400); !s.ok()) return s;
  if (absl::Status s = CheckRange("keepalive_seconds", keepalive_seconds, 1, 86400); !s.ok()) return s;
  if (absl::Status s = CheckRange("max_connection_age_seconds", max_connection_age_seconds, 1, 86400 * 30); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("migrate_timeout_seconds", migrate_timeout_seconds, 0, 3600); !s.ok()) return s;
  if (absl::Status s = CheckRange("drain_seconds", drain_seconds, 0, 3600); !s.ok()) return s;
  if (absl::Status s = CheckRange("commit_lanes", commit_lanes, 1, kMaxCommitLanes); !s.ok()) return s;
  return absl::OkStatus();
}

}  // namespace ecomstream::writer

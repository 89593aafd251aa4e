#include "services/processor/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace ecomstream::processor {
namespace {

constexpr size_t kMaxBatchBytes = 3 << 20;  // gRPC's default receive limit is 4 MiB

// True when `path` exists and is not a directory (a missing one is created by Run).
bool ExistsAndIsNotADirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

}  // namespace

absl::Status ProcessorConfig::Validate() const {
  if (input_dir.empty()) return Invalid("--input_dir is required");
  if (ExistsAndIsNotADirectory(input_dir)) {
    return Invalid(absl::StrCat("--input_dir ", input_dir, " exists and is not a directory"));
  }
  if (!delete_after_commit && archive_dir.empty()) {
    return Invalid("--archive_dir is required (or --delete_after_commit)");
  }
  if (quarantine_dir.empty()) return Invalid("--quarantine_dir is required");
  if (archive_dir == input_dir || quarantine_dir == input_dir) {
    return Invalid("--archive_dir and --quarantine_dir must differ from --input_dir");
  }
  if (instance_id.empty()) return Invalid("--instance_id must not be empty");
  if (rescan_interval <= absl::ZeroDuration()) return Invalid("--rescan_interval must be positive");
  if (claim_lease < absl::Seconds(1)) return Invalid("--claim_lease must be at least 1s");
  if (drain_timeout < absl::ZeroDuration()) return Invalid("--drain_timeout must not be negative");
  if (archive_retention < absl::ZeroDuration()) return Invalid("--archive_retention must not be negative");
  if (failed_file_retry <= absl::ZeroDuration()) return Invalid("--file_retry_interval must be positive");
  if (job.batch.max_rows < 1 || job.batch.max_rows > 1000000) return Invalid("--batch_rows must be in 1..1000000");
  if (job.batch.max_bytes < (64 << 10) || job.batch.max_bytes > kMaxBatchBytes) {
    return Invalid(absl::StrCat("--batch_bytes must be in 65536..", kMaxBatchBytes,
                                " (gRPC refuses messages over 4 MiB)"));
  }
  if (job.batch.linger < absl::ZeroDuration()) return Invalid("--linger must not be negative");
  if (job.csv.max_row_bytes < 256 || job.csv.max_row_bytes > (1 << 20)) {
    return Invalid("--max_row_bytes must be in 256..1048576");
  }
  if (job.csv.max_row_bytes * 2 > job.batch.max_bytes) {
    return Invalid("--batch_bytes must be at least twice --max_row_bytes");
  }
  if (job.late_after_us < 0) return Invalid("--late_after must not be negative");
  if (job.max_future_us < 0) return Invalid("--max_future must not be negative");
  if (writer_address.empty() || writer_address.find(':') == std::string::npos) {
    return Invalid(absl::StrCat("--writer_address \"", writer_address, "\" is not host:port"));
  }
  if (tls.cert.empty() != tls.key.empty()) return Invalid("--tls_cert and --tls_key go together (mTLS)");
  for (const std::string* file : {&tls.ca, &tls.cert, &tls.key}) {
    if (!file->empty() && ::access(file->c_str(), R_OK) != 0) {
      return Invalid(absl::StrCat("TLS file ", *file, " is not readable"));
    }
  }
  if (writer.max_in_flight < 1 || writer.max_in_flight > 1024) return Invalid("--max_in_flight must be in 1..1024");
  if (writer.rpc_timeout <= absl::ZeroDuration()) return Invalid("--rpc_timeout must be positive");
  if (writer.ack_timeout <= absl::ZeroDuration()) return Invalid("--ack_timeout must be positive");
  return absl::OkStatus();
}

}  // namespace ecomstream::processor

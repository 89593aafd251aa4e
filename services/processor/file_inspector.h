// file_inspector: the pre-pass over a file before anything about it is sent: its fingerprint
// (SHA-256 of the bytes, the file_id of ClaimFile), its schema version from the header, and, when
// a manifest `NAME.csv.manifest.json` is present, the check that the bytes are the ones the
// generator wrote. Only the header is parsed: the rest of the file is hashed, not scanned as CSV
// (the load is the one pass that splits it into records). The row count is therefore known up
// front only from a manifest whose SHA-256 the bytes match; otherwise the load counts the rows,
// and checks them against a manifest's count when there is one.
//
// A file that cannot be loaded as it is gets a quarantine reason instead of an error: unknown or
// malformed header, no header at all, a name that is not UTF-8, an unreadable manifest, or a
// manifest that disagrees with the file (truncated or altered). Errors are for I/O only:
// kNotFound when the file vanished (another processor took it), others from the filesystem.
//
// Memory is bounded by the CSV reader's buffer and one read buffer. Thread-safe.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_FILE_INSPECTOR_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_FILE_INSPECTOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/trace_context.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/processor/csv_reader.h"
#include "services/processor/schema_registry.h"

namespace ecomstream::processor {

// The largest manifest read; a bigger one is not a manifest the generator wrote.
inline constexpr size_t kMaxManifestBytes = 1 << 20;

inline constexpr int64_t kRowsUnknown = -1;

struct FileFacts {
  std::string name;
  std::string path;
  std::string file_id;  // "sha256:<64 lower-case hex>"
  int64_t size_bytes = 0;
  int64_t mtime_us = 0;
  Schema schema;        // valid unless quarantined
  // Data rows (records after the header) when known before loading: from a manifest the bytes
  // match. kRowsUnknown otherwise; the load counts them.
  int64_t rows = 0;
  bool has_manifest = false;
  v1::FileManifest manifest;
  // docs/rows.md "reference time": manifest created_time_us, else the mtime.
  int64_t reference_time_us = 0;
  // The manifest's traceparent; invalid without one (or when malformed).
  tracing::TraceContext parent_trace;
  // Non-empty: the file must go to quarantine with this reason, and must not be claimed.
  std::string quarantine_reason;
};

absl::StatusOr<FileFacts> InspectFile(const std::string& dir, const std::string& name,
                                      const CsvReaderOptions& csv_options);

// Parses an empty manifest and hashes nothing: the first JSON parse builds protobuf's type tables
// and the first SHA-256 loads OpenSSL's default provider (~2 ms), which the processor does at
// start rather than in the first file's latency. Changes nothing else; safe to call again.
void WarmUpInspector();

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_FILE_INSPECTOR_H_

// The sink: drops CSV files into the output directory atomically, each with its manifest
// (DESIGN.md, input contract).
//
// While a file is open its bytes go to OUTPUT/.tmp/NAME (same filesystem). Commit() fsyncs
// it, writes NAME.manifest.json atomically (.tmp, fsync, rename, directory fsync) and only
// then renames the CSV into place and fsyncs the directory, so a reader never sees a partial
// file under a final name nor a CSV before its manifest. On any error nothing is left under
// a final name: the temp file is removed and a manifest already renamed is unlinked again.
//
// Errors (absl::Status): kResourceExhausted for a full disk or quota, kPermissionDenied,
// kNotFound, kFailedPrecondition (output path is not a directory), kInternal. Not thread-safe.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_CSV_FILE_SINK_H_
#define ECOMSTREAM_SERVICES_GENERATOR_CSV_FILE_SINK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::generator {

// The manifest as protobuf JSON (field names as in the .proto), byte-identical for equal
// messages: map entries are written in key order.
absl::StatusOr<std::string> ManifestJson(const v1::FileManifest& manifest);

class CsvFileSink {
 public:
  struct Options {
    std::string output_dir;
    bool write_manifests = true;
  };
  struct Stats {
    int64_t files = 0;    // committed
    int64_t bytes = 0;    // committed CSV bytes
    int64_t failed = 0;   // files abandoned on an error
  };

  explicit CsvFileSink(Options options);
  ~CsvFileSink();

  // Creates the output directory and OUTPUT/.tmp/ and removes temp files a crashed run left
  // there. Returns how many were removed.
  absl::StatusOr<int> Start();
  // Starts OUTPUT/.tmp/`name` (a base name ending in ".csv"). kFailedPrecondition if a file is
  // already open.
  absl::Status Open(const std::string& name);
  absl::Status Append(absl::string_view data);
  // Completes `manifest` with file_name, sha256 and size_bytes, writes it (unless manifests are
  // off), then renames the CSV into place; its mtime is set to `created_time_us` (the
  // processor's reference time for a file without a manifest). The caller sets the rest.
  absl::Status Commit(v1::FileManifest* manifest, int64_t created_time_us);
  // Drops the open file (if any) and its temp file.
  void Abort();

  bool is_open() const { return writer_ != nullptr; }
  const Stats& stats() const { return stats_; }
  const std::string& temp_dir() const { return temp_dir_; }

 private:
  absl::Status Fail(absl::Status status);

  Options options_;
  std::string temp_dir_;
  std::string name_;
  std::unique_ptr<AtomicFileWriter> writer_;
  std::unique_ptr<Sha256> sha_;
  Stats stats_;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_CSV_FILE_SINK_H_

// The sink: drops CSV files into the output directory atomically, each with its manifest
// (docs/design.md, "Files").
//
// While a file is open its bytes go to OUTPUT/.tmp/NAME (same filesystem). Commit() fsyncs
// it, writes NAME.manifest.json atomically (.tmp, fsync, rename, directory fsync) and only
// then renames the CSV into place and fsyncs the directory, so a reader never sees a partial
// file under a final name nor a CSV before its manifest. On any error nothing is left under
// a final name: the temp file is removed and a manifest already renamed is unlinked again.
//
// With Options::background, Open/Append/Commit only queue their work, in order, for one I/O
// thread (writes, SHA-256, fsyncs, renames), so the caller generates the next file while the
// last one is synced and dropped; Append waits while max_queued_bytes are queued. The contract
// above holds as it is; a file is in place when its Commit's `committed` callback runs (on the
// I/O thread), and everything queued is when Flush() returns. The first error stops the sink:
// every later call (and Flush) returns it, and nothing of the failed file is left.
//
// Errors (absl::Status): kResourceExhausted for a full disk or quota, kPermissionDenied,
// kNotFound, kFailedPrecondition (output path is not a directory), kInternal. Not thread-safe
// (one caller thread; stats() and the callbacks excepted).
#ifndef ECOMSTREAM_SERVICES_GENERATOR_CSV_FILE_SINK_H_
#define ECOMSTREAM_SERVICES_GENERATOR_CSV_FILE_SINK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
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
    bool background = false;              // see above
    size_t max_queued_bytes = 16 << 20;   // with background: Append waits above this
  };
  // Runs once the file is in place, with its completed manifest (on the I/O thread with
  // background, else before Commit returns).
  using Committed = std::function<void(const v1::FileManifest& manifest)>;
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
  // processor's reference time for a file without a manifest). The caller sets the rest. With
  // background the completed manifest goes to `committed` only (*manifest is not changed).
  absl::Status Commit(v1::FileManifest* manifest, int64_t created_time_us, Committed committed = nullptr);
  // Waits until everything queued is done; the first error, if any. (Without background: OK.)
  absl::Status Flush();
  // Drops the open file (if any) and its temp file; files committed before it still land.
  void Abort();

  bool is_open() const { return open_; }
  // Bytes appended to the open file so far.
  int64_t open_bytes() const { return open_bytes_; }
  Stats stats() const;
  const std::string& temp_dir() const { return temp_dir_; }

 private:
  // The synchronous steps (the I/O thread's with background).
  absl::Status DoOpen(const std::string& name);
  absl::Status DoAppend(absl::string_view data);
  absl::Status DoCommit(v1::FileManifest* manifest, int64_t created_time_us);
  void DoAbort();
  absl::Status Fail(absl::Status status);
  // Passes `status` on; an error closes the caller's file.
  absl::Status Closed(absl::Status status);
  // With background: queues `work` (run on the I/O thread unless an error came first) and
  // returns the first error so far.
  absl::Status Queue(std::function<absl::Status()> work, size_t bytes);
  void IoLoop();

  Options options_;
  std::string temp_dir_;
  bool open_ = false;       // the caller's view
  int64_t open_bytes_ = 0;  // the caller's view
  // The I/O side (the I/O thread's with background).
  std::string name_;
  std::unique_ptr<AtomicFileWriter> writer_;
  std::unique_ptr<Sha256> sha_;

  mutable absl::Mutex mu_;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::function<absl::Status()>, size_t>> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // the I/O thread runs a step
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread io_thread_;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_CSV_FILE_SINK_H_

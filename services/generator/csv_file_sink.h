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
// thread (writes, SHA-256, the manifest's JSON), so the caller generates the next file while
// the last one is written; Append waits while max_queued_bytes are queued. A written file goes
// on to a second thread, the publisher, which makes files durable and visible in order, a group
// at a time: every file of the group (CSV and manifest temp files) is fsynced, then the
// manifests are renamed into place, the directory fsynced, then the CSVs renamed, the directory
// fsynced. So each file keeps the contract above (a final name only for fsynced bytes, the
// manifest's rename durable before its CSV's) while a slow disk costs two directory fsyncs per
// group rather than per file, and the I/O thread writes file N+1 while file N is being synced.
// A file is in place when its Commit's `committed` callback runs (on the publisher), and
// everything queued is when Flush() returns. The first error stops the sink: every later call
// (and Flush) returns it, nothing of the failed file (nor of the files committed after it) is
// left, and the files of its group committed before it still land.
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
#include <vector>

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
    size_t max_sealed_files = 16;         // with background: written files waiting to be published
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
  // The same for a caller's buffer: with background its bytes are handed over, not copied, and
  // *data comes back empty, holding an earlier buffer's capacity for reuse.
  absl::Status Append(std::string* data);
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
  // A file the I/O side has written and completed, to be made durable and visible.
  struct Sealed {
    std::string name;
    std::unique_ptr<AtomicFileWriter> csv;            // written, not yet synced
    std::unique_ptr<AtomicFileWriter> manifest_file;  // the publisher's; null without manifests
    v1::FileManifest manifest;                        // completed
    std::string manifest_json;                        // empty without manifests
    Committed committed;
  };

  // The synchronous steps (the I/O thread's with background).
  absl::Status DoOpen(const std::string& name);
  absl::Status DoAppend(absl::string_view data);
  // Completes the manifest and hands the open file over (the writer is closed to new data).
  absl::StatusOr<Sealed> DoSeal(v1::FileManifest* manifest, int64_t created_time_us);
  // With background: queues a sealed file for the publisher (waits while max_sealed_files are).
  absl::Status QueueSealed(Sealed sealed);
  // Makes `group` durable and visible in order (see above), then runs the callbacks. On an error
  // the files before the failed one land, the failed one and the rest are removed.
  absl::Status PublishGroup(std::vector<Sealed>& group);
  void DoAbort();
  absl::Status Fail(absl::Status status);
  // Passes `status` on; an error closes the caller's file.
  absl::Status Closed(absl::Status status);
  // With background: queues `work` (run on the I/O thread unless an error came first) and
  // returns the first error so far.
  absl::Status Queue(std::function<absl::Status()> work, size_t bytes);
  void IoLoop();
  void PublishLoop();
  // Keeps an appended buffer for a later Append(std::string*).
  void Recycle(std::string buffer);

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
  std::vector<std::string> spare_ ABSL_GUARDED_BY(mu_);  // buffers for Append(std::string*)
  std::deque<Sealed> sealed_ ABSL_GUARDED_BY(mu_);
  bool publishing_ ABSL_GUARDED_BY(mu_) = false;  // the publisher runs a group
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  // A group failed to land: no later file may land after it (files land in order). A write error
  // of the I/O thread does not set it: the files sealed before it are whole and still land.
  bool publish_failed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread io_thread_;
  std::thread publisher_;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_CSV_FILE_SINK_H_

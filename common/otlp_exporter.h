// Batched, asynchronous OTLP/gRPC span export (`TraceService/Export`) to an OpenTelemetry
// Collector, Jaeger or Tempo. A SpanProcessor for tracing::Tracer.
//
// OnEnd (called when a span ends) only appends to a bounded in-memory queue under a short mutex
// hold: it never waits for the network. One background thread sends a batch when
// max_export_batch_size spans are queued, when schedule_delay has passed since the last send, or
// on ForceFlush/Shutdown. With the collector slow or down the queue fills and further spans are
// dropped and counted (stats()); a failed Export drops its batch (counted) and is not retried,
// so the pipeline never waits on telemetry. Failures are logged once per outage (a warning when
// exports start failing, an info line when they recover).
#ifndef ECOMSTREAM_COMMON_OTLP_EXPORTER_H_
#define ECOMSTREAM_COMMON_OTLP_EXPORTER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tracer.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace ecomstream::tracing {

struct OtlpExporterOptions {
  // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT: "host:port",
  // "http://host:port" (plaintext) or "https://host:port" (TLS, system roots). A trailing "/" is
  // allowed; any other path is not (gRPC has none).
  std::string endpoint = "http://localhost:4317";
  // Deadline of one Export call. OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT, milliseconds.
  absl::Duration export_timeout = absl::Seconds(10);
  // Spans waiting for export; more are dropped. OTEL_BSP_MAX_QUEUE_SIZE.
  size_t max_queue_size = 2048;
  // Spans per Export call (at most max_queue_size). OTEL_BSP_MAX_EXPORT_BATCH_SIZE.
  size_t max_export_batch_size = 512;
  // Longest a span waits in a part-full queue. OTEL_BSP_SCHEDULE_DELAY, milliseconds.
  absl::Duration schedule_delay = absl::Seconds(5);
  // The InstrumentationScope sent with every span.
  std::string scope_name = "ecomstream";
};

// Reads the variables named in OtlpExporterOptions (an empty value counts as unset).
// kInvalidArgument naming the variable on a malformed value (bad endpoint, non-integer or
// non-positive size or duration).
absl::StatusOr<OtlpExporterOptions> OtlpExporterOptionsFromEnvironment(const EnvLookup& lookup);

// Where to connect: the gRPC target ("host:port") and whether to use TLS.
struct OtlpEndpoint {
  std::string target;
  bool use_tls = false;
};
// kInvalidArgument for an unknown scheme, a path, a missing host or a port outside 1..65535.
absl::StatusOr<OtlpEndpoint> ParseOtlpEndpoint(absl::string_view endpoint);

class OtlpExporter : public SpanProcessor {
 public:
  // Validates the options, creates the channel (it connects lazily) and starts the export
  // thread. `resource` is sent with every request (TracerOptions::resource).
  // kInvalidArgument for a bad endpoint or sizes.
  static absl::StatusOr<std::unique_ptr<OtlpExporter>> Create(OtlpExporterOptions options,
                                                              std::vector<Attribute> resource);
  // Shutdown(options.export_timeout) if Shutdown was not called.
  ~OtlpExporter() override;

  // Thread-safe, non-blocking. Drops (and counts) the span when the queue is full or after
  // Shutdown.
  void OnEnd(std::unique_ptr<SpanData> span) override;
  // Sends every span queued before the call. OK when all were accepted; kUnavailable when some
  // Export calls failed (those spans are counted as dropped); kDeadlineExceeded when `timeout`
  // passed first (the spans stay queued).
  absl::Status ForceFlush(absl::Duration timeout) override;
  // Flushes like ForceFlush within `timeout`, then stops the thread (an Export still running at
  // the deadline is cancelled). Spans left queued are dropped and counted. Idempotent: a second
  // call returns OK at once.
  absl::Status Shutdown(absl::Duration timeout) override;
  // Lock-free snapshot of the counters.
  ExportStats stats() const override;

  const OtlpExporterOptions& options() const { return options_; }

 private:
  class Client;  // the stub and a reusable request (keeps protobuf out of this header)

  OtlpExporter(OtlpExporterOptions options, std::shared_ptr<grpc::Channel> channel,
               std::vector<Attribute> resource);
  // The export thread's loop.
  void Run();
  // Whether the export thread should stop waiting: a full batch, a flush, or shutdown.
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until spans up to `sequence` are finished or the thread stopped; false at `deadline`.
  bool WaitUntilCompleted(uint64_t sequence, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Export thread only: logs the start and the end of an outage, and partial rejections.
  void LogOutcome(const absl::StatusOr<int64_t>& rejected, size_t spans);

  const OtlpExporterOptions options_;
  const std::unique_ptr<Client> client_;  // used only by the export thread

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;  // wakes the export thread
  absl::CondVar done_cv_;  // wakes ForceFlush/Shutdown callers
  std::deque<std::unique_ptr<SpanData>> queue_ ABSL_GUARDED_BY(mu_);
  // Sequence numbers: spans ever queued; spans taken from the queue and finished (exported or
  // dropped); the highest sequence a ForceFlush waits for.
  uint64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flush_wanted_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool abandon_ ABSL_GUARDED_BY(mu_) = false;  // the shutdown deadline passed: stop now
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // the thread has left its loop
  absl::Time shutdown_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  grpc::ClientContext* in_flight_ ABSL_GUARDED_BY(mu_) = nullptr;  // cancelled at the deadline
  bool failing_ = false;  // export thread only: log an outage once

  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_queue_full_{0};
  std::atomic<uint64_t> dropped_export_failed_{0};
  std::atomic<uint64_t> dropped_shutdown_{0};
  std::atomic<uint64_t> queued_{0};

  std::thread thread_;
};

}  // namespace ecomstream::tracing

#endif  // ECOMSTREAM_COMMON_OTLP_EXPORTER_H_

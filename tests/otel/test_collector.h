// A test OTLP collector: a gRPC server on 127.0.0.1 that implements
// opentelemetry.proto.collector.trace.v1.TraceService/Export and records every span it receives,
// with the resource and scope it came with.
//
//   auto collector = TestCollector::Start().value();
//   env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector->endpoint();     // "http://127.0.0.1:PORT"
//   ... run code that exports spans ...
//   ASSERT_TRUE(collector->WaitForSpans(3, absl::Seconds(10)));
//   std::vector<CollectedSpan> trace = collector->SpansForTrace(trace_id_hex);
//
// It can also play a slow collector (SetExportDelay: each Export waits before answering) or a
// failing one (SetExportStatus). Every method is thread-safe.
#ifndef ECOMSTREAM_TESTS_OTEL_TEST_COLLECTOR_H_
#define ECOMSTREAM_TESTS_OTEL_TEST_COLLECTOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/tracer.h"
#include "opentelemetry/proto/common/v1/common.pb.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace ecomstream::testing {

// One received span and where it came from.
struct CollectedSpan {
  opentelemetry::proto::trace::v1::Span span;
  opentelemetry::proto::resource::v1::Resource resource;
  opentelemetry::proto::common::v1::InstrumentationScope scope;

  // Lower-case hex of the raw id bytes ("" for an empty parent).
  std::string trace_id_hex() const;
  std::string span_id_hex() const;
  std::string parent_span_id_hex() const;
  // The span attribute `key`, if present.
  std::optional<opentelemetry::proto::common::v1::AnyValue> Attribute(absl::string_view key) const;
  // The resource's string attribute `key` ("" if absent or not a string).
  std::string ResourceAttribute(absl::string_view key) const;
};

class TestCollector {
 public:
  // Listens on 127.0.0.1 on a port chosen by the kernel.
  static absl::StatusOr<std::unique_ptr<TestCollector>> Start();
  // Stops the server; Export calls still waiting in SetExportDelay return at once.
  ~TestCollector();
  TestCollector(const TestCollector&) = delete;
  TestCollector& operator=(const TestCollector&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:PORT" and "http://127.0.0.1:PORT".
  std::string address() const;
  std::string endpoint() const;

  // An in-process tracer with service.name `service_name` whose OTLP exporter sends here every
  // 10 ms (call its ForceFlush before reading the spans). The tracer must not outlive the
  // collector by more than its export timeout.
  absl::StatusOr<std::unique_ptr<tracing::Tracer>> NewTracer(absl::string_view service_name) const;

  // Every span received and kept so far, in arrival order.
  std::vector<CollectedSpan> Spans() const;
  // The spans of one trace (32 lower-case hex digits), in arrival order.
  std::vector<CollectedSpan> SpansForTrace(absl::string_view trace_id_hex) const;
  // True once at least `n` spans have arrived; false if `timeout` passes first.
  bool WaitForSpans(size_t n, absl::Duration timeout) const;
  // Spans received by successful Export calls (kept or not).
  size_t span_count() const;
  // Export calls received (including failed and delayed ones).
  int64_t export_calls() const;

  // Each later Export call waits `delay` before it answers (a slow collector).
  void SetExportDelay(absl::Duration delay);
  // Later Export calls fail with `status` and record nothing (OK restores normal service).
  void SetExportStatus(absl::Status status);
  // false: count spans (span_count, WaitForSpans) without keeping them, for benchmarks.
  void SetKeepSpans(bool keep);

 private:
  class Service;
  struct State;
  TestCollector();

  std::unique_ptr<State> state_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_OTEL_TEST_COLLECTOR_H_

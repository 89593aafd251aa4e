#include "tests/otel/test_collector.h"

#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/otlp_exporter.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace ecomstream::testing {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_common = ::opentelemetry::proto::common::v1;

}  // namespace

std::string CollectedSpan::trace_id_hex() const { return absl::BytesToHexString(span.trace_id()); }
std::string CollectedSpan::span_id_hex() const { return absl::BytesToHexString(span.span_id()); }
std::string CollectedSpan::parent_span_id_hex() const { return absl::BytesToHexString(span.parent_span_id()); }

std::optional<otlp_common::AnyValue> CollectedSpan::Attribute(absl::string_view key) const {
  for (const otlp_common::KeyValue& kv : span.attributes()) {
    if (kv.key() == key) return kv.value();
  }
  return std::nullopt;
}

std::string CollectedSpan::ResourceAttribute(absl::string_view key) const {
  for (const otlp_common::KeyValue& kv : resource.attributes()) {
    if (kv.key() == key && kv.value().has_string_value()) return kv.value().string_value();
  }
  return "";
}

struct TestCollector::State {
  mutable absl::Mutex mu;
  std::vector<CollectedSpan> spans ABSL_GUARDED_BY(mu);
  size_t received ABSL_GUARDED_BY(mu) = 0;
  bool keep ABSL_GUARDED_BY(mu) = true;
  int64_t export_calls ABSL_GUARDED_BY(mu) = 0;
  absl::Duration delay ABSL_GUARDED_BY(mu) = absl::ZeroDuration();
  absl::Status status ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
};

class TestCollector::Service final : public otlp_collector::TraceService::Service {
 public:
  explicit Service(State* state) : state_(state) {}

  grpc::Status Export(grpc::ServerContext* context, const otlp_collector::ExportTraceServiceRequest* request,
                      otlp_collector::ExportTraceServiceResponse* response) override {
    absl::MutexLock lock(&state_->mu);
    ++state_->export_calls;
    if (state_->delay > absl::ZeroDuration()) {
      // Sleep, but wake early when the collector stops so that its destructor is quick.
      state_->mu.AwaitWithTimeout(absl::Condition(&state_->stopping), state_->delay);
    }
    if (!state_->status.ok()) return ToGrpcStatus(state_->status);
    for (const auto& resource_spans : request->resource_spans()) {
      for (const auto& scope_spans : resource_spans.scope_spans()) {
        state_->received += static_cast<size_t>(scope_spans.spans_size());
        if (!state_->keep) continue;
        for (const auto& span : scope_spans.spans()) {
          state_->spans.push_back(CollectedSpan{span, resource_spans.resource(), scope_spans.scope()});
        }
      }
    }
    return grpc::Status::OK;
  }

 private:
  State* const state_;
};

TestCollector::TestCollector() : state_(std::make_unique<State>()), service_(std::make_unique<Service>(state_.get())) {}

absl::StatusOr<std::unique_ptr<TestCollector>> TestCollector::Start() {
  std::unique_ptr<TestCollector> collector(new TestCollector());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &collector->port_);
  builder.RegisterService(collector->service_.get());
  collector->server_ = builder.BuildAndStart();
  if (collector->server_ == nullptr || collector->port_ == 0) {
    return absl::UnavailableError("test collector could not listen on 127.0.0.1");
  }
  return collector;
}

TestCollector::~TestCollector() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
  }
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

std::string TestCollector::address() const { return absl::StrCat("127.0.0.1:", port_); }
std::string TestCollector::endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }

absl::StatusOr<std::unique_ptr<tracing::Tracer>> TestCollector::NewTracer(absl::string_view service_name) const {
  tracing::OtlpExporterOptions exporter_options;
  exporter_options.endpoint = endpoint();
  exporter_options.schedule_delay = absl::Milliseconds(10);
  tracing::TracerOptions options;
  options.resource = {{"service.name", std::string(service_name)}};
  absl::StatusOr<std::unique_ptr<tracing::OtlpExporter>> exporter =
      tracing::OtlpExporter::Create(exporter_options, options.resource);
  if (!exporter.ok()) return exporter.status();
  return std::make_unique<tracing::Tracer>(std::move(options), *std::move(exporter));
}

std::vector<CollectedSpan> TestCollector::Spans() const {
  absl::MutexLock lock(&state_->mu);
  return state_->spans;
}

std::vector<CollectedSpan> TestCollector::SpansForTrace(absl::string_view trace_id_hex) const {
  std::vector<CollectedSpan> out;
  absl::MutexLock lock(&state_->mu);
  for (const CollectedSpan& span : state_->spans) {
    if (span.trace_id_hex() == trace_id_hex) out.push_back(span);
  }
  return out;
}

bool TestCollector::WaitForSpans(size_t n, absl::Duration timeout) const {
  struct Arg {
    const State* state;
    size_t n;
  } arg{state_.get(), n};
  auto enough = [](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->state->received >= a->n; };
  absl::MutexLock lock(&state_->mu);
  return state_->mu.AwaitWithTimeout(absl::Condition(+enough, &arg), timeout);
}

size_t TestCollector::span_count() const {
  absl::MutexLock lock(&state_->mu);
  return state_->received;
}

int64_t TestCollector::export_calls() const {
  absl::MutexLock lock(&state_->mu);
  return state_->export_calls;
}

void TestCollector::SetExportDelay(absl::Duration delay) {
  absl::MutexLock lock(&state_->mu);
  state_->delay = delay;
}

void TestCollector::SetKeepSpans(bool keep) {
  absl::MutexLock lock(&state_->mu);
  state_->keep = keep;
}

void TestCollector::SetExportStatus(absl::Status status) {
  absl::MutexLock lock(&state_->mu);
  state_->status = std::move(status);
}

}  // namespace ecomstream::testing

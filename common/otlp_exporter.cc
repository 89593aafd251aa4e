#include "common/otlp_exporter.h"

#include <algorithm>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace ecomstream::tracing {
namespace {

namespace otlp_collector = ::opentelemetry::proto::collector::trace::v1;
namespace otlp_common = ::opentelemetry::proto::common::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

// The longest the export thread waits before reconnecting to a collector that was down
// (gRPC's default is 120 s, too long to notice a collector that came back).
constexpr int kMaxReconnectBackoffMs = 5000;

void ToAnyValue(const AttributeValue& value, otlp_common::AnyValue* out) {
  if (const auto* s = std::get_if<std::string>(&value)) {
    out->set_string_value(*s);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    out->set_int_value(*i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    out->set_double_value(*d);
  } else {
    out->set_bool_value(std::get<bool>(value));
  }
}

void ToKeyValue(const Attribute& attribute, otlp_common::KeyValue* out) {
  out->set_key(attribute.key);
  ToAnyValue(attribute.value, out->mutable_value());
}

void ToProto(const SpanData& span, otlp_trace::Span* out) {
  out->set_trace_id(span.trace_id.AsBytes().data(), span.trace_id.AsBytes().size());
  out->set_span_id(span.span_id.AsBytes().data(), span.span_id.AsBytes().size());
  if (span.parent_span_id.IsValid()) {
    out->set_parent_span_id(span.parent_span_id.AsBytes().data(), span.parent_span_id.AsBytes().size());
  }
  out->set_flags(span.flags);
  out->set_name(span.name);
  out->set_kind(static_cast<otlp_trace::Span::SpanKind>(span.kind));
  out->set_start_time_unix_nano(static_cast<uint64_t>(span.start_unix_nanos));
  out->set_end_time_unix_nano(static_cast<uint64_t>(span.end_unix_nanos));
  for (const Attribute& attribute : span.attributes) ToKeyValue(attribute, out->add_attributes());
  out->set_dropped_attributes_count(span.dropped_attributes_count);
  for (const SpanEvent& event : span.events) {
    otlp_trace::Span::Event* e = out->add_events();
    e->set_time_unix_nano(static_cast<uint64_t>(event.time_unix_nanos));
    e->set_name(event.name);
  }
  out->set_dropped_events_count(span.dropped_events_count);
  if (span.status_code != SpanStatusCode::kUnset) {
    out->mutable_status()->set_code(static_cast<otlp_trace::Status::StatusCode>(span.status_code));
    out->mutable_status()->set_message(span.status_message);
  }
}

// The first of `names` that is set.
std::optional<std::pair<absl::string_view, std::string>> LookupFirst(const EnvLookup& lookup,
                                                                     std::initializer_list<absl::string_view> names) {
  for (absl::string_view name : names) {
    if (std::optional<std::string> value = LookupSetting(lookup, name)) return std::make_pair(name, *std::move(value));
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> PositiveInteger(absl::string_view name, absl::string_view text) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, "=\"", text, "\" is not a positive integer"));
  }
  return value;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

absl::StatusOr<OtlpEndpoint> ParseOtlpEndpoint(absl::string_view endpoint) {
  absl::string_view rest = absl::StripAsciiWhitespace(endpoint);
  OtlpEndpoint parsed;
  if (absl::StartsWithIgnoreCase(rest, "http://")) {
    rest.remove_prefix(7);
  } else if (absl::StartsWithIgnoreCase(rest, "https://")) {
    rest.remove_prefix(8);
    parsed.use_tls = true;
  } else if (absl::StrContains(rest, "://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("OTLP endpoint \"", endpoint, "\" has a scheme other than http:// or https://"));
  }
  if (absl::EndsWith(rest, "/")) rest.remove_suffix(1);
  if (absl::StrContains(rest, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("OTLP endpoint \"", endpoint, "\" has a path; OTLP/gRPC takes host:port only"));
  }
  size_t colon;
  if (absl::StartsWith(rest, "[")) {  // [IPv6]:port
    const size_t close = rest.find(']');
    colon = close == absl::string_view::npos ? close : close + 1;
    if (colon != absl::string_view::npos && (colon >= rest.size() || rest[colon] != ':')) colon = absl::string_view::npos;
  } else {
    colon = rest.rfind(':');
    if (colon != absl::string_view::npos && rest.substr(0, colon).find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("OTLP endpoint \"", endpoint, "\": write an IPv6 address in brackets, [::1]:4317"));
    }
  }
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("OTLP endpoint \"", endpoint, "\" has no port (OTLP/gRPC usually listens on 4317)"));
  }
  int port = 0;
  if (colon == 0 || !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("OTLP endpoint \"", endpoint, "\" is not host:port with a port in 1..65535"));
  }
  parsed.target = std::string(rest);
  return parsed;
}

absl::StatusOr<OtlpExporterOptions> OtlpExporterOptionsFromEnvironment(const EnvLookup& lookup) {
  OtlpExporterOptions options;
  if (auto protocol = LookupFirst(lookup, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"})) {
    if (absl::AsciiStrToLower(absl::StripAsciiWhitespace(protocol->second)) != "grpc") {
      return absl::InvalidArgumentError(
          absl::StrCat(protocol->first, "=\"", protocol->second, "\" is not supported; only grpc is"));
    }
  }
  if (auto endpoint = LookupFirst(lookup, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"})) {
    absl::StatusOr<OtlpEndpoint> parsed = ParseOtlpEndpoint(endpoint->second);
    if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(endpoint->first, ": ", parsed.status().message()));
    options.endpoint = endpoint->second;
  }
  if (auto timeout = LookupFirst(lookup, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"})) {
    absl::StatusOr<int64_t> ms = PositiveInteger(timeout->first, timeout->second);
    if (!ms.ok()) return ms.status();
    options.export_timeout = absl::Milliseconds(*ms);
  }
  if (auto delay = LookupFirst(lookup, {"OTEL_BSP_SCHEDULE_DELAY"})) {
    absl::StatusOr<int64_t> ms = PositiveInteger(delay->first, delay->second);
    if (!ms.ok()) return ms.status();
    options.schedule_delay = absl::Milliseconds(*ms);
  }
  if (auto size = LookupFirst(lookup, {"OTEL_BSP_MAX_QUEUE_SIZE"})) {
    absl::StatusOr<int64_t> n = PositiveInteger(size->first, size->second);
    if (!n.ok()) return n.status();
    options.max_queue_size = static_cast<size_t>(*n);
  }
  if (auto size = LookupFirst(lookup, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE"})) {
    absl::StatusOr<int64_t> n = PositiveInteger(size->first, size->second);
    if (!n.ok()) return n.status();
    options.max_export_batch_size = static_cast<size_t>(*n);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// The stub and a request reused from batch to batch (protobuf keeps cleared spans for reuse).

class OtlpExporter::Client {
 public:
  Client(const std::shared_ptr<grpc::Channel>& channel, const std::vector<Attribute>& resource,
         const std::string& scope_name)
      : stub_(otlp_collector::TraceService::NewStub(channel)) {
    otlp_trace::ResourceSpans* resource_spans = request_.add_resource_spans();
    for (const Attribute& attribute : resource) {
      ToKeyValue(attribute, resource_spans->mutable_resource()->add_attributes());
    }
    scope_spans_ = resource_spans->add_scope_spans();
    scope_spans_->mutable_scope()->set_name(scope_name);
  }

  // Returns the number of spans the collector rejected, or the RPC's error.
  absl::StatusOr<int64_t> Export(grpc::ClientContext* context, const std::vector<std::unique_ptr<SpanData>>& batch) {
    auto* spans = scope_spans_->mutable_spans();
    spans->Clear();
    for (const auto& span : batch) ToProto(*span, spans->Add());
    otlp_collector::ExportTraceServiceResponse response;
    const grpc::Status status = stub_->Export(context, request_, &response);
    if (!status.ok()) {
      return FromGrpcStatus(status);
    }
    last_partial_error_ = response.partial_success().error_message();
    return std::clamp<int64_t>(response.partial_success().rejected_spans(), 0, static_cast<int64_t>(batch.size()));
  }

  const std::string& last_partial_error() const { return last_partial_error_; }

 private:
  std::unique_ptr<otlp_collector::TraceService::Stub> stub_;
  otlp_collector::ExportTraceServiceRequest request_;
  otlp_trace::ScopeSpans* scope_spans_;  // owned by request_
  std::string last_partial_error_;
};

// ---------------------------------------------------------------------------------------------
// OtlpExporter

absl::StatusOr<std::unique_ptr<OtlpExporter>> OtlpExporter::Create(OtlpExporterOptions options,
                                                                   std::vector<Attribute> resource) {
  absl::StatusOr<OtlpEndpoint> endpoint = ParseOtlpEndpoint(options.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  if (options.max_queue_size == 0 || options.max_export_batch_size == 0) {
    return absl::InvalidArgumentError("OTLP exporter queue and batch sizes must be positive");
  }
  if (options.export_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("OTLP export timeout must be positive");
  }
  options.max_export_batch_size = std::min(options.max_export_batch_size, options.max_queue_size);
  options.schedule_delay = std::max(options.schedule_delay, absl::Milliseconds(1));

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  const std::shared_ptr<grpc::ChannelCredentials> credentials =
      endpoint->use_tls ? grpc::SslCredentials(grpc::SslCredentialsOptions()) : grpc::InsecureChannelCredentials();
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(endpoint->target, credentials, args);
  return std::unique_ptr<OtlpExporter>(new OtlpExporter(std::move(options), std::move(channel), std::move(resource)));
}

OtlpExporter::OtlpExporter(OtlpExporterOptions options, std::shared_ptr<grpc::Channel> channel,
                           std::vector<Attribute> resource)
    : options_(std::move(options)),
      client_(std::make_unique<Client>(channel, resource, options_.scope_name)),
      thread_([this] { Run(); }) {}

OtlpExporter::~OtlpExporter() {
  // Nobody to report to here; stats() has the counts.
  (void)Shutdown(options_.export_timeout);
  if (thread_.joinable()) thread_.join();
}

void OtlpExporter::OnEnd(std::unique_ptr<SpanData> span) {
  std::unique_ptr<SpanData> rejected;  // freed after the lock is released
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) {
      dropped_shutdown_.fetch_add(1, std::memory_order_relaxed);
      rejected = std::move(span);
    } else if (queue_.size() >= options_.max_queue_size) {
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
      rejected = std::move(span);
    } else {
      queue_.push_back(std::move(span));
      ++enqueued_;
      queued_.store(queue_.size(), std::memory_order_relaxed);
      // Wake the thread only when a batch fills up; otherwise its timer will do.
      if (queue_.size() == options_.max_export_batch_size) work_cv_.Signal();
    }
  }
}

bool OtlpExporter::HasWork() const {
  if (shutdown_ || abandon_) return true;
  if (queue_.empty()) return false;
  return queue_.size() >= options_.max_export_batch_size || flush_wanted_ > completed_;
}

void OtlpExporter::Run() {
  std::vector<std::unique_ptr<SpanData>> batch;
  batch.reserve(options_.max_export_batch_size);
  absl::MutexLock lock(&mu_);
  absl::Time next_export = absl::Now() + options_.schedule_delay;
  while (true) {
    while (!HasWork()) {
      const bool timed_out = work_cv_.WaitWithDeadline(&mu_, next_export);
      if (timed_out) {
        if (!queue_.empty()) break;
        next_export = absl::Now() + options_.schedule_delay;
      }
    }
    if (abandon_ || (shutdown_ && queue_.empty())) break;
    const size_t n = std::min(queue_.size(), options_.max_export_batch_size);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_.store(queue_.size(), std::memory_order_relaxed);

    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(std::min(absl::Now() + options_.export_timeout, shutdown_deadline_)));
    in_flight_ = &context;
    mu_.Unlock();
    const absl::StatusOr<int64_t> rejected = client_->Export(&context, batch);
    batch.clear();
    LogOutcome(rejected, n);
    mu_.Lock();
    in_flight_ = nullptr;
    next_export = absl::Now() + options_.schedule_delay;
    if (!rejected.ok()) {
      // A call cancelled because the shutdown deadline passed counts as a shutdown drop.
      (abandon_ ? dropped_shutdown_ : dropped_export_failed_).fetch_add(n, std::memory_order_relaxed);
    } else {
      exported_.fetch_add(n - static_cast<size_t>(*rejected), std::memory_order_relaxed);
      dropped_export_failed_.fetch_add(static_cast<uint64_t>(*rejected), std::memory_order_relaxed);
    }
    completed_ += n;
    done_cv_.SignalAll();
  }
  const size_t left = queue_.size();
  dropped_shutdown_.fetch_add(left, std::memory_order_relaxed);
  completed_ += left;
  queue_.clear();
  queued_.store(0, std::memory_order_relaxed);
  stopped_ = true;
  done_cv_.SignalAll();
}

// Called without mu_ held so that a slow stderr never stalls OnEnd.
void OtlpExporter::LogOutcome(const absl::StatusOr<int64_t>& rejected, size_t spans) {
  if (!rejected.ok()) {
    if (!failing_ && rejected.status().code() != absl::StatusCode::kCancelled) {
      failing_ = true;
      LOG_WARNING("Span export failed; spans are dropped until the collector answers")
          << Kv("endpoint", options_.endpoint) << Kv("error", rejected.status().ToString()) << Kv("spans", spans);
    }
    return;
  }
  if (*rejected > 0) {
    LOG_WARNING("Collector rejected part of a span batch")
        << Kv("endpoint", options_.endpoint) << Kv("rejected", *rejected) << Kv("spans", spans)
        << Kv("error", client_->last_partial_error());
  }
  if (failing_) {
    failing_ = false;
    LOG_INFO("Span export recovered") << Kv("endpoint", options_.endpoint);
  }
}

bool OtlpExporter::WaitUntilCompleted(uint64_t sequence, absl::Time deadline) {
  while (completed_ < sequence && !stopped_) {
    if (done_cv_.WaitWithDeadline(&mu_, deadline)) return completed_ >= sequence || stopped_;
  }
  return true;
}

absl::Status OtlpExporter::ForceFlush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  const uint64_t target = enqueued_;
  const uint64_t failed_before = dropped_export_failed_.load(std::memory_order_relaxed);
  if (target > flush_wanted_) {
    flush_wanted_ = target;
    work_cv_.Signal();
  }
  if (!WaitUntilCompleted(target, deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat("span flush timed out with ", target - completed_, " spans not yet exported"));
  }
  const uint64_t failed = dropped_export_failed_.load(std::memory_order_relaxed) - failed_before;
  if (failed > 0) return absl::UnavailableError(absl::StrCat(failed, " spans failed to export to ", options_.endpoint));
  return absl::OkStatus();
}

absl::Status OtlpExporter::Shutdown(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  uint64_t failed_before;
  uint64_t dropped_before;
  bool abandoned = false;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return absl::OkStatus();
    shutdown_ = true;
    shutdown_deadline_ = deadline;
    failed_before = dropped_export_failed_.load(std::memory_order_relaxed);
    dropped_before = dropped_shutdown_.load(std::memory_order_relaxed);
    work_cv_.Signal();
    while (!stopped_) {
      if (done_cv_.WaitWithDeadline(&mu_, deadline) && !stopped_) {
        abandoned = true;
        abandon_ = true;
        if (in_flight_ != nullptr) in_flight_->TryCancel();
        work_cv_.Signal();
        break;
      }
    }
  }
  thread_.join();
  if (abandoned) {
    return absl::DeadlineExceededError(absl::StrCat(
        "span exporter shutdown timed out; ",
        dropped_shutdown_.load(std::memory_order_relaxed) - dropped_before, " spans dropped"));
  }
  const uint64_t failed = dropped_export_failed_.load(std::memory_order_relaxed) - failed_before;
  if (failed > 0) return absl::UnavailableError(absl::StrCat(failed, " spans failed to export to ", options_.endpoint));
  return absl::OkStatus();
}

ExportStats OtlpExporter::stats() const {
  ExportStats stats;
  stats.exported = exported_.load(std::memory_order_relaxed);
  stats.dropped_queue_full = dropped_queue_full_.load(std::memory_order_relaxed);
  stats.dropped_export_failed = dropped_export_failed_.load(std::memory_order_relaxed);
  stats.dropped_shutdown = dropped_shutdown_.load(std::memory_order_relaxed);
  stats.queued = queued_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace ecomstream::tracing

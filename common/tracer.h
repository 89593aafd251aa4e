// A small OpenTelemetry-style tracer (docs/design.md, "Tracing"): spans with W3C trace context, a
// sampler and resource configured by the standard OTEL_* variables, and ended spans handed to a
// SpanProcessor (in production the OTLP exporter in common/otlp_exporter.h).
//
//   ASSIGN_OR_RETURN(std::unique_ptr<tracing::Tracer> tracer,
//                    tracing::Tracer::FromEnvironment("ecomstream-processor"));
//   tracing::Span span = tracer->StartSpan("file.process", tracing::SpanKind::kConsumer,
//                                          tracing::TraceContext::FromTraceparentOrInvalid(tp));
//   span.SetAttribute("file.name", name);
//   span.SetAttribute("rows", row_count);
//   batch.set_traceparent(span.context().ToTraceparent());
//   span.End();                        // or when `span` goes out of scope
//
// Threads: Tracer is thread-safe. A Span is used by one thread at a time (like a std::string) but
// may move between threads. The Tracer must outlive every Span it started.
// Cost: a span that is not sampled does not allocate; a sampled span allocates its record once
// and is handed to the processor with one short mutex hold (bench/tracing has the numbers).
#ifndef ECOMSTREAM_COMMON_TRACER_H_
#define ECOMSTREAM_COMMON_TRACER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/trace_context.h"

namespace ecomstream::tracing {

// Values match OTLP's Span.SpanKind.
enum class SpanKind : uint8_t { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };
// Values match OTLP's Status.StatusCode.
enum class SpanStatusCode : uint8_t { kUnset = 0, kOk = 1, kError = 2 };

using AttributeValue = std::variant<std::string, int64_t, double, bool>;
struct Attribute {
  std::string key;
  AttributeValue value;
};

struct SpanEvent {
  std::string name;
  int64_t time_unix_nanos = 0;
};

// An ended span, as a SpanProcessor receives it. Times are nanoseconds since the Unix epoch.
struct SpanData {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // invalid (all zero) for a root span
  uint8_t flags = 0;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  std::vector<Attribute> attributes;  // keys unique, in first-set order
  uint32_t dropped_attributes_count = 0;
  std::vector<SpanEvent> events;
  uint32_t dropped_events_count = 0;
  SpanStatusCode status_code = SpanStatusCode::kUnset;
  std::string status_message;
};

// Per span: more attributes or events than this are dropped and counted in SpanData.
inline constexpr size_t kMaxAttributesPerSpan = 128;
inline constexpr size_t kMaxEventsPerSpan = 128;

// What happened to ended spans after the tracer handed them on. Monotonic counters.
struct ExportStats {
  uint64_t exported = 0;               // accepted by the collector
  uint64_t dropped_queue_full = 0;     // the bounded queue was full (collector slow or down)
  uint64_t dropped_export_failed = 0;  // the Export call failed or the collector rejected them
  uint64_t dropped_shutdown = 0;       // ended after Shutdown, or still queued at its deadline
  uint64_t queued = 0;                 // waiting for export now (a gauge, not a counter)
  uint64_t dropped() const { return dropped_queue_full + dropped_export_failed + dropped_shutdown; }
};

// Receives every ended, sampled span. OnEnd runs on the thread that ends the span, so it must be
// thread-safe and must not block.
class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;
  virtual void OnEnd(std::unique_ptr<SpanData> span) = 0;
  // Exports every span ended before the call. kDeadlineExceeded if `timeout` passes first.
  virtual absl::Status ForceFlush(absl::Duration timeout) = 0;
  // Flushes like ForceFlush, then stops; later spans are dropped (counted). Idempotent.
  virtual absl::Status Shutdown(absl::Duration timeout) = 0;
  virtual ExportStats stats() const = 0;
};

// Decides at span start whether a span is recorded and exported (W3C "sampled" flag).
class Sampler {
 public:
  static Sampler AlwaysOn() { return Sampler(Root::kAlwaysOn, false, 1.0); }
  static Sampler AlwaysOff() { return Sampler(Root::kAlwaysOff, false, 0.0); }
  // Samples a trace when the low 63 bits of its id's random half fall below ratio * 2^63, so
  // every service configured with the same ratio takes the same decision. `ratio` is clamped to
  // [0, 1].
  static Sampler TraceIdRatio(double ratio);
  // A child follows its parent's sampled flag; a root span asks `root`.
  static Sampler ParentBased(const Sampler& root) { return Sampler(root.root_, true, root.ratio_); }

  // OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG: always_on, always_off, traceidratio,
  // parentbased_always_on, parentbased_always_off, parentbased_traceidratio. The argument is the
  // ratio for the *traceidratio samplers (default 1.0), ignored by the others. An empty name means
  // the default, parentbased_always_on. kInvalidArgument for an unknown name or a ratio that is
  // not a number in [0, 1].
  static absl::StatusOr<Sampler> FromName(absl::string_view name, absl::string_view arg);

  // `parent` may be invalid (a root span); `trace_id` is the id the new span will carry.
  bool ShouldSample(const TraceContext& parent, const TraceId& trace_id) const;
  // E.g. "parentbased_traceidratio(0.25)".
  std::string Description() const;

 private:
  enum class Root : uint8_t { kAlwaysOn, kAlwaysOff, kTraceIdRatio };
  Sampler(Root root, bool parent_based, double ratio);
  Root root_;
  bool parent_based_;
  double ratio_;
  uint64_t bound_;  // sample when (TraceId::Low64() >> 1) < bound_
};

// Reads one environment variable; nullopt when unset. Tests pass their own map-backed lookup.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;
// The process environment (getenv).
EnvLookup ProcessEnvironment();
// `lookup(name)`, with an empty value counted as unset (the OpenTelemetry rule).
std::optional<std::string> LookupSetting(const EnvLookup& lookup, absl::string_view name);

struct TracerOptions {
  // OTEL_SDK_DISABLED=true: every span is a no-op that only passes its parent's context on.
  bool disabled = false;
  Sampler sampler = Sampler::ParentBased(Sampler::AlwaysOn());
  // service.name first, then OTEL_RESOURCE_ATTRIBUTES, then telemetry.sdk.*.
  std::vector<Attribute> resource;
  // OTEL_TRACES_EXPORTER: "otlp" (the default) or "none" (sample and propagate, export nothing).
  bool export_otlp = true;
};

// Reads OTEL_SDK_DISABLED (true/false, any case), OTEL_TRACES_SAMPLER(_ARG), OTEL_SERVICE_NAME
// (else service.name from OTEL_RESOURCE_ATTRIBUTES, else `default_service_name`),
// OTEL_RESOURCE_ATTRIBUTES ("k1=v1,k2=v2", values percent-decoded, spaces around keys and values
// trimmed) and OTEL_TRACES_EXPORTER. An empty variable counts as unset. kInvalidArgument naming
// the variable on a malformed value.
absl::StatusOr<TracerOptions> TracerOptionsFromEnvironment(absl::string_view default_service_name,
                                                           const EnvLookup& lookup);

// Parses OTEL_RESOURCE_ATTRIBUTES' format into string attributes (later duplicates win).
// kInvalidArgument for an entry without '=', an empty key or a bad %-escape.
absl::StatusOr<std::vector<Attribute>> ParseResourceAttributes(absl::string_view text);

struct StartSpanOptions {
  // When the operation began, if not now (e.g. a file.write span created after the file was
  // renamed into place, from the time writing started).
  std::optional<absl::Time> start_time;
  // Fixed ids instead of random ones, for reproducible output (the generator's manifests under a
  // simulated clock). A valid `root_trace_id` is the new trace's id when `parent` is invalid (it
  // is ignored for a child); a valid `span_id` is the span's id. The sampler still decides.
  TraceId root_trace_id;
  SpanId span_id;
};

class Span {
 public:
  // A no-op span with an invalid context.
  Span() = default;
  Span(Span&& other) noexcept;
  // Ends the span this one held, then takes `other`'s.
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  // Ends the span if End() was not called.
  ~Span() { End(); }

  // What to propagate: ToTraceparent() for gRPC metadata, manifests and batches. Valid for every
  // span of an enabled tracer, sampled or not; for a disabled tracer it is the parent's context.
  const TraceContext& context() const { return context_; }
  // True until End() for a sampled span; setters on a non-recording span do nothing.
  bool IsRecording() const { return data_ != nullptr; }

  // Sets (or replaces) an attribute. Integers are stored as int64 (an unsigned value above
  // INT64_MAX wraps), floating point as double.
  void SetAttribute(absl::string_view key, absl::string_view value);
  void SetAttribute(absl::string_view key, const std::string& value) { SetAttribute(key, absl::string_view(value)); }
  void SetAttribute(absl::string_view key, const char* value) { SetAttribute(key, absl::string_view(value)); }
  void SetAttribute(absl::string_view key, bool value) { SetAttributeValue(key, AttributeValue(value)); }
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  void SetAttribute(absl::string_view key, T value) {
    SetAttributeValue(key, AttributeValue(static_cast<int64_t>(value)));
  }
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  void SetAttribute(absl::string_view key, T value) {
    SetAttributeValue(key, AttributeValue(static_cast<double>(value)));
  }

  void AddEvent(absl::string_view name);
  void AddEvent(absl::string_view name, absl::Time time);

  // OK -> status OK; otherwise ERROR with the status' text ("UNAVAILABLE: writer down").
  void SetStatus(const absl::Status& status);

  // Records the end time and hands the span to the tracer's processor. Later calls do nothing.
  // An end before the start is recorded as the start (zero duration).
  void End();
  void End(absl::Time end_time);

 private:
  friend class Tracer;
  Span(const TraceContext& context, std::unique_ptr<SpanData> data, SpanProcessor* processor)
      : context_(context), data_(std::move(data)), processor_(processor) {}
  void SetAttributeValue(absl::string_view key, AttributeValue value);
  void EndAt(int64_t end_unix_nanos);

  TraceContext context_;
  std::unique_ptr<SpanData> data_;  // null when not recording
  SpanProcessor* processor_ = nullptr;
};

class Tracer {
 public:
  // `processor` may be null: spans are sampled and propagate but go nowhere.
  Tracer(TracerOptions options, std::unique_ptr<SpanProcessor> processor);
  // Shuts the processor down (flushing for up to 5 s) if Shutdown was not called.
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // TracerOptionsFromEnvironment plus, unless disabled or OTEL_TRACES_EXPORTER=none, an OTLP
  // exporter configured by OtlpExporterOptionsFromEnvironment (its thread starts here; it does
  // not wait for the collector). kInvalidArgument naming the variable on a malformed value.
  static absl::StatusOr<std::unique_ptr<Tracer>> FromEnvironment(absl::string_view default_service_name,
                                                                 const EnvLookup& lookup = ProcessEnvironment());
  // A tracer whose spans do nothing (tools, tests of code that takes a Tracer).
  static std::unique_ptr<Tracer> Disabled();

  // Starts a span: a child of `parent` when it is valid (same trace id, parent span id = its
  // span id), otherwise the root of a new trace. Never blocks.
  Span StartSpan(absl::string_view name, SpanKind kind, const TraceContext& parent = TraceContext(),
                 const StartSpanOptions& options = StartSpanOptions()) const;

  bool enabled() const { return !options_.disabled; }
  const TracerOptions& options() const { return options_; }
  // Zero when there is no processor. Lock-free; for metrics.
  ExportStats stats() const;

  absl::Status ForceFlush(absl::Duration timeout);
  // See SpanProcessor::Shutdown. Spans ending later are dropped (counted).
  absl::Status Shutdown(absl::Duration timeout);

 private:
  TracerOptions options_;
  std::unique_ptr<SpanProcessor> processor_;
};

}  // namespace ecomstream::tracing

#endif  // ECOMSTREAM_COMMON_TRACER_H_

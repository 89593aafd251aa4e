#include "common/tracer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/otlp_exporter.h"

namespace ecomstream::tracing {
namespace {

// Room for a typical span's attributes without regrowing the vector.
constexpr size_t kInitialAttributeCapacity = 8;

int64_t NowUnixNanos() { return absl::ToUnixNanos(absl::Now()); }

absl::StatusOr<std::string> PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size() || !absl::ascii_isxdigit(text[i + 1]) || !absl::ascii_isxdigit(text[i + 2])) {
      return absl::InvalidArgumentError(absl::StrCat("bad %-escape at offset ", i, " in \"", text, "\""));
    }
    out.append(absl::HexStringToBytes(text.substr(i + 1, 2)));
    i += 2;
  }
  return out;
}

// Replaces the value of `key` in `attributes`, or else appends the attribute if there are fewer
// than `max_attributes`. Returns false if the attribute was dropped for that limit.
bool PutAttribute(std::vector<Attribute>* attributes, absl::string_view key, AttributeValue value,
                  size_t max_attributes = std::numeric_limits<size_t>::max()) {
  for (Attribute& attribute : *attributes) {
    if (attribute.key == key) {
      attribute.value = std::move(value);
      return true;
    }
  }
  if (attributes->size() >= max_attributes) return false;
  attributes->push_back(Attribute{std::string(key), std::move(value)});
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sampler

Sampler::Sampler(Root root, bool parent_based, double ratio) : root_(root), parent_based_(parent_based) {
  if (!(ratio >= 0.0)) ratio = 0.0;  // also catches NaN
  ratio_ = std::min(ratio, 1.0);
  // ratio * 2^63 as an integer; 1.0 gives 2^63, above every 63-bit value.
  bound_ = ratio_ >= 1.0 ? (uint64_t{1} << 63) : static_cast<uint64_t>(std::ldexp(ratio_, 63));
}

Sampler Sampler::TraceIdRatio(double ratio) { return Sampler(Root::kTraceIdRatio, false, ratio); }

absl::StatusOr<Sampler> Sampler::FromName(absl::string_view name, absl::string_view arg) {
  const std::string lowered = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (lowered.empty() || lowered == "parentbased_always_on") return ParentBased(AlwaysOn());
  if (lowered == "always_on") return AlwaysOn();
  if (lowered == "always_off") return AlwaysOff();
  if (lowered == "parentbased_always_off") return ParentBased(AlwaysOff());
  if (lowered == "traceidratio" || lowered == "parentbased_traceidratio") {
    double ratio = 1.0;
    const absl::string_view trimmed_arg = absl::StripAsciiWhitespace(arg);
    if (!trimmed_arg.empty() &&
        (!absl::SimpleAtod(trimmed_arg, &ratio) || !(ratio >= 0.0 && ratio <= 1.0))) {
      return absl::InvalidArgumentError(
          absl::StrCat("OTEL_TRACES_SAMPLER_ARG=\"", arg, "\" is not a ratio between 0 and 1"));
    }
    const Sampler root = TraceIdRatio(ratio);
    return lowered == "traceidratio" ? root : ParentBased(root);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "OTEL_TRACES_SAMPLER=\"", name,
      "\" is not one of always_on, always_off, traceidratio, parentbased_always_on, "
      "parentbased_always_off, parentbased_traceidratio"));
}

bool Sampler::ShouldSample(const TraceContext& parent, const TraceId& trace_id) const {
  if (parent_based_ && parent.IsValid()) return parent.sampled();
  switch (root_) {
    case Root::kAlwaysOn:
      return true;
    case Root::kAlwaysOff:
      return false;
    case Root::kTraceIdRatio:
      return (trace_id.Low64() >> 1) < bound_;
  }
  return false;
}

std::string Sampler::Description() const {
  std::string root;
  switch (root_) {
    case Root::kAlwaysOn:
      root = "always_on";
      break;
    case Root::kAlwaysOff:
      root = "always_off";
      break;
    case Root::kTraceIdRatio:
      root = absl::StrCat("traceidratio(", ratio_, ")");
      break;
  }
  return parent_based_ ? absl::StrCat("parentbased_", root) : root;
}

// ---------------------------------------------------------------------------------------------
// Configuration

std::optional<std::string> LookupSetting(const EnvLookup& lookup, absl::string_view name) {
  std::optional<std::string> value = lookup(name);
  if (value.has_value() && value->empty()) return std::nullopt;
  return value;
}

EnvLookup ProcessEnvironment() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<std::vector<Attribute>> ParseResourceAttributes(absl::string_view text) {
  std::vector<Attribute> attributes;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;  // tolerate "a=1,,b=2" and a trailing comma
    const size_t equals = entry.find('=');
    if (equals == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("entry \"", entry, "\" has no '='"));
    }
    const absl::string_view key = absl::StripAsciiWhitespace(entry.substr(0, equals));
    if (key.empty()) return absl::InvalidArgumentError(absl::StrCat("entry \"", entry, "\" has an empty key"));
    absl::StatusOr<std::string> value = PercentDecode(absl::StripAsciiWhitespace(entry.substr(equals + 1)));
    if (!value.ok()) return value.status();
    PutAttribute(&attributes, key, *std::move(value));
  }
  return attributes;
}

absl::StatusOr<TracerOptions> TracerOptionsFromEnvironment(absl::string_view default_service_name,
                                                           const EnvLookup& lookup) {
  TracerOptions options;
  if (std::optional<std::string> disabled = LookupSetting(lookup, "OTEL_SDK_DISABLED")) {
    const std::string lowered = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*disabled));
    if (lowered == "true") {
      options.disabled = true;
    } else if (lowered != "false") {
      return absl::InvalidArgumentError(absl::StrCat("OTEL_SDK_DISABLED=\"", *disabled, "\" is not true or false"));
    }
  }

  absl::StatusOr<Sampler> sampler = Sampler::FromName(LookupSetting(lookup, "OTEL_TRACES_SAMPLER").value_or(""),
                                                      LookupSetting(lookup, "OTEL_TRACES_SAMPLER_ARG").value_or(""));
  if (!sampler.ok()) return sampler.status();
  options.sampler = *sampler;

  std::vector<Attribute> from_env;
  if (std::optional<std::string> text = LookupSetting(lookup, "OTEL_RESOURCE_ATTRIBUTES")) {
    absl::StatusOr<std::vector<Attribute>> parsed = ParseResourceAttributes(*text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("OTEL_RESOURCE_ATTRIBUTES: ", parsed.status().message()));
    }
    from_env = *std::move(parsed);
  }
  std::string service_name(default_service_name);
  for (const Attribute& attribute : from_env) {
    if (attribute.key == "service.name") service_name = std::get<std::string>(attribute.value);
  }
  if (std::optional<std::string> name = LookupSetting(lookup, "OTEL_SERVICE_NAME")) service_name = *name;

  PutAttribute(&options.resource, "service.name", service_name);
  for (Attribute& attribute : from_env) {
    if (attribute.key != "service.name") options.resource.push_back(std::move(attribute));
  }
  PutAttribute(&options.resource, "telemetry.sdk.name", std::string("ecomstream"));
  PutAttribute(&options.resource, "telemetry.sdk.language", std::string("cpp"));

  if (std::optional<std::string> exporter = LookupSetting(lookup, "OTEL_TRACES_EXPORTER")) {
    const std::string lowered = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*exporter));
    if (lowered == "none") {
      options.export_otlp = false;
    } else if (lowered != "otlp") {
      return absl::InvalidArgumentError(
          absl::StrCat("OTEL_TRACES_EXPORTER=\"", *exporter, "\" is not supported (otlp or none)"));
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Span

Span::Span(Span&& other) noexcept
    : context_(other.context_), data_(std::move(other.data_)), processor_(other.processor_) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    End();
    context_ = other.context_;
    data_ = std::move(other.data_);
    processor_ = other.processor_;
  }
  return *this;
}

void Span::SetAttribute(absl::string_view key, absl::string_view value) {
  if (data_ == nullptr) return;
  SetAttributeValue(key, AttributeValue(std::string(value)));
}

void Span::SetAttributeValue(absl::string_view key, AttributeValue value) {
  if (data_ == nullptr) return;
  if (!PutAttribute(&data_->attributes, key, std::move(value), kMaxAttributesPerSpan)) {
    ++data_->dropped_attributes_count;
  }
}

void Span::AddEvent(absl::string_view name) {
  if (data_ == nullptr) return;
  AddEvent(name, absl::Now());
}

void Span::AddEvent(absl::string_view name, absl::Time time) {
  if (data_ == nullptr) return;
  if (data_->events.size() >= kMaxEventsPerSpan) {
    ++data_->dropped_events_count;
    return;
  }
  data_->events.push_back(SpanEvent{std::string(name), absl::ToUnixNanos(time)});
}

void Span::SetStatus(const absl::Status& status) {
  if (data_ == nullptr) return;
  if (status.ok()) {
    data_->status_code = SpanStatusCode::kOk;
    data_->status_message.clear();
  } else {
    data_->status_code = SpanStatusCode::kError;
    data_->status_message = status.ToString();
  }
}

void Span::End() {
  if (data_ == nullptr) return;
  EndAt(NowUnixNanos());
}

void Span::End(absl::Time end_time) {
  if (data_ == nullptr) return;
  EndAt(absl::ToUnixNanos(end_time));
}

void Span::EndAt(int64_t end_unix_nanos) {
  data_->end_unix_nanos = std::max(end_unix_nanos, data_->start_unix_nanos);
  processor_->OnEnd(std::move(data_));
  data_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Tracer

Tracer::Tracer(TracerOptions options, std::unique_ptr<SpanProcessor> processor)
    : options_(std::move(options)), processor_(options_.disabled ? nullptr : std::move(processor)) {}

Tracer::~Tracer() {
  // The destructor has no one to report to; stats() kept the counts.
  (void)Shutdown(absl::Seconds(5));
}

absl::StatusOr<std::unique_ptr<Tracer>> Tracer::FromEnvironment(absl::string_view default_service_name,
                                                                 const EnvLookup& lookup) {
  absl::StatusOr<TracerOptions> options = TracerOptionsFromEnvironment(default_service_name, lookup);
  if (!options.ok()) return options.status();
  std::unique_ptr<SpanProcessor> processor;
  if (!options->disabled && options->export_otlp) {
    absl::StatusOr<OtlpExporterOptions> exporter_options = OtlpExporterOptionsFromEnvironment(lookup);
    if (!exporter_options.ok()) return exporter_options.status();
    absl::StatusOr<std::unique_ptr<OtlpExporter>> exporter =
        OtlpExporter::Create(*std::move(exporter_options), options->resource);
    if (!exporter.ok()) return exporter.status();
    processor = *std::move(exporter);
  }
  return std::make_unique<Tracer>(*std::move(options), std::move(processor));
}

std::unique_ptr<Tracer> Tracer::Disabled() {
  TracerOptions options;
  options.disabled = true;
  return std::make_unique<Tracer>(std::move(options), nullptr);
}

Span Tracer::StartSpan(absl::string_view name, SpanKind kind, const TraceContext& parent,
                       const StartSpanOptions& options) const {
  if (options_.disabled) return Span(parent, nullptr, nullptr);
  const bool has_parent = parent.IsValid();
  const TraceId trace_id =
      has_parent ? parent.trace_id() : options.root_trace_id.IsValid() ? options.root_trace_id : NewTraceId();
  const bool sampled = options_.sampler.ShouldSample(parent, trace_id);
  const TraceContext context(trace_id, options.span_id.IsValid() ? options.span_id : NewSpanId(),
                             sampled ? kTraceFlagSampled : 0);
  if (!sampled || processor_ == nullptr) return Span(context, nullptr, nullptr);

  auto data = std::make_unique<SpanData>();
  data->trace_id = trace_id;
  data->span_id = context.span_id();
  if (has_parent) data->parent_span_id = parent.span_id();
  data->flags = context.flags();
  data->name = std::string(name);
  data->kind = kind;
  data->attributes.reserve(kInitialAttributeCapacity);
  data->start_unix_nanos = options.start_time.has_value() ? absl::ToUnixNanos(*options.start_time) : NowUnixNanos();
  return Span(context, std::move(data), processor_.get());
}

ExportStats Tracer::stats() const { return processor_ == nullptr ? ExportStats() : processor_->stats(); }

absl::Status Tracer::ForceFlush(absl::Duration timeout) {
  return processor_ == nullptr ? absl::OkStatus() : processor_->ForceFlush(timeout);
}

absl::Status Tracer::Shutdown(absl::Duration timeout) {
  return processor_ == nullptr ? absl::OkStatus() : processor_->Shutdown(timeout);
}

}  // namespace ecomstream::tracing

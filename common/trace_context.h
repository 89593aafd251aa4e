// W3C Trace Context (https://www.w3.org/TR/trace-context/): trace and span ids, the
// `traceparent` header, and carrying it in gRPC metadata.
//
//   traceparent = "00-" 32 lower-hex trace id "-" 16 lower-hex parent span id "-" 2 hex flags
//   e.g.          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"   (01 = sampled)
//
// TraceContext is a small value type (26 bytes), safe to copy between threads. A default one is
// invalid: "no parent", which Tracer::StartSpan turns into a new trace.
#ifndef ECOMSTREAM_COMMON_TRACE_CONTEXT_H_
#define ECOMSTREAM_COMMON_TRACE_CONTEXT_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class ClientContext;
class ServerContextBase;
}  // namespace grpc

namespace ecomstream::tracing {

// 16 bytes; all zero is invalid.
struct TraceId {
  std::array<uint8_t, 16> bytes{};

  bool IsValid() const;
  // 32 lower-case hex digits.
  std::string ToHex() const;
  // Exactly 32 lower-case hex digits, not all zero; false otherwise (`*out` unspecified).
  static bool FromHex(absl::string_view hex, TraceId* out);
  // The raw 16 bytes (as OTLP's `bytes trace_id`).
  absl::string_view AsBytes() const {
    return absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  // The low 8 bytes as a big-endian integer: the random part that samplers look at.
  uint64_t Low64() const;
  friend bool operator==(const TraceId& a, const TraceId& b) { return a.bytes == b.bytes; }
  friend bool operator!=(const TraceId& a, const TraceId& b) { return !(a == b); }
};

// 8 bytes; all zero is invalid.
struct SpanId {
  std::array<uint8_t, 8> bytes{};

  bool IsValid() const;
  // 16 lower-case hex digits.
  std::string ToHex() const;
  // Exactly 16 lower-case hex digits, not all zero; false otherwise.
  static bool FromHex(absl::string_view hex, SpanId* out);
  absl::string_view AsBytes() const {
    return absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  friend bool operator==(const SpanId& a, const SpanId& b) { return a.bytes == b.bytes; }
  friend bool operator!=(const SpanId& a, const SpanId& b) { return !(a == b); }
};

// Fresh random ids from a thread-local absl::InsecureBitGen seeded from std::random_device (and
// reseeded in a forked child): never all zero, no locks, a few nanoseconds each. Not
// cryptographic (W3C does not ask for it).
TraceId NewTraceId();
SpanId NewSpanId();

inline constexpr uint8_t kTraceFlagSampled = 0x01;
// The gRPC metadata key (and the manifest/batch field meaning) for the header.
inline constexpr absl::string_view kTraceparentKey = "traceparent";

class TraceContext {
 public:
  // Invalid: no trace.
  TraceContext() = default;
  TraceContext(const TraceId& trace_id, const SpanId& span_id, uint8_t flags)
      : trace_id_(trace_id), span_id_(span_id), flags_(flags) {}

  // Parses a `traceparent` value. Accepts version 00 exactly as specified (55 characters) and,
  // as W3C asks, a later version (01..fe) whose first 55 characters parse, followed by nothing or
  // by "-" and more. Rejects version ff, upper-case or non-hex digits, all-zero ids, wrong field
  // lengths, missing or extra fields and trailing garbage after a version 00 header.
  // Surrounding whitespace (HTTP allows spaces and tabs; files end in newlines) is ignored.
  // kInvalidArgument (saying what is wrong) on anything else; callers then start a new trace.
  static absl::StatusOr<TraceContext> FromTraceparent(absl::string_view traceparent);

  // Like FromTraceparent, but any error yields the invalid context (for "continue if you can").
  static TraceContext FromTraceparentOrInvalid(absl::string_view traceparent);

  // "00-<trace>-<span>-<flags>" (version 00, lower case); "" when the context is invalid.
  std::string ToTraceparent() const;

  // Both ids valid.
  bool IsValid() const { return trace_id_.IsValid() && span_id_.IsValid(); }
  bool sampled() const { return (flags_ & kTraceFlagSampled) != 0; }
  const TraceId& trace_id() const { return trace_id_; }
  const SpanId& span_id() const { return span_id_; }
  uint8_t flags() const { return flags_; }

  friend bool operator==(const TraceContext& a, const TraceContext& b) {
    return a.trace_id_ == b.trace_id_ && a.span_id_ == b.span_id_ && a.flags_ == b.flags_;
  }
  friend bool operator!=(const TraceContext& a, const TraceContext& b) { return !(a == b); }

 private:
  TraceId trace_id_;
  SpanId span_id_;
  uint8_t flags_ = 0;
};

// Adds `traceparent: <context>` to an outgoing call's metadata. Does nothing for an invalid
// context. Call before the RPC starts (gRPC's rule for ClientContext::AddMetadata).
void InjectTraceparent(const TraceContext& context, grpc::ClientContext* client_context);

// The caller's context from an incoming call's `traceparent` metadata (sync or callback API);
// invalid when absent, repeated with different values, or malformed.
TraceContext ExtractTraceparent(const grpc::ServerContextBase& server_context);

}  // namespace ecomstream::tracing

#endif  // ECOMSTREAM_COMMON_TRACE_CONTEXT_H_

#include "common/trace_context.h"

#include <pthread.h>

#include <atomic>
#include <optional>
#include <random>

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ecomstream::tracing {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
// "00-" + 32 + "-" + 16 + "-" + 2
constexpr size_t kTraceparentSize = 55;

// Lower-case only: W3C forbids upper case in traceparent.
int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

template <size_t N>
bool DecodeLowerHex(absl::string_view hex, std::array<uint8_t, N>* out) {
  if (hex.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = LowerHexValue(hex[2 * i]);
    const int lo = LowerHexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <size_t N>
void AppendHex(const std::array<uint8_t, N>& bytes, std::string* out) {
  for (uint8_t b : bytes) {
    out->push_back(kHexDigits[b >> 4]);
    out->push_back(kHexDigits[b & 0x0f]);
  }
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& bytes) {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

// Bumped in a forked child so that its threads reseed instead of repeating the parent's ids.
std::atomic<uint64_t> fork_generation{0};

void OnForkChild() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

// Abseil's fast non-cryptographic generator, one per thread, seeded from std::random_device
// (the OS, so a forked child gets a fresh seed rather than a copy of the parent's state).
class IdGenerator {
 public:
  uint64_t Next() {
    const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
    if (!bits_.has_value() || generation != generation_) Seed(generation);
    return (*bits_)();
  }

 private:
  void Seed(uint64_t generation) {
    static const bool registered = [] { return ::pthread_atfork(nullptr, nullptr, &OnForkChild) == 0; }();
    (void)registered;
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    bits_.emplace(seed);
    generation_ = generation;
  }

  std::optional<absl::InsecureBitGen> bits_;
  uint64_t generation_ = 0;
};

IdGenerator& ThreadIdGenerator() {
  thread_local IdGenerator generator;
  return generator;
}

template <size_t N>
void FillRandomNonZero(std::array<uint8_t, N>* bytes) {
  auto& generator = ThreadIdGenerator();
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t word = generator.Next();
      for (size_t j = 0; j < 8 && i + j < N; ++j) (*bytes)[i + j] = static_cast<uint8_t>(word >> (8 * j));
    }
  } while (AllZero(*bytes));
}

}  // namespace

bool TraceId::IsValid() const { return !AllZero(bytes); }

std::string TraceId::ToHex() const {
  std::string out;
  out.reserve(32);
  AppendHex(bytes, &out);
  return out;
}

bool TraceId::FromHex(absl::string_view hex, TraceId* out) {
  return DecodeLowerHex(hex, &out->bytes) && out->IsValid();
}

uint64_t TraceId::Low64() const {
  uint64_t value = 0;
  for (size_t i = 8; i < 16; ++i) value = value << 8 | bytes[i];
  return value;
}

bool SpanId::IsValid() const { return !AllZero(bytes); }

std::string SpanId::ToHex() const {
  std::string out;
  out.reserve(16);
  AppendHex(bytes, &out);
  return out;
}

bool SpanId::FromHex(absl::string_view hex, SpanId* out) {
  return DecodeLowerHex(hex, &out->bytes) && out->IsValid();
}

TraceId NewTraceId() {
  TraceId id;
  FillRandomNonZero(&id.bytes);
  return id;
}

SpanId NewSpanId() {
  SpanId id;
  FillRandomNonZero(&id.bytes);
  return id;
}

absl::StatusOr<TraceContext> TraceContext::FromTraceparent(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.size() < kTraceparentSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("traceparent is ", text.size(), " characters, shorter than the 55 of version 00"));
  }
  std::array<uint8_t, 1> version;
  if (!DecodeLowerHex(text.substr(0, 2), &version) || text[2] != '-') {
    return absl::InvalidArgumentError("traceparent does not start with a 2-digit lower-case hex version and '-'");
  }
  if (version[0] == 0xff) return absl::InvalidArgumentError("traceparent version ff is forbidden");
  if (version[0] == 0x00 && text.size() != kTraceparentSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("traceparent version 00 must be exactly 55 characters, got ", text.size()));
  }
  if (text.size() > kTraceparentSize && text[kTraceparentSize] != '-') {
    return absl::InvalidArgumentError("traceparent of a later version has no '-' after the flags");
  }
  if (text[35] != '-' || text[52] != '-') {
    return absl::InvalidArgumentError("traceparent fields are not 32, 16 and 2 hex digits separated by '-'");
  }
  TraceContext context;
  if (!DecodeLowerHex(text.substr(3, 32), &context.trace_id_.bytes)) {
    return absl::InvalidArgumentError("traceparent trace id is not 32 lower-case hex digits");
  }
  if (!context.trace_id_.IsValid()) return absl::InvalidArgumentError("traceparent trace id is all zero");
  if (!DecodeLowerHex(text.substr(36, 16), &context.span_id_.bytes)) {
    return absl::InvalidArgumentError("traceparent parent id is not 16 lower-case hex digits");
  }
  if (!context.span_id_.IsValid()) return absl::InvalidArgumentError("traceparent parent id is all zero");
  std::array<uint8_t, 1> flags;
  if (!DecodeLowerHex(text.substr(53, 2), &flags)) {
    return absl::InvalidArgumentError("traceparent flags are not 2 lower-case hex digits");
  }
  context.flags_ = flags[0];
  return context;
}

TraceContext TraceContext::FromTraceparentOrInvalid(absl::string_view traceparent) {
  absl::StatusOr<TraceContext> context = FromTraceparent(traceparent);
  return context.ok() ? *context : TraceContext();
}

std::string TraceContext::ToTraceparent() const {
  if (!IsValid()) return std::string();
  std::string out;
  out.reserve(kTraceparentSize);
  out.append("00-");
  AppendHex(trace_id_.bytes, &out);
  out.push_back('-');
  AppendHex(span_id_.bytes, &out);
  out.push_back('-');
  AppendHex(std::array<uint8_t, 1>{flags_}, &out);
  return out;
}

void InjectTraceparent(const TraceContext& context, grpc::ClientContext* client_context) {
  if (!context.IsValid()) return;
  client_context->AddMetadata(std::string(kTraceparentKey), context.ToTraceparent());
}

TraceContext ExtractTraceparent(const grpc::ServerContextBase& server_context) {
  const auto& metadata = server_context.client_metadata();
  const auto range = metadata.equal_range(grpc::string_ref(kTraceparentKey.data(), kTraceparentKey.size()));
  if (range.first == range.second) return TraceContext();
  const grpc::string_ref first = range.first->second;
  for (auto it = std::next(range.first); it != range.second; ++it) {
    if (it->second != first) return TraceContext();
  }
  return TraceContext::FromTraceparentOrInvalid(absl::string_view(first.data(), first.size()));
}

}  // namespace ecomstream::tracing

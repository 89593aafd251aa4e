// retry: exponential backoff with jitter and a circuit breaker, for talking to the writer
// (docs/design.md, "Delivery": writer down -> back off, keep the files).
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_RETRY_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_RETRY_H_

#include <cstdint>
#include <functional>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ecomstream::processor {

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(100);
  absl::Duration max = absl::Seconds(5);
  double multiplier = 2.0;
};

// Delay n (from 0) is d/2 + uniform[0, d/2] with d = min(max, initial * multiplier^n): growing,
// never zero, and spread so that many clients do not retry in step. Not thread-safe.
class Backoff {
 public:
  Backoff(BackoffOptions options, uint64_t seed);
  absl::Duration Next();
  void Reset() { attempt_ = 0; }
  // Delay `attempt` (from 0) for callers that keep the attempt count themselves (one per file);
  // does not move the sequence Next() walks.
  absl::Duration Delay(int attempt);

 private:
  BackoffOptions options_;
  std::mt19937_64 rng_;
  int attempt_ = 0;
};

struct CircuitBreakerOptions {
  int failure_threshold = 5;                         // consecutive failures that open it
  absl::Duration open_duration = absl::Seconds(5);   // then one trial call is let through
};

// Closed: calls pass; `failure_threshold` consecutive failures open it. Open: calls are refused
// until `open_duration` has passed, then it is half-open. Half-open: one trial call passes
// (others are refused); its success closes the breaker, its failure opens it again.
// Every call Allow() let through must be followed by RecordSuccess or RecordFailure.
// Thread-safe.
class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  // `now` is injectable for tests; `on_change` (may be empty) runs, under the breaker's lock, on
  // every state change.
  CircuitBreaker(CircuitBreakerOptions options, std::function<absl::Time()> now = nullptr,
                 std::function<void(State)> on_change = nullptr);

  bool Allow();
  void RecordSuccess();
  void RecordFailure();

  State state() const;
  // When an open breaker lets the next trial through (InfinitePast unless open).
  absl::Time retry_at() const;

 private:
  void SetState(State state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CircuitBreakerOptions options_;
  const std::function<absl::Time()> now_;
  const std::function<void(State)> on_change_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kClosed;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time open_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool trial_in_progress_ ABSL_GUARDED_BY(mu_) = false;
};

absl::string_view CircuitStateName(CircuitBreaker::State state);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_RETRY_H_

#include "services/processor/retry.h"

#include <algorithm>
#include <cmath>

#include "absl/time/clock.h"

namespace ecomstream::processor {

Backoff::Backoff(BackoffOptions options, uint64_t seed) : options_(options), rng_(seed) {}

absl::Duration Backoff::Next() { return Delay(attempt_++); }

absl::Duration Backoff::Delay(int attempt) {
  const double factor = std::pow(options_.multiplier, std::clamp(attempt, 0, 62));
  const absl::Duration d = std::min(options_.max, options_.initial * factor);
  const double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  return d / 2 + (d / 2) * jitter;
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, std::function<absl::Time()> now,
                               std::function<void(State)> on_change)
    : options_(options),
      now_(now ? std::move(now) : std::function<absl::Time()>(&absl::Now)),
      on_change_(std::move(on_change)) {}

void CircuitBreaker::SetState(State state) {
  if (state == state_) return;
  state_ = state;
  if (on_change_) on_change_(state);
}

bool CircuitBreaker::Allow() {
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (now_() < open_until_) return false;
      SetState(State::kHalfOpen);
      trial_in_progress_ = true;
      return true;
    case State::kHalfOpen:
      if (trial_in_progress_) return false;
      trial_in_progress_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::RecordSuccess() {
  absl::MutexLock lock(&mu_);
  failures_ = 0;
  trial_in_progress_ = false;
  SetState(State::kClosed);
}

void CircuitBreaker::RecordFailure() {
  absl::MutexLock lock(&mu_);
  trial_in_progress_ = false;
  ++failures_;
  if (state_ == State::kHalfOpen || failures_ >= options_.failure_threshold) {
    open_until_ = now_() + options_.open_duration;
    SetState(State::kOpen);
  }
}

CircuitBreaker::State CircuitBreaker::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::Time CircuitBreaker::retry_at() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kOpen ? open_until_ : absl::InfinitePast();
}

absl::string_view CircuitStateName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed: return "closed";
    case CircuitBreaker::State::kOpen: return "open";
    case CircuitBreaker::State::kHalfOpen: return "half_open";
  }
  return "unknown";
}

}  // namespace ecomstream::processor

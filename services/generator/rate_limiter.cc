#include "services/generator/rate_limiter.h"

namespace ecomstream::generator {

RateLimiter::RateLimiter(double events_per_second, Clock* clock, int64_t max_lag_micros)
    : interval_(1e6 / events_per_second), clock_(clock), max_lag_(max_lag_micros) {}

int64_t RateLimiter::DelayMicros() {
  const int64_t now = clock_->NowMicros();
  if (!started_) {
    started_ = true;
    start_ = now;
  }
  const int64_t due = DueMicros();
  if (due > now) {
    // A clock that jumped backwards would otherwise stall us for the jump's length.
    if (due - now > static_cast<int64_t>(interval_) + max_lag_) {
      start_ -= due - now;
      return 0;
    }
    return due - now;
  }
  if (now - due > max_lag_) start_ += now - due - max_lag_;
  return 0;
}

}  // namespace ecomstream::generator

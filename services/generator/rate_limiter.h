// Paces events to a steady rate on an injectable clock.
//
// An absolute schedule: event k is due at start + k / rate, so the time spent between events
// (formatting, writing, fsync, sleep overshoot) is made up by the following events and the
// long-run rate is exact. A backlog larger than `max_lag` (a stall, a clock jump) is forgiven
// rather than burst out. Not thread-safe.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_RATE_LIMITER_H_
#define ECOMSTREAM_SERVICES_GENERATOR_RATE_LIMITER_H_

#include <cstdint>

#include "services/generator/clock.h"

namespace ecomstream::generator {

class RateLimiter {
 public:
  // `events_per_second` > 0; `clock` must outlive the limiter.
  RateLimiter(double events_per_second, Clock* clock, int64_t max_lag_micros = 1'000'000);

  // Microseconds until the next event is due; 0 when it may go now. The first call starts
  // the schedule.
  int64_t DelayMicros();
  // Counts one event as sent.
  void Take() { ++sent_; }

 private:
  int64_t DueMicros() const { return start_ + static_cast<int64_t>(static_cast<double>(sent_) * interval_); }

  const double interval_;  // microseconds per event
  Clock* const clock_;
  const int64_t max_lag_;
  bool started_ = false;
  int64_t start_ = 0;
  int64_t sent_ = 0;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_RATE_LIMITER_H_

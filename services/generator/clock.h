// Time as the generator sees it, injectable so pacing and timestamps are testable without
// sleeping.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_CLOCK_H_
#define ECOMSTREAM_SERVICES_GENERATOR_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace ecomstream::generator {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix microseconds, UTC.
  virtual int64_t NowMicros() = 0;
  // Blocks the calling thread for `micros` (>= 0).
  virtual void SleepMicros(int64_t micros) = 0;
};

// The wall clock and a real sleep. Thread-safe.
class SystemClock : public Clock {
 public:
  static SystemClock* Get();
  int64_t NowMicros() override;
  void SleepMicros(int64_t micros) override;
};

// A clock that moves only when slept on or advanced: sleeping returns at once, having moved
// the time forward. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_micros) : now_(start_micros) {}
  int64_t NowMicros() override { return now_.load(std::memory_order_relaxed); }
  void SleepMicros(int64_t micros) override { Advance(micros); }
  void Advance(int64_t micros) { now_.fetch_add(micros, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_CLOCK_H_

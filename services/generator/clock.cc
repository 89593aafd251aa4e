#include "services/generator/clock.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/time_util.h"

namespace ecomstream::generator {

SystemClock* SystemClock::Get() {
  static auto* clock = new SystemClock();
  return clock;
}

int64_t SystemClock::NowMicros() { return ecomstream::NowMicros(); }

void SystemClock::SleepMicros(int64_t micros) {
  if (micros > 0) absl::SleepFor(absl::Microseconds(micros));
}

}  // namespace ecomstream::generator

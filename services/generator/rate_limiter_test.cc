#include "services/generator/rate_limiter.h"

#include "gtest/gtest.h"
#include "services/generator/random.h"

namespace ecomstream::generator {
namespace {

// Drives the limiter like Generator does: ask, sleep (in slices of at most 50 ms), send; each
// send costs some processing time. Returns events sent within `window_us`.
int64_t EventsWithin(double rate, int64_t window_us, int64_t max_cost_us, uint64_t seed) {
  ManualClock clock(1'000'000'000);
  RateLimiter limiter(rate, &clock);
  Rng rng(seed);
  const int64_t start = clock.NowMicros();
  int64_t sent = 0;
  while (true) {
    const int64_t delay = limiter.DelayMicros();
    if (delay > 0) {
      clock.SleepMicros(std::min<int64_t>(delay, 50'000));
      continue;
    }
    if (clock.NowMicros() - start >= window_us) break;
    limiter.Take();
    ++sent;
    clock.Advance(static_cast<int64_t>(rng.Uniform(max_cost_us + 1)));
  }
  return sent;
}

TEST(RateLimiterTest, HoldsTheRateWithinTwoPercentOverTenSeconds) {
  for (double rate : {1.0, 50.0, 1000.0, 20'000.0}) {
    // Processing costs up to 80% of the interval, as when a file is fsynced now and then.
    const auto cost = static_cast<int64_t>(0.8e6 / rate);
    const int64_t sent = EventsWithin(rate, 10'000'000, cost, 1);
    EXPECT_NEAR(sent, rate * 10, rate * 10 * 0.02) << "rate " << rate;
  }
}

TEST(RateLimiterTest, MakesUpForSlowSendsWithoutDrifting) {
  ManualClock clock(0);
  RateLimiter limiter(100, &clock);  // 10 ms apart
  ASSERT_EQ(limiter.DelayMicros(), 0);
  limiter.Take();
  clock.Advance(25'000);  // a slow send: 2.5 intervals
  EXPECT_EQ(limiter.DelayMicros(), 0);
  limiter.Take();
  EXPECT_EQ(limiter.DelayMicros(), 0);
  limiter.Take();
  EXPECT_EQ(limiter.DelayMicros(), 5'000) << "the third event is due at 30 ms";
}

TEST(RateLimiterTest, ForgivesABacklogLongerThanTheMaximumLag) {
  ManualClock clock(0);
  RateLimiter limiter(1000, &clock, /*max_lag_micros=*/100'000);
  ASSERT_EQ(limiter.DelayMicros(), 0);
  limiter.Take();
  clock.Advance(5'000'000);  // a 5 s stall
  int burst = 0;
  while (limiter.DelayMicros() == 0) {
    limiter.Take();
    ++burst;
  }
  EXPECT_EQ(burst, 101) << "only the last 100 ms are made up";
}

TEST(RateLimiterTest, ClockJumpingBackwardsDoesNotStall) {
  ManualClock clock(10'000'000);
  RateLimiter limiter(10, &clock);
  ASSERT_EQ(limiter.DelayMicros(), 0);
  limiter.Take();
  clock.Advance(-3'600'000'000);  // an hour back
  EXPECT_EQ(limiter.DelayMicros(), 0);
  limiter.Take();
  EXPECT_EQ(limiter.DelayMicros(), 100'000);
}

}  // namespace
}  // namespace ecomstream::generator

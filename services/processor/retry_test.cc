#include "services/processor/retry.h"

#include <vector>

#include "gtest/gtest.h"

namespace ecomstream::processor {
namespace {

TEST(BackoffTest, GrowsExponentiallyWithJitterWithinBoundsAndResets) {
  Backoff backoff(BackoffOptions{absl::Milliseconds(100), absl::Seconds(1), 2.0}, 42);
  const std::vector<int64_t> caps_ms = {100, 200, 400, 800, 1000, 1000};
  for (int64_t cap : caps_ms) {
    const int64_t d = absl::ToInt64Milliseconds(backoff.Next());
    EXPECT_GE(d, cap / 2);
    EXPECT_LE(d, cap);
  }
  backoff.Reset();
  EXPECT_LE(absl::ToInt64Milliseconds(backoff.Next()), 100);
}

TEST(BackoffTest, JitterSpreadsClientsApart) {
  Backoff a(BackoffOptions{absl::Seconds(1), absl::Seconds(10), 2.0}, 1);
  Backoff b(BackoffOptions{absl::Seconds(1), absl::Seconds(10), 2.0}, 2);
  EXPECT_NE(a.Next(), b.Next());
}

class CircuitBreakerTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::UnixEpoch();
  std::vector<CircuitBreaker::State> changes_;
  CircuitBreaker breaker_{CircuitBreakerOptions{3, absl::Seconds(5)}, [this] { return now_; },
                          [this](CircuitBreaker::State s) { changes_.push_back(s); }};
};

TEST_F(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker_.Allow());
    breaker_.RecordFailure();
  }
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  ASSERT_TRUE(breaker_.Allow());
  breaker_.RecordFailure();
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(breaker_.Allow());
  EXPECT_EQ(breaker_.retry_at(), now_ + absl::Seconds(5));
}

TEST_F(CircuitBreakerTest, SuccessResetsTheFailureCount) {
  breaker_.RecordFailure();
  breaker_.RecordFailure();
  breaker_.RecordSuccess();
  breaker_.RecordFailure();
  breaker_.RecordFailure();
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
}

TEST_F(CircuitBreakerTest, HalfOpenLetsOneTrialThroughAndItsSuccessCloses) {
  for (int i = 0; i < 3; ++i) breaker_.RecordFailure();
  now_ += absl::Seconds(5);
  ASSERT_TRUE(breaker_.Allow());   // the trial
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kHalfOpen);
  EXPECT_FALSE(breaker_.Allow());  // others wait for it
  breaker_.RecordSuccess();
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(breaker_.Allow());
  EXPECT_EQ(changes_, (std::vector<CircuitBreaker::State>{CircuitBreaker::State::kOpen,
                                                          CircuitBreaker::State::kHalfOpen,
                                                          CircuitBreaker::State::kClosed}));
}

TEST_F(CircuitBreakerTest, FailedTrialReopensForAnotherPeriod) {
  for (int i = 0; i < 3; ++i) breaker_.RecordFailure();
  now_ += absl::Seconds(6);
  ASSERT_TRUE(breaker_.Allow());
  breaker_.RecordFailure();
  EXPECT_EQ(breaker_.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker_.retry_at(), now_ + absl::Seconds(5));
  EXPECT_FALSE(breaker_.Allow());
}

}  // namespace
}  // namespace ecomstream::processor

// Waiting with a deadline instead of sleeping a guessed time.
#ifndef ECOMSTREAM_TESTS_TESTING_WAIT_H_
#define ECOMSTREAM_TESTS_TESTING_WAIT_H_

#include <functional>

#include "absl/time/time.h"

namespace ecomstream::testing {

// Polls `done` every `poll` until it returns true (true) or `timeout` passes (false).
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout,
               absl::Duration poll = absl::Milliseconds(50));

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_TESTING_WAIT_H_

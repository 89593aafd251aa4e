// Checks a Prometheus text exposition (format 0.0.4) the way the metrics tests need:
//
//   EXPECT_OK(CheckMetricsText(metrics::Registry::Default().ExportText()));
//
// For tests only: PromtoolCheckMetrics starts a process. Thread-safe (no shared state).
#ifndef ECOMSTREAM_TESTS_OTEL_METRICS_CHECK_H_
#define ECOMSTREAM_TESTS_OTEL_METRICS_CHECK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ecomstream::testing {

// Runs `promtool check metrics` (from PATH) with `text` on its stdin. OK when promtool has no
// complaint; kInvalidArgument carrying promtool's output when it has lint problems or cannot parse
// the text; kFailedPrecondition when promtool is not installed.
absl::Status PromtoolCheckMetrics(absl::string_view text);

// For every family declared `# TYPE <name> histogram`, and every label set (without `le`) among its
// `_bucket`, `_sum` and `_count` samples: there is an `le="+Inf"` bucket, it equals `_count`, and
// bucket values do not decrease as `le` grows. promtool checks none of this. kInvalidArgument
// listing every problem (one per line), including sample lines that do not parse.
absl::Status CheckHistogramBuckets(absl::string_view text);

// Both of the above; the first failure wins.
absl::Status CheckMetricsText(absl::string_view text);

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_OTEL_METRICS_CHECK_H_

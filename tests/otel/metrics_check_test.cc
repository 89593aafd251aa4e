#include "tests/otel/metrics_check.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ecomstream::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A small exposition that follows every Prometheus convention.
constexpr char kGood[] = R"(# HELP ecomstream_rows_total Rows read, by outcome.
# TYPE ecomstream_rows_total counter
ecomstream_rows_total{outcome="inserted"} 10
ecomstream_rows_total{outcome="dead_letter",reason="bad_price"} 2
# HELP ecomstream_inflight_batches Unacknowledged batches.
# TYPE ecomstream_inflight_batches gauge
ecomstream_inflight_batches 3
# HELP ecomstream_commit_latency_seconds Time from BEGIN to COMMIT.
# TYPE ecomstream_commit_latency_seconds histogram
ecomstream_commit_latency_seconds_bucket{service="writer",le="0.005"} 1
ecomstream_commit_latency_seconds_bucket{service="writer",le="0.05"} 4
ecomstream_commit_latency_seconds_bucket{service="writer",le="+Inf"} 5
ecomstream_commit_latency_seconds_sum{service="writer"} 0.31
ecomstream_commit_latency_seconds_count{service="writer"} 5
ecomstream_commit_latency_seconds_bucket{service="odd \"name\", {x}",le="0.005"} 0
ecomstream_commit_latency_seconds_bucket{service="odd \"name\", {x}",le="+Inf"} 0
ecomstream_commit_latency_seconds_sum{service="odd \"name\", {x}"} 0
ecomstream_commit_latency_seconds_count{service="odd \"name\", {x}"} 0
)";

TEST(PromtoolCheckMetricsTest, AcceptsAConventionalExposition) {
  absl::Status status = PromtoolCheckMetrics(kGood);
  EXPECT_TRUE(status.ok()) << status;
}

TEST(PromtoolCheckMetricsTest, ReportsLintProblemsInPromtoolsWords) {
  absl::Status status = PromtoolCheckMetrics("# TYPE requests counter\nrequests 1\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("requests no help text"));
  EXPECT_THAT(status.message(), HasSubstr("counter metrics should have \"_total\" suffix"));
}

TEST(PromtoolCheckMetricsTest, ReportsUnparseableText) {
  absl::Status status = PromtoolCheckMetrics("# HELP x_total y\n# TYPE x_total counter\nx_total{le=} 1\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("parsing error"));
}

TEST(CheckHistogramBucketsTest, AcceptsCumulativeBucketsEndingInInfEqualToCount) {
  absl::Status status = CheckHistogramBuckets(kGood);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(CheckMetricsText(kGood).ok());
  EXPECT_TRUE(CheckHistogramBuckets("").ok());
}

TEST(CheckHistogramBucketsTest, FindsTheLabelSetWithoutAnInfBucket) {
  // promtool itself accepts this text: the check exists because it does not look.
  constexpr char kNoInf[] = R"(# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{svc="a",le="1"} 1
lat_seconds_bucket{svc="a",le="+Inf"} 1
lat_seconds_sum{svc="a"} 0.5
lat_seconds_count{svc="a"} 1
lat_seconds_bucket{svc="b",le="1"} 2
lat_seconds_sum{svc="b"} 0.5
lat_seconds_count{svc="b"} 2
)";
  EXPECT_TRUE(PromtoolCheckMetrics(kNoInf).ok());
  absl::Status status = CheckHistogramBuckets(kNoInf);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "histogram lat_seconds{svc=\"b\"} has no le=\"+Inf\" bucket");
  EXPECT_EQ(CheckMetricsText(kNoInf).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckHistogramBucketsTest, AHistogramWithOnlySumAndCountHasNoInfBucket) {
  absl::Status status = CheckHistogramBuckets("# TYPE h histogram\nh_sum 1\nh_count 1\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "histogram h{} has no le=\"+Inf\" bucket");
}

TEST(CheckHistogramBucketsTest, FindsAnInfBucketThatDisagreesWithCount) {
  absl::Status status = CheckHistogramBuckets(
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "histogram h{}: le=\"+Inf\" bucket is 2 but _count is 3");
}

TEST(CheckHistogramBucketsTest, FindsNonCumulativeBucketsWhateverTheLineOrder) {
  absl::Status status = CheckHistogramBuckets(
      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\nh_bucket{le=\"0.1\"} 4\nh_bucket{le=\"1\"} 1\nh_count 5\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("buckets must be cumulative"));
  EXPECT_THAT(status.message(), HasSubstr("le=1 (1) is below le=0.1 (4)"));
}

TEST(CheckHistogramBucketsTest, ReportsBucketsWithoutLeAndLinesThatAreNotSamples) {
  absl::Status status = CheckHistogramBuckets(
      "# TYPE h histogram\nh_bucket{x=\"1\"} 1\nh_bucket{le=\"abc\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
      "h_count 1\nbroken{le=\"1\" 1\nunterminated{a=\"b} 1\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("line 2: bucket without a numeric le label"));
  EXPECT_THAT(status.message(), HasSubstr("line 3: bucket without a numeric le label"));
  EXPECT_THAT(status.message(), HasSubstr("line 6 is not a sample"));
  EXPECT_THAT(status.message(), HasSubstr("line 7 is not a sample"));
  // The h{x="1"} label set only has a bucket without le, so it has no +Inf bucket either.
  EXPECT_THAT(status.message(), Not(HasSubstr("histogram h{}")));
}

TEST(CheckHistogramBucketsTest, IgnoresFamiliesThatAreNotHistograms) {
  // A counter that happens to end in _bucket is not a histogram bucket.
  EXPECT_TRUE(CheckHistogramBuckets("# TYPE s3_bucket counter\ns3_bucket 1\n# TYPE q summary\nq_count 1\n").ok());
}

}  // namespace
}  // namespace ecomstream::testing

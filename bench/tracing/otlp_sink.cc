// otlp_sink: a standalone OTLP/gRPC trace collector for benchmarks (tests/otel's TestCollector
// counting spans without keeping them). Prints its endpoint on the first line of stdout, serves
// until SIGTERM or SIGINT, then prints "spans=N exports=M" and exits 0.
//
//   bench/tracing/pipeline_overhead.sh starts it with:  otlp_sink > sink.out &
#include <cstdio>

#include "common/shutdown.h"
#include "tests/otel/test_collector.h"

int main() {
  ecomstream::ShutdownSignal::Get().Install();
  auto collector = ecomstream::testing::TestCollector::Start();
  if (!collector.ok()) {
    std::fprintf(stderr, "otlp_sink: %s\n", collector.status().ToString().c_str());
    return 1;
  }
  (*collector)->SetKeepSpans(false);
  std::printf("%s\n", (*collector)->endpoint().c_str());
  std::fflush(stdout);
  ecomstream::ShutdownSignal::Get().Wait();
  std::printf("spans=%zu exports=%lld\n", (*collector)->span_count(),
              static_cast<long long>((*collector)->export_calls()));
  return 0;
}

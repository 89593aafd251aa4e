// Prometheus metrics: counters, gauges and histograms with labels, exported in the text format
// (version 0.0.4) by StatusServer at /metrics.
//
//   auto& rows = metrics::Registry::Default().GetCounter(
//       "ecomstream_processor_rows_total", "Rows read, by outcome.", {{"outcome", "inserted"}});
//   rows.Increment(batch_size);
//
// Get* registers on first call and returns the same object for the same name and labels; the
// reference stays valid for the registry's lifetime, so callers look metrics up once and keep
// the reference. Every operation is thread-safe; Increment/Set/Observe are lock-free.
// Names follow Prometheus conventions: `ecomstream_` prefix, base units (seconds, bytes),
// counters end in `_total`.
#ifndef ECOMSTREAM_COMMON_METRICS_H_
#define ECOMSTREAM_COMMON_METRICS_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace ecomstream::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  // `value` must be >= 0 (a negative increment is ignored: counters never go down).
  void Increment(double value = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `upper_bounds` ascending, without +Inf (always added).
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);
  // The sum of the bucket counts.
  uint64_t Count() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Non-cumulative count of bucket i (i == upper_bounds().size() is the +Inf bucket).
  uint64_t BucketCount(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0.0};
};

// Seconds: 100 us .. 60 s, for latencies.
std::vector<double> LatencyBuckets();
// Counts/sizes: 1 .. ~1M in powers of 4.
std::vector<double> SizeBuckets();

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The process-wide registry the services export.
  static Registry& Default();

  Counter& GetCounter(absl::string_view name, absl::string_view help, const Labels& labels = {});
  Gauge& GetGauge(absl::string_view name, absl::string_view help, const Labels& labels = {});
  Histogram& GetHistogram(absl::string_view name, absl::string_view help, const std::vector<double>& upper_bounds,
                          const Labels& labels = {});

  // The Prometheus text exposition of every metric, families sorted by name. Runs the collect
  // hooks first.
  std::string ExportText() const;

  // Runs `hook` at the start of every ExportText, so a metric that mirrors state kept elsewhere
  // (e.g. the span exporter's counters, common/span_metrics.h) is current at each scrape. Hooks
  // run one at a time, in the order added, outside the registry's metric lock (they may call
  // Get*), and must not call ExportText or the hook methods. Returns an id for RemoveCollectHook.
  int AddCollectHook(std::function<void()> hook);
  // Once this returns, the hook is not running and never runs again. Unknown ids are ignored.
  void RemoveCollectHook(int id);

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string escaped_help;  // for the text format
    // Keyed by the rendered label set, e.g. `outcome="inserted",reason=""`.
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& GetFamily(absl::string_view name, absl::string_view help, Type type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
  // Held while hooks run (never together with mu_ held first), so removal waits for a running hook.
  mutable absl::Mutex hooks_mu_;
  std::map<int, std::function<void()>> hooks_ ABSL_GUARDED_BY(hooks_mu_);
  int next_hook_id_ ABSL_GUARDED_BY(hooks_mu_) = 0;
};

// Registers `ecomstream_build_info{service,version} 1`.
void RegisterBuildInfo(Registry& registry, absl::string_view service);

// Escapes a label value for the text format (\\, \", \n).
std::string EscapeLabelValue(absl::string_view value);

}  // namespace ecomstream::metrics

#endif  // ECOMSTREAM_COMMON_METRICS_H_

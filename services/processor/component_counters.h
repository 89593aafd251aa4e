// component_counters: what one pipeline component received, sent, dropped and failed on, in the
// `ecomstream_processor_component_*_total{component="..."}` families. Each component moves its
// own counters (given at construction, null where nobody watches); everything else reads them.
// Thread-safe: every member is a lock-free counter.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_COMPONENT_COUNTERS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_COMPONENT_COUNTERS_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace ecomstream::processor {

struct ComponentCounters {
  ComponentCounters(metrics::Registry& registry, absl::string_view component);
  metrics::Counter& received;
  metrics::Counter& sent;
  metrics::Counter& dropped;
  metrics::Counter& failed;
};

// One component's counts held in plain integers and added to its ComponentCounters in bulk: on
// Flush(), on every kFlushEveryRows-th Row(), and on destruction. An increment of a Counter is an
// atomic read-modify-write, and the several per row were 3% of the processor's CPU. Not
// thread-safe: one per component instance.
class BufferedCounts {
 public:
  static constexpr int kFlushEveryRows = 1024;

  // `counters` may be null (nothing is counted then); it must outlive this.
  explicit BufferedCounts(ComponentCounters* counters) : counters_(counters) {}
  BufferedCounts(const BufferedCounts&) = delete;
  BufferedCounts& operator=(const BufferedCounts&) = delete;
  ~BufferedCounts() { Flush(); }

  int64_t received = 0;
  int64_t sent = 0;
  int64_t dropped = 0;
  int64_t failed = 0;

  // Marks the end of one row's counting.
  void Row() {
    if (++rows_ == kFlushEveryRows) Flush();
  }
  void Flush() {
    rows_ = 0;
    if (counters_ == nullptr) return;
    if (received != 0) counters_->received.Increment(static_cast<double>(received));
    if (sent != 0) counters_->sent.Increment(static_cast<double>(sent));
    if (dropped != 0) counters_->dropped.Increment(static_cast<double>(dropped));
    if (failed != 0) counters_->failed.Increment(static_cast<double>(failed));
    received = sent = dropped = failed = 0;
  }

 private:
  ComponentCounters* const counters_;
  int rows_ = 0;
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_COMPONENT_COUNTERS_H_

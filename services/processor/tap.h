// tap: live rows for people, `GET /tap` on the processor's --metrics_address (docs/rows.md,
// "Watching rows live"). Each row the validator decides on can be offered to the tap; every
// subscriber gets the rows its filter passes as JSON lines:
//   {"time":"...","file":"events-000001.csv","row":12,"line":13,"outcome":"dead_letter",
//    "reasons":["unknown_category"],"detail":"category: ...","raw":"..."}
//   {"time":"...","file":"...","row":13,"line":14,"outcome":"event","event_id":"...",
//    "event_type":"view","category":"books","raw":"..."}
// Query parameters: outcome=event|dead_letter|duplicate (repeatable or comma-separated; default
// all), reason=<reason code> (repeatable or comma-separated; implies dead letters), rate=<rows
// per second, 1..1000, default 100>. A bad value is a 400 naming it.
//
// It never slows the pipeline: Offer() is one atomic load while nobody watches; with watchers,
// a row over a subscriber's rate or beyond its bounded buffer is dropped for that subscriber and
// counted (ecomstream_processor_tap_rows_total{result="sent"|"rate_limited"|"dropped"}), never
// waited for. Subscribers are capped (a 503 beyond); each one holds a connection thread.
//
// Thread-safe.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_TAP_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_TAP_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "common/status_server.h"
#include "services/processor/csv_reader.h"
#include "services/processor/row_validator.h"

namespace ecomstream::processor {

struct TapFilter {
  bool events = true;
  bool dead_letters = true;
  bool duplicates = true;
  std::vector<RejectReason> reasons;  // non-empty: dead letters with one of these only
  int rows_per_second = 100;
};

// Parses /tap's query parameters (name -> values, as the HTTP server splits them).
// kInvalidArgument naming the parameter and value for an unknown parameter, outcome or reason,
// or a rate outside 1..1000.
absl::StatusOr<TapFilter> ParseTapFilter(const std::multimap<std::string, std::string>& params);

struct TapOptions {
  int max_subscribers = 4;
  size_t buffer_lines = 1000;  // per subscriber
};

class Tap {
 public:
  // `registry` may be null; it must outlive the tap.
  Tap(TapOptions options, metrics::Registry* registry);
  ~Tap();

  // Whether anyone watches: check before Offer to keep the pipeline's cost at one atomic load.
  bool active() const { return subscribers_.load(std::memory_order_relaxed) > 0; }
  // Offers the row `validator` just decided on (its last Validate). Never blocks.
  void Offer(absl::string_view file_name, int64_t row, const CsvRecord& record, RowOutcome outcome,
             const RowValidator& validator);

  class Subscription {
   public:
    ~Subscription();
    // Waits up to `timeout` for lines; appends them to `out`. False once the tap is closing.
    bool Next(std::string* out, absl::Duration timeout);

   private:
    friend class Tap;
    Subscription(Tap* tap, TapFilter filter) : tap_(tap), filter_(std::move(filter)) {}
    Tap* tap_;
    const TapFilter filter_;
    // Guarded by tap_->mu_.
    std::deque<std::string> lines_;
    double tokens_ = 0;
    int64_t refilled_us_ = 0;
  };
  // kResourceExhausted when max_subscribers watch already.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(TapFilter filter);

  // Serves GET /tap on `server` (call before its Start).
  void Serve(StatusServer* server);
  // Ends every subscription (their Next returns false); new ones are refused.
  void Close();

 private:
  TapOptions options_;
  metrics::Counter* sent_ = nullptr;
  metrics::Counter* rate_limited_ = nullptr;
  metrics::Counter* dropped_ = nullptr;
  std::atomic<int> subscribers_{0};
  absl::Mutex mu_;
  absl::CondVar changed_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Subscription*> subscriptions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_TAP_H_

// component_counters: what one pipeline component received, sent, dropped and failed on, in the
// `ecomstream_processor_component_*_total{component="..."}` families. Each component moves its
// own counters (given at construction, null where nobody watches); everything else reads them.
// Thread-safe: every member is a lock-free counter.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_COMPONENT_COUNTERS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_COMPONENT_COUNTERS_H_

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

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_COMPONENT_COUNTERS_H_

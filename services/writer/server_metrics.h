// server_metrics: the Prometheus series of the writer's gRPC edge (what it commits is counted by
// pg/writer_metrics.h):
//   ecomstream_writer_database_up                     1 while the database is usable
//   ecomstream_writer_active_streams                  open Write streams (the in-flight window)
// Thread-safe.
#ifndef ECOMSTREAM_SERVICES_WRITER_SERVER_METRICS_H_
#define ECOMSTREAM_SERVICES_WRITER_SERVER_METRICS_H_

#include "common/metrics.h"

namespace ecomstream::writer {

class ServerMetrics {
 public:
  // `registry` must outlive this object.
  explicit ServerMetrics(metrics::Registry* registry);

  void SetDatabaseUp(bool up) { database_up_.Set(up ? 1 : 0); }
  void StreamOpened() { active_streams_.Add(1); }
  void StreamClosed() { active_streams_.Add(-1); }

 private:
  metrics::Gauge& database_up_;
  metrics::Gauge& active_streams_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_SERVER_METRICS_H_

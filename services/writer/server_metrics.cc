#include "services/writer/server_metrics.h"

namespace ecomstream::writer {

ServerMetrics::ServerMetrics(metrics::Registry* registry)
    : database_up_(registry->GetGauge("ecomstream_writer_database_up", "1 while the database is usable.")),
      active_streams_(registry->GetGauge("ecomstream_writer_active_streams", "Open Write streams.")) {}

}  // namespace ecomstream::writer

// writer_metrics: the Prometheus series of what the writer commits and claims (names
// ecomstream_writer_..., base units, counters _total; the gRPC edge's own gauges are in
// services/writer/server_metrics.h):
//   ecomstream_writer_rows_total{outcome}            inserted|updated|unchanged|duplicate|dead_lettered
//   ecomstream_writer_dead_letters_total{reason}      per reject reason (database_rejected included)
//   ecomstream_writer_batches_total{result}          committed|already_committed|failed
//   ecomstream_writer_fast_path_total{result}        batches begun ahead (pg_sink.h, the fast way):
//                                                    finished|ran_again (rolled back, run the careful way)
//   ecomstream_writer_batch_errors_total{code}        failed batches by gRPC code name
//   ecomstream_writer_commit_latency_seconds          BEGIN .. COMMIT of a batch
//   ecomstream_end_to_end_latency_seconds            file drop (generator) .. COMMIT
//   ecomstream_writer_batch_rows                      rows per committed batch
//   ecomstream_writer_claims_total{outcome}           claimed|resume|already_committed|held_by_other
// A batch of N rows moves the row counters by N. Thread-safe.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_WRITER_METRICS_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_WRITER_METRICS_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/metrics.h"
#include "ecomstream/v1/ingest.pb.h"

namespace ecomstream::writer {

class WriterMetrics {
 public:
  // `registry` must outlive this object.
  explicit WriterMetrics(metrics::Registry* registry);

  // A batch committed now (or found committed): counts from its ack, per-reason dead letters.
  void RecordBatch(const v1::Ack& ack, const std::map<std::string, int64_t>& reasons, double commit_seconds,
                   int64_t file_drop_time_us);
  void RecordBatchFailure(absl::StatusCode code);
  // A begun batch was finished (`finished`) or rolled back to run again the careful way.
  void RecordFastPath(bool finished) { (finished ? fast_finished_ : fast_ran_again_).Increment(); }
  void RecordClaim(v1::ClaimFileResponse::Outcome outcome);

 private:
  metrics::Registry* registry_;
  metrics::Counter& inserted_;
  metrics::Counter& updated_;
  metrics::Counter& unchanged_;
  metrics::Counter& duplicate_;
  metrics::Counter& dead_lettered_;
  metrics::Counter& committed_;
  metrics::Counter& already_committed_;
  metrics::Counter& failed_;
  metrics::Counter& fast_finished_;
  metrics::Counter& fast_ran_again_;
  metrics::Histogram& commit_latency_;
  metrics::Histogram& end_to_end_latency_;
  metrics::Histogram& batch_rows_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_WRITER_METRICS_H_

// ingest_service: the gRPC face of the writer (service ecomstream.v1.Ingest).
//
// ClaimFile goes to the file ledger. Write reads batches in order and answers each with its Ack
// only after pg_sink has committed it, so acks come back in commit order. A failed batch ends
// the stream with its canonical code (INVALID_ARGUMENT, ABORTED, FAILED_PRECONDITION,
// UNAVAILABLE...): nothing after it is read, nothing unacked was committed by this stream except
// possibly that batch, whose replay the ledger answers as already committed.
//
// Drain() (SIGTERM): new streams and claims get UNAVAILABLE; a stream waiting for its next batch
// is cancelled; a stream in the middle of a batch commits it, acks it, and then ends with
// UNAVAILABLE so the processor moves to another writer.
#ifndef ECOMSTREAM_SERVICES_WRITER_INGEST_SERVICE_H_
#define ECOMSTREAM_SERVICES_WRITER_INGEST_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/writer/file_ledger.h"
#include "services/writer/pg_sink.h"
#include "services/writer/writer_metrics.h"

namespace ecomstream::writer {

class IngestService final : public v1::Ingest::Service {
 public:
  // All must outlive the service.
  IngestService(PgSink* sink, FileLedger* ledger, WriterMetrics* metrics);

  grpc::Status ClaimFile(grpc::ServerContext* context, const v1::ClaimFileRequest* request,
                         v1::ClaimFileResponse* response) override;
  grpc::Status Write(grpc::ServerContext* context, grpc::ServerReaderWriter<v1::Ack, v1::Batch>* stream) override;

  // Stops intake (see above). Returns true when every stream has ended within `timeout`.
  bool Drain(absl::Duration timeout);

 private:
  enum class StreamState { kWaiting, kWriting };
  // False when draining: the stream must end.
  bool SetState(grpc::ServerContext* context, StreamState state);

  PgSink* sink_;
  FileLedger* ledger_;
  WriterMetrics* metrics_;

  absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<grpc::ServerContext*, StreamState> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_INGEST_SERVICE_H_

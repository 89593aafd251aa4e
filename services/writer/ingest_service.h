// ingest_service: the gRPC face of the writer (service ecomstream.v1.Ingest).
//
// ClaimFile goes to the file ledger. Write is a callback-API stream: it reads ahead (a few batches,
// validated and encoded as they arrive) while the stream's own thread hands them, in order, to a
// CommitPipeline (pg/commit_pipeline.h, which begins the next batch while one commits), and writes
// each Ack only after its batch has committed, so acks come back in commit order and the database
// never waits for the network or for protobuf parsing. A failed
// batch ends the stream with its canonical code (INVALID_ARGUMENT, ABORTED, FAILED_PRECONDITION,
// UNAVAILABLE...) after the acks of the batches before it: batches read after it are dropped
// uncommitted, to be resent.
//
// Drain() (SIGTERM): new streams and claims get UNAVAILABLE; every stream commits and acks the
// batch it is committing, drops what it has read but not started, and ends with UNAVAILABLE so
// the processor moves to another writer.
#ifndef ECOMSTREAM_SERVICES_WRITER_INGEST_SERVICE_H_
#define ECOMSTREAM_SERVICES_WRITER_INGEST_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tracer.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/writer/pg/file_ledger.h"
#include "services/writer/pg/pg_sink.h"
#include "services/writer/server_metrics.h"

namespace ecomstream::writer {

class IngestService final : public v1::Ingest::WithCallbackMethod_Write<v1::Ingest::Service> {
 public:
  // All must outlive the service. Each ClaimFile is a span file.claim (SERVER), a child of the
  // call's `traceparent` metadata (the processor's file.process).
  IngestService(PgSink* sink, FileLedger* ledger, ServerMetrics* metrics, const tracing::Tracer* tracer);
  // Waits until every stream is gone (shut the gRPC server down first).
  ~IngestService() override;

  grpc::Status ClaimFile(grpc::ServerContext* context, const v1::ClaimFileRequest* request,
                         v1::ClaimFileResponse* response) override;
  grpc::ServerBidiReactor<v1::Batch, v1::Ack>* Write(grpc::CallbackServerContext* context) override;

  // Stops intake (see above). Returns true when every stream has ended within `timeout`.
  bool Drain(absl::Duration timeout);

 private:
  class WriteStream;
  // False when draining: the stream is refused.
  bool Register(WriteStream* stream);
  void Unregister(WriteStream* stream);

  PgSink* sink_;
  FileLedger* ledger_;
  ServerMetrics* metrics_;
  const tracing::Tracer* tracer_;

  absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<WriteStream*> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_INGEST_SERVICE_H_

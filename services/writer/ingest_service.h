// ingest_service: the gRPC face of the writer (service ecomstream.v1.Ingest).
//
// ClaimFile goes to the file ledger. Write is a callback-API stream: it reads ahead (a few batches
// per commit lane, validated and encoded as they arrive) and hands each batch to one of the
// stream's commit lanes (--commit_lanes), each a thread with its own CommitPipeline
// (pg/commit_pipeline.h, which begins a lane's next batch while one commits). A file's batches
// stay on one lane, in row order; batches of different files commit at the same time. Each Ack
// is written only after its batch has committed, so acks come back in commit order: a file's in
// row order, different files' interleaved. The database never waits for the network or for
// protobuf parsing. A failed batch ends the stream with its canonical code (INVALID_ARGUMENT,
// ABORTED, FAILED_PRECONDITION, UNAVAILABLE...) once the other lanes' batches being committed
// have committed and been acked (or rolled back); the status's trailing metadata
// kRefusedFileIdMetadata (common/grpc_status.h) names the failed batch's file. Batches read but
// not begun are dropped uncommitted, to be resent.
//
// Drain() (SIGTERM): new streams and claims get UNAVAILABLE; every stream commits and acks the
// batches its lanes are committing, drops what it has read but not started, and ends with
// UNAVAILABLE so the processor moves to another writer.
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
  // call's `traceparent` metadata (the processor's file.process). Each Write stream commits on
  // `commit_lanes` lanes (WriterConfig::Validate bounds it; below 1 counts as 1).
  IngestService(PgSink* sink, FileLedger* ledger, ServerMetrics* metrics, const tracing::Tracer* tracer,
                int commit_lanes);
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
  const int commit_lanes_;

  absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<WriteStream*> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_INGEST_SERVICE_H_

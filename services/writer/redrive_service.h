// redrive_service: the gRPC face of redrive (service ecomstream.v1.DeadLetters,
// docs/redrive.md). List and Redrive go to the RedriveStore (pg/redrive_store.h) and answer with
// its canonical codes; each Redrive is logged with its run, first sequence number and counts.
#ifndef ECOMSTREAM_SERVICES_WRITER_REDRIVE_SERVICE_H_
#define ECOMSTREAM_SERVICES_WRITER_REDRIVE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/writer/pg/redrive_store.h"

namespace ecomstream::writer {

class RedriveService final : public v1::DeadLetters::Service {
 public:
  explicit RedriveService(RedriveStore* store) : store_(store) {}
  grpc::Status List(grpc::ServerContext* context, const v1::ListDeadLettersRequest* request,
                    v1::ListDeadLettersResponse* response) override;
  grpc::Status Redrive(grpc::ServerContext* context, const v1::RedriveRequest* request,
                       v1::RedriveResponse* response) override;

 private:
  RedriveStore* store_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_REDRIVE_SERVICE_H_

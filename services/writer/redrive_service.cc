#include "services/writer/redrive_service.h"

#include <utility>

#include "common/grpc_status.h"
#include "common/log.h"

namespace ecomstream::writer {

grpc::Status RedriveService::List(grpc::ServerContext*, const v1::ListDeadLettersRequest* request,
                                  v1::ListDeadLettersResponse* response) {
  absl::StatusOr<v1::ListDeadLettersResponse> listed = store_->List(*request);
  if (!listed.ok()) return ToGrpcStatus(listed.status());
  *response = *std::move(listed);
  return grpc::Status::OK;
}

grpc::Status RedriveService::Redrive(grpc::ServerContext*, const v1::RedriveRequest* request,
                                     v1::RedriveResponse* response) {
  absl::StatusOr<v1::RedriveResponse> done = store_->Redrive(*request);
  if (!done.ok()) {
    LOG_WARNING("Redrive request failed") << Kv("run_id", request->run_id()) << Kv("first_seq", request->first_seq())
                                          << Kv("error", done.status().ToString());
    return ToGrpcStatus(done.status());
  }
  LOG_INFO("Redrive request committed") << Kv("run_id", request->run_id()) << Kv("first_seq", request->first_seq())
                                        << Kv("inserted", done->inserted()) << Kv("unchanged", done->unchanged())
                                        << Kv("still_failing", done->still_failing())
                                        << Kv("already_redriven", done->already_redriven());
  *response = *std::move(done);
  return grpc::Status::OK;
}

}  // namespace ecomstream::writer

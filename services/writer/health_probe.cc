#include "services/writer/health_probe.h"


#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "services/writer/writer_server.h"

namespace ecomstream::writer {

absl::Status ProbeHealth(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials,
                         absl::Duration timeout) {
  auto channel = grpc::CreateChannel(address, std::move(credentials));
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("no health answer from ", address, ": ",
                                               FromGrpcStatus(status).ToString()));
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(address, " answered ",
                                               grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                                                   response.status())));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ProbeCredentials(const WriterConfig& config) {
  if (!config.tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  ASSIGN_OR_RETURN(options.pem_root_certs, ReadPemFile("tls_cert", config.tls_cert));
  if (!config.tls_client_ca.empty()) {
    options.pem_cert_chain = options.pem_root_certs;
    ASSIGN_OR_RETURN(options.pem_private_key, ReadPemFile("tls_key", config.tls_key));
  }
  return grpc::SslCredentials(options);
}

}  // namespace ecomstream::writer

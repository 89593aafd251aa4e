// The client side of `ecomstream-writer --health_check=ADDRESS`: one grpc.health.v1 Check call.
#ifndef ECOMSTREAM_SERVICES_WRITER_HEALTH_PROBE_H_
#define ECOMSTREAM_SERVICES_WRITER_HEALTH_PROBE_H_

#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/writer/config.h"

namespace ecomstream::writer {

// OK when the server at `address` reports SERVING for the whole server ("") within `timeout`;
// kUnavailable otherwise, with what it answered (NOT_SERVING, no answer, ...).
absl::Status ProbeHealth(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials,
                         absl::Duration timeout);

// Credentials to probe a writer started with `config`: insecure without TLS; with TLS, trusting
// --tls_cert (the usual self-signed container certificate) and, for mTLS, presenting
// --tls_cert/--tls_key as the client certificate. kInvalidArgument if a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ProbeCredentials(const WriterConfig& config);

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_HEALTH_PROBE_H_

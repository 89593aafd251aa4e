// Conversions between absl::Status and grpc::Status (same canonical codes).
#ifndef ECOMSTREAM_COMMON_GRPC_STATUS_H_
#define ECOMSTREAM_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ecomstream {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_GRPC_STATUS_H_

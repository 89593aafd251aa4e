// Conversions between absl::Status and grpc::Status (same canonical codes).
#ifndef ECOMSTREAM_COMMON_GRPC_STATUS_H_
#define ECOMSTREAM_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ecomstream {

// Trailing metadata of a Write stream the writer ended because a batch failed: that batch's
// file_id. (The writer commits several files' batches at once, so the oldest unacknowledged batch
// is not necessarily the one that failed.)
inline constexpr char kRefusedFileIdMetadata[] = "ecomstream-refused-file-id";

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_GRPC_STATUS_H_

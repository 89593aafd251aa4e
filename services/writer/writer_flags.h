// The ecomstream-writer command line (every flag also reads ECOMSTREAM_<FLAG>). Binary only:
// the library never reads flags.
#ifndef ECOMSTREAM_SERVICES_WRITER_WRITER_FLAGS_H_
#define ECOMSTREAM_SERVICES_WRITER_WRITER_FLAGS_H_

#include <string>

#include "absl/status/status.h"
#include "services/writer/config.h"

namespace ecomstream::writer {

extern const char kUsage[];

WriterConfig ConfigFromFlags();
// --health_check=ADDRESS, "" when not given.
std::string HealthCheckAddressFromFlags();
// Reads --pg_password_file (default: $PGPASSWORD_FILE) into PGPASSWORD for libpq, so the secret
// stays out of DSNs and logs. kInvalidArgument when the file is named but unreadable.
absl::Status ExportPasswordFile();

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_WRITER_FLAGS_H_

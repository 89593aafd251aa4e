// The ecomstream-processor command line (every flag also reads ECOMSTREAM_<FLAG>). Binary only:
// the library never reads flags.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_

#include <string>

#include "services/processor/processor.h"

namespace ecomstream::processor {

extern const char kUsage[];

// Not validated: call ProcessorOptions::Validate().
ProcessorOptions OptionsFromFlags();
// --health_check=ADDRESS, "" when not given.
std::string HealthCheckAddressFromFlags();

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_

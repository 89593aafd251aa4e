// The ecomstream-generator command line (every flag also reads ECOMSTREAM_<FLAG>). Binary only:
// the library never reads flags.
#ifndef ECOMSTREAM_SERVICES_GENERATOR_GENERATOR_FLAGS_H_
#define ECOMSTREAM_SERVICES_GENERATOR_GENERATOR_FLAGS_H_

#include <string>

#include "services/generator/generator.h"

namespace ecomstream::generator {

extern const char kUsage[];

// Not validated: call GeneratorConfig::Validate(). Files are written on the background I/O thread.
GeneratorConfig ConfigFromFlags();
// --metrics_address, "" = no status server.
std::string MetricsAddressFromFlags();
// --health_check=ADDRESS, "" when not given.
std::string HealthCheckAddressFromFlags();

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_GENERATOR_FLAGS_H_

// The ecomstream-processor command line (every flag also reads ECOMSTREAM_<FLAG>). Binary only:
// the library never reads flags.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "services/processor/processor.h"
#include "services/processor/redrive.h"
#include "services/processor/rules.h"

namespace ecomstream::processor {

extern const char kUsage[];

// Not validated: call ProcessorOptions::Validate().
ProcessorOptions OptionsFromFlags();
// --health_check=ADDRESS, "" when not given.
std::string HealthCheckAddressFromFlags();
// --rules_file, "" for the built-in rules; the windows a rules file may leave out.
std::string RulesFileFromFlags();
RulesWindows RulesWindowsFromFlags();
// --redrive: run a redrive instead of tailing the inbox.
bool RedriveFromFlags();
// The --redrive_* filters and --dry_run. kInvalidArgument naming the flag and value for an
// unknown reason, a time that is not RFC 3339, a reversed range or a negative limit.
absl::StatusOr<RedriveOptions> RedriveOptionsFromFlags();

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_

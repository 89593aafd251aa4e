// The ecomstream-processor command line (every flag also reads ECOMSTREAM_<FLAG>). Binary only:
// the library never reads flags.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_

#include <string>

#include <memory>

#include "absl/status/statusor.h"
#include "common/service.h"
#include "services/processor/processor.h"
#include "services/processor/redrive.h"
#include "services/processor/rules.h"

namespace ecomstream::processor {

extern const char kUsage[];

// Not validated: call ProcessorConfig::Validate().
ProcessorConfig ConfigFromFlags();
// --health_check=ADDRESS, "" when not given.
std::string HealthCheckAddressFromFlags();
// --rules_file, "" for the built-in rules; the windows a rules file may leave out.
std::string RulesFileFromFlags();
RulesWindows RulesWindowsFromFlags();
// The rules of --rules_file, or the built-in ones without it; why the file cannot be loaded.
absl::StatusOr<std::shared_ptr<const Rules>> RulesFromFlags();
// Logs `rules` as the rules in force and returns their store (metrics in service.registry()),
// which each SIGHUP reloads from --rules_file (the service must handle SIGHUP).
std::shared_ptr<RulesStore> RulesStoreFromFlags(Service& service, std::shared_ptr<const Rules> rules);
// Reloads --rules_file into `store` and logs the outcome (a bad file keeps the rules in force).
void ReloadRulesFromFlags(RulesStore& store);
// --redrive: run a redrive instead of tailing the inbox.
bool RedriveFromFlags();
// The --redrive_* filters and --dry_run. kInvalidArgument naming the flag and value for an
// unknown reason, a time that is not RFC 3339, a reversed range or a negative limit.
absl::StatusOr<RedriveOptions> RedriveOptionsFromFlags();
// The --redrive command: re-validates the stored dead letters with `rules` against the writer at
// config.writer_address until done or SIGTERM, prints the report. Returns the exit code (2 for a
// bad --redrive_* flag or TLS file, 1 when a Redrive call fails).
int RunRedriveFromFlags(Service& service, const ProcessorConfig& config, std::shared_ptr<const Rules> rules);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_PROCESSOR_FLAGS_H_

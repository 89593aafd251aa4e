// Files for the processor's tests: valid v3 rows, atomic drops into an inbox, manifests.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_TESTING_TEST_FILES_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_TESTING_TEST_FILES_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace ecomstream::processor::testing {

// The v3 header, columns in document order.
std::string V3Header();
// A valid v3 purchase row (with "\n") whose event id encodes `n`, at `event_time_us` (default:
// ten minutes ago, so neither late nor in the future for a file written now).
std::string V3Row(int64_t n, int64_t event_time_us = 0);
// Header plus rows first..last.
std::string V3File(int64_t first, int64_t last);

// NAME.csv.manifest.json content (protobuf JSON of FileManifest) describing `content`.
std::string ManifestJson(absl::string_view name, absl::string_view content, int64_t rows,
                         int64_t created_time_us = 0, absl::string_view traceparent = "");

// Writes dir/name the way the generator does (dir/.tmp, fsync, rename); aborts the test on error.
void DropFile(const std::string& dir, const std::string& name, absl::string_view content);

}  // namespace ecomstream::processor::testing

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_TESTING_TEST_FILES_H_

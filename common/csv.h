// Writing CSV per RFC 4180 (the generator's side; the processor's reader is csv_reader).
#ifndef ECOMSTREAM_COMMON_CSV_H_
#define ECOMSTREAM_COMMON_CSV_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ecomstream {

// Appends `field` to `out`, quoted (with "" for ") when it holds a comma, quote, CR or LF, or
// leading/trailing space.
void AppendCsvField(absl::string_view field, std::string* out);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_CSV_H_

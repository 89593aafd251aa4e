// The columns of the input CSV and which schema version has which (docs/rows.md, "Schema
// versions"): v1 has the first 6 columns below, v2 the first 10, v3 all 16. The generator writes
// them; the processor reads them. Header-only.
#ifndef ECOMSTREAM_COMMON_CSV_SCHEMA_H_
#define ECOMSTREAM_COMMON_CSV_SCHEMA_H_

#include <array>

#include "absl/strings/string_view.h"

namespace ecomstream::csv_schema {

// The v3 columns, in the order of the tables in docs/rows.md.
enum Column : int {
  kEventId,
  kUserId,
  kEventType,
  kProductId,
  kPrice,
  kEventTime,
  kSessionId,
  kCategory,
  kQuantity,
  kUserSegment,
  kDeviceType,
  kBrowser,
  kGeoCountry,
  kGeoCity,
  kReferrer,
  kCampaignId,
  kNumColumns,
};

// The header name of each column, indexed by Column.
inline constexpr std::array<absl::string_view, kNumColumns> kColumnNames = {
    "event_id",     "user_id",     "event_type", "product_id",  "price",    "event_time",
    "session_id",   "category",    "quantity",   "user_segment", "device_type", "browser",
    "geo_country",  "geo_city",    "referrer",   "campaign_id",
};

inline absl::string_view ColumnName(Column column) { return kColumnNames[column]; }

// How many columns version 1, 2 or 3 has (its columns are the first ones of Column); 0 otherwise.
constexpr int ColumnCount(int version) {
  return version == 1 ? 6 : version == 2 ? 10 : version == 3 ? static_cast<int>(kNumColumns) : 0;
}

}  // namespace ecomstream::csv_schema

#endif  // ECOMSTREAM_COMMON_CSV_SCHEMA_H_

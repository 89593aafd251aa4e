#include "services/processor/testing/test_files.h"

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "common/time_util.h"
#include "ecomstream/v1/ingest.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ecomstream::processor::testing {

std::string V3Header() {
  return "event_id,user_id,event_type,product_id,price,event_time,session_id,category,quantity,user_segment,"
         "device_type,browser,geo_country,geo_city,referrer,campaign_id\n";
}

std::string V3Row(int64_t n, int64_t event_time_us) {
  // One default time per process, so that a repeated row is the same bytes.
  static const int64_t kTenMinutesAgo = NowMicros() - 600LL * 1000000;
  if (event_time_us == 0) event_time_us = kTenMinutesAgo;
  return absl::StrCat("018f3a6e-1b2c-7d3e-8f40-", absl::Dec(n, absl::kZeroPad12), ",", 1000 + n % 97,
                      ",purchase,100001,19.99,", FormatTimestampMicros(event_time_us),
                      ",5f0c3c1e-9b7a-4d2e-8c11-0123456789ab,electronics,1,returning,mobile,chrome,US,Boston,google,"
                      "spring\n");
}

std::string V3File(int64_t first, int64_t last) {
  std::string text = V3Header();
  for (int64_t n = first; n <= last; ++n) text += V3Row(n);
  return text;
}

std::string ManifestJson(absl::string_view name, absl::string_view content, int64_t rows, int64_t created_time_us,
                         absl::string_view traceparent) {
  v1::FileManifest manifest;
  manifest.set_file_name(std::string(name));
  manifest.set_rows(rows);
  manifest.set_sha256(Sha256Hex(content));
  manifest.set_schema_version("v3");
  manifest.set_created_time_us(created_time_us);
  manifest.set_traceparent(std::string(traceparent));
  manifest.set_size_bytes(static_cast<int64_t>(content.size()));
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(manifest, &json).ok());
  return json;
}

void DropFile(const std::string& dir, const std::string& name, absl::string_view content) {
  const absl::Status status = WriteFileAtomically(dir, name, content);
  ASSERT_TRUE(status.ok()) << status;
}

}  // namespace ecomstream::processor::testing

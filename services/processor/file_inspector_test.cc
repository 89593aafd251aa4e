#include "services/processor/file_inspector.h"

#include <sys/stat.h>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/processor/testing/test_files.h"
#include "tests/e2e/e2e_util.h"

namespace ecomstream::processor {
namespace {

using ::ecomstream::testing::TempDir;
using ::testing::HasSubstr;

constexpr absl::string_view kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class FileInspectorTest : public ::testing::Test {
 protected:
  absl::StatusOr<FileFacts> Inspect(const std::string& name) { return InspectFile(dir_.path(), name, {}); }
  TempDir dir_;
};

TEST_F(FileInspectorTest, FingerprintIsTheSha256OfTheBytesAndWithoutAManifestTheLoadCountsTheRows) {
  const std::string content = testing::V3File(1, 9) + "\n" + "not,a,valid,row\n";
  testing::DropFile(dir_.path(), "a.csv", content);
  absl::StatusOr<FileFacts> facts = Inspect("a.csv");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->quarantine_reason, "");
  EXPECT_EQ(facts->file_id, "sha256:" + Sha256Hex(content));
  EXPECT_EQ(facts->rows, kRowsUnknown);  // only the header is parsed
  EXPECT_EQ(facts->schema.version, 3);
  EXPECT_EQ(facts->size_bytes, static_cast<int64_t>(content.size()));
  EXPECT_FALSE(facts->has_manifest);
  EXPECT_EQ(facts->reference_time_us, facts->mtime_us);
  EXPECT_FALSE(facts->parent_trace.IsValid());
}

TEST_F(FileInspectorTest, WarmingUpTheInspectorLeavesFingerprintsAndHeadersAsTheyAre) {
  WarmUpInspector();
  WarmUpInspector();
  testing::DropFile(dir_.path(), "v1.csv", "event_id,user_id,event_type,product_id,price,event_time\n");
  absl::StatusOr<FileFacts> facts = Inspect("v1.csv");
  ASSERT_TRUE(facts.ok()) << facts.status();
  // sha256sum of those 56 bytes.
  EXPECT_EQ(facts->file_id, "sha256:2d66766fb3721204250063dcc7a72893dfaa3614c06d9211ec3c77fed602b620");
  EXPECT_EQ(facts->schema.version, 1);
  EXPECT_EQ(facts->quarantine_reason, "");
}

TEST_F(FileInspectorTest, AMatchingManifestGivesTheReferenceTimeAndTheTrace) {
  const std::string content = testing::V3File(1, 5);
  testing::DropFile(dir_.path(), "a.csv.manifest.json",
                    testing::ManifestJson("a.csv", content, 5, 1700000000000000, kTraceparent));
  testing::DropFile(dir_.path(), "a.csv", content);
  absl::StatusOr<FileFacts> facts = Inspect("a.csv");
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(facts->quarantine_reason, "");
  EXPECT_TRUE(facts->has_manifest);
  EXPECT_EQ(facts->reference_time_us, 1700000000000000);
  EXPECT_EQ(facts->parent_trace.ToTraceparent(), kTraceparent);
  EXPECT_EQ(facts->rows, 5);  // the generator's count, for the bytes it wrote
}

TEST_F(FileInspectorTest, ABigFileIsHashedWhole) {
  // Several of the reader's chunks and of the hash's reads, with a quoted newline across them.
  std::string content = testing::V3Header();
  while (content.size() < (3 << 20)) content += testing::V3Row(static_cast<int>(content.size() % 1000) + 1);
  content += "\"multi\nline\"\n";
  testing::DropFile(dir_.path(), "big.csv", content);
  absl::StatusOr<FileFacts> facts = Inspect("big.csv");
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->quarantine_reason, "");
  EXPECT_EQ(facts->file_id, "sha256:" + Sha256Hex(content));
  EXPECT_EQ(facts->size_bytes, static_cast<int64_t>(content.size()));
}

TEST_F(FileInspectorTest, ATruncatedFileIsQuarantinedByItsManifest) {
  const std::string content = testing::V3File(1, 10);
  testing::DropFile(dir_.path(), "a.csv.manifest.json", testing::ManifestJson("a.csv", content, 10));
  const std::string truncated = content.substr(0, content.rfind('\n', content.size() - 2) + 1);
  testing::DropFile(dir_.path(), "a.csv", truncated);
  absl::StatusOr<FileFacts> facts = Inspect("a.csv");
  ASSERT_TRUE(facts.ok());
  EXPECT_THAT(facts->quarantine_reason, HasSubstr("file does not match its manifest (truncated or altered)"));
  EXPECT_THAT(facts->quarantine_reason, HasSubstr("sha256 is " + Sha256Hex(truncated)));
  EXPECT_THAT(facts->quarantine_reason, HasSubstr("rows are 9, manifest says 10"));
  EXPECT_THAT(facts->quarantine_reason, HasSubstr("size is"));
}

TEST_F(FileInspectorTest, AManifestThatIsNotAFileManifestQuarantinesTheFile) {
  testing::DropFile(dir_.path(), "a.csv", testing::V3File(1, 2));
  testing::DropFile(dir_.path(), "a.csv.manifest.json", "{\"rows\": \"many\"");
  EXPECT_THAT(Inspect("a.csv")->quarantine_reason, HasSubstr("manifest is not a valid FileManifest"));
  testing::DropFile(dir_.path(), "a.csv.manifest.json", std::string(kMaxManifestBytes + 1, ' '));
  EXPECT_THAT(Inspect("a.csv")->quarantine_reason, HasSubstr("manifest is larger than"));
}

TEST_F(FileInspectorTest, ManifestWithUnknownFieldsIsAcceptedAndABadTraceparentStartsANewTrace) {
  const std::string content = testing::V3File(1, 1);
  std::string json = testing::ManifestJson("a.csv", content, 1, 0, "00-zz-00-01");
  json.insert(1, "\"futureField\": 3, ");
  testing::DropFile(dir_.path(), "a.csv.manifest.json", json);
  testing::DropFile(dir_.path(), "a.csv", content);
  absl::StatusOr<FileFacts> facts = Inspect("a.csv");
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(facts->quarantine_reason, "");
  EXPECT_FALSE(facts->parent_trace.IsValid());
  EXPECT_EQ(facts->reference_time_us, facts->mtime_us);  // created_time_us 0: the mtime
}

TEST_F(FileInspectorTest, ManifestSchemaVersionMustMatchTheHeader) {
  const std::string content = testing::V3File(1, 1);
  std::string json = testing::ManifestJson("a.csv", content, 1);
  json.replace(json.find("\"v3\""), 4, "\"v1\"");
  testing::DropFile(dir_.path(), "a.csv.manifest.json", json);
  testing::DropFile(dir_.path(), "a.csv", content);
  EXPECT_THAT(Inspect("a.csv")->quarantine_reason, HasSubstr("schema is v3, manifest says \"v1\""));
}

TEST_F(FileInspectorTest, HeaderProblemsQuarantine) {
  testing::DropFile(dir_.path(), "unknown.csv", "event_id,colour\n1,red\n");
  EXPECT_THAT(Inspect("unknown.csv")->quarantine_reason, HasSubstr("unknown columns: colour"));
  testing::DropFile(dir_.path(), "empty.csv", "");
  EXPECT_EQ(Inspect("empty.csv")->quarantine_reason, "file has no header row");
  testing::DropFile(dir_.path(), "quoted.csv", "event_id,\"user_id\"x\n");
  EXPECT_EQ(Inspect("quoted.csv")->quarantine_reason, "header row has malformed quoting");
  testing::DropFile(dir_.path(), "binary.csv", std::string("event_id\xff,\0user\n", 15));
  EXPECT_EQ(Inspect("binary.csv")->quarantine_reason, "header row has bytes that are not UTF-8 and a NUL byte");
}

TEST_F(FileInspectorTest, HeaderOnlyFileWithItsManifestHasZeroRows) {
  testing::DropFile(dir_.path(), "h.csv.manifest.json", testing::ManifestJson("h.csv", testing::V3Header(), 0));
  testing::DropFile(dir_.path(), "h.csv", testing::V3Header());
  absl::StatusOr<FileFacts> facts = Inspect("h.csv");
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(facts->quarantine_reason, "");
  EXPECT_EQ(facts->rows, 0);
}

TEST_F(FileInspectorTest, ANameThatIsNotUtf8IsQuarantined) {
  testing::DropFile(dir_.path(), "bad\xff.csv", testing::V3File(1, 1));
  EXPECT_EQ(Inspect("bad\xff.csv")->quarantine_reason, "file name is not valid UTF-8");
}

TEST_F(FileInspectorTest, AVanishedFileIsNotFound) {
  EXPECT_EQ(Inspect("gone.csv").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ecomstream::processor

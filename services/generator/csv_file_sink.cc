#include "services/generator/csv_file_sink.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace ecomstream::generator {
namespace {

constexpr absl::string_view kTypeUrlPrefix = "type.googleapis.com";

}  // namespace

absl::StatusOr<std::string> ManifestJson(const v1::FileManifest& manifest) {
  // MessageToJsonString walks maps in hash order; deterministic binary serialization sorts
  // the map by key, and the binary-to-JSON converter keeps the wire order.
  static auto* resolver = google::protobuf::util::NewTypeResolverForDescriptorPool(
      std::string(kTypeUrlPrefix), google::protobuf::DescriptorPool::generated_pool());
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!manifest.SerializeToCodedStream(&coded)) return absl::InternalError("cannot serialize the manifest");
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status = google::protobuf::util::BinaryToJsonString(
      resolver, absl::StrCat(kTypeUrlPrefix, "/", manifest.GetDescriptor()->full_name()), binary, &json, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("manifest to JSON: ", status.ToString()));
  json.push_back('\n');
  return json;
}

CsvFileSink::CsvFileSink(Options options)
    : options_(std::move(options)), temp_dir_(absl::StrCat(options_.output_dir, "/.tmp")) {}

CsvFileSink::~CsvFileSink() { Abort(); }

absl::StatusOr<int> CsvFileSink::Start() {
  RETURN_IF_ERROR(MakeDirs(options_.output_dir));
  RETURN_IF_ERROR(MakeDirs(temp_dir_));
  if (::access(options_.output_dir.c_str(), W_OK) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("output directory ", options_.output_dir));
  }
  return RemoveStaleTempFiles(temp_dir_);
}

absl::Status CsvFileSink::Open(const std::string& name) {
  if (writer_ != nullptr) return absl::FailedPreconditionError(absl::StrCat("open ", name, ": ", name_, " is open"));
  if (!absl::EndsWith(name, ".csv") || name.find('/') != std::string::npos || name[0] == '.') {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a visible base name ending in .csv"));
  }
  name_ = name;
  writer_ = std::make_unique<AtomicFileWriter>(options_.output_dir, name_, temp_dir_);
  sha_ = std::make_unique<Sha256>();
  return Fail(writer_->Open());
}

absl::Status CsvFileSink::Append(absl::string_view data) {
  if (writer_ == nullptr) return absl::FailedPreconditionError("append without an open file");
  sha_->Update(data);
  return Fail(writer_->Append(data));
}

absl::Status CsvFileSink::Commit(v1::FileManifest* manifest, int64_t created_time_us) {
  if (writer_ == nullptr) return absl::FailedPreconditionError("commit without an open file");
  manifest->set_file_name(name_);
  manifest->set_sha256(sha_->HexDigest());
  const auto size_bytes = static_cast<int64_t>(writer_->bytes_written());
  manifest->set_size_bytes(size_bytes);
  manifest->set_created_time_us(created_time_us);
  writer_->set_modification_time_us(created_time_us);
  std::string manifest_path;
  if (options_.write_manifests) {
    absl::StatusOr<std::string> json = ManifestJson(*manifest);
    if (!json.ok()) return Fail(json.status());
    const std::string manifest_name = absl::StrCat(name_, ".manifest.json");
    RETURN_IF_ERROR(Fail(WriteFileAtomically(options_.output_dir, manifest_name, *json, temp_dir_)));
    manifest_path = absl::StrCat(options_.output_dir, "/", manifest_name);
  }
  absl::Status status = writer_->Commit();
  if (!status.ok()) {
    // The CSV is not there: take its manifest back, so no final name points at nothing.
    if (!manifest_path.empty() && ::unlink(manifest_path.c_str()) == 0) (void)SyncDirectory(options_.output_dir);
    return Fail(status);
  }
  ++stats_.files;
  stats_.bytes += size_bytes;
  writer_.reset();
  sha_.reset();
  return absl::OkStatus();
}

absl::Status CsvFileSink::Fail(absl::Status status) {
  if (!status.ok()) {
    ++stats_.failed;
    Abort();
  }
  return status;
}

void CsvFileSink::Abort() {
  if (writer_ != nullptr) writer_->Abort();
  writer_.reset();
  sha_.reset();
}

}  // namespace ecomstream::generator

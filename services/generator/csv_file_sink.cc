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

CsvFileSink::~CsvFileSink() {
  Abort();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (io_thread_.joinable()) io_thread_.join();
  if (publisher_.joinable()) publisher_.join();
}

absl::StatusOr<int> CsvFileSink::Start() {
  RETURN_IF_ERROR(MakeDirs(options_.output_dir));
  RETURN_IF_ERROR(MakeDirs(temp_dir_));
  if (::access(options_.output_dir.c_str(), W_OK) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("output directory ", options_.output_dir));
  }
  const int removed = RemoveStaleTempFiles(temp_dir_);
  if (options_.background && !io_thread_.joinable()) {
    io_thread_ = std::thread(&CsvFileSink::IoLoop, this);
    publisher_ = std::thread(&CsvFileSink::PublishLoop, this);
  }
  return removed;
}

absl::Status CsvFileSink::Open(const std::string& name) {
  if (open_) return absl::FailedPreconditionError(absl::StrCat("open ", name, ": another file is open"));
  if (!absl::EndsWith(name, ".csv") || name.find('/') != std::string::npos || name[0] == '.') {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a visible base name ending in .csv"));
  }
  open_ = true;
  open_bytes_ = 0;
  return Closed(options_.background ? Queue([this, name] { return DoOpen(name); }, 0) : DoOpen(name));
}

absl::Status CsvFileSink::Closed(absl::Status status) {
  if (!status.ok()) open_ = false;  // the file is gone
  return status;
}

absl::Status CsvFileSink::Append(absl::string_view data) {
  if (!open_) return absl::FailedPreconditionError("append without an open file");
  open_bytes_ += static_cast<int64_t>(data.size());
  if (!options_.background) return Closed(DoAppend(data));
  return Closed(Queue([this, copy = std::string(data)] { return DoAppend(copy); }, data.size()));
}

absl::Status CsvFileSink::Append(std::string* data) {
  if (!options_.background || !open_) {
    absl::Status status = Append(absl::string_view(*data));
    data->clear();
    return status;
  }
  open_bytes_ += static_cast<int64_t>(data->size());
  const size_t size = data->size();
  absl::Status status = Queue(
      [this, buffer = std::move(*data)]() mutable {
        absl::Status status = DoAppend(buffer);
        Recycle(std::move(buffer));
        return status;
      },
      size);
  // A spare buffer is taken after Queue's wait for room, when the I/O thread has just given one
  // back: the caller seldom gets a new (not yet paged-in) buffer.
  data->clear();
  {
    absl::MutexLock lock(&mu_);
    if (!spare_.empty()) {
      data->swap(spare_.back());
      spare_.pop_back();
    }
  }
  return Closed(status);
}

void CsvFileSink::Recycle(std::string buffer) {
  // Enough for the buffers of a full queue at the generator's chunk size, so a caller waiting for
  // room gets a buffer back rather than allocating (and page-faulting) a new one.
  constexpr size_t kMaxSpare = 64;
  buffer.clear();
  absl::MutexLock lock(&mu_);
  if (spare_.size() < kMaxSpare) spare_.push_back(std::move(buffer));
}

absl::Status CsvFileSink::Commit(v1::FileManifest* manifest, int64_t created_time_us, Committed committed) {
  if (!open_) return absl::FailedPreconditionError("commit without an open file");
  open_ = false;
  if (!options_.background) {
    ASSIGN_OR_RETURN(Sealed sealed, DoSeal(manifest, created_time_us));
    sealed.committed = std::move(committed);
    std::vector<Sealed> group;
    group.push_back(std::move(sealed));
    return PublishGroup(group);
  }
  return Queue(
      [this, copy = *manifest, created_time_us, committed = std::move(committed)]() mutable -> absl::Status {
        ASSIGN_OR_RETURN(Sealed sealed, DoSeal(&copy, created_time_us));
        sealed.committed = std::move(committed);
        return QueueSealed(std::move(sealed));
      },
      0);
}

absl::Status CsvFileSink::Flush() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && !busy_ && sealed_.empty() && !publishing_;
  };
  mu_.Await(absl::Condition(&idle));
  return error_;
}

void CsvFileSink::Abort() {
  const bool was_open = open_;
  open_ = false;
  if (!options_.background) {
    DoAbort();
    return;
  }
  if (was_open) (void)Queue([this] { DoAbort(); return absl::OkStatus(); }, 0);
  (void)Flush();
  DoAbort();  // after an error the queue skipped the file's abort; the thread is idle now
}

CsvFileSink::Stats CsvFileSink::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status CsvFileSink::Queue(std::function<absl::Status()> work, size_t bytes) {
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || queued_bytes_ < options_.max_queued_bytes;
  };
  mu_.Await(absl::Condition(&room));
  if (!error_.ok()) return error_;
  queue_.emplace_back(std::move(work), bytes);
  queued_bytes_ += bytes;
  return absl::OkStatus();
}

void CsvFileSink::IoLoop() {
  for (;;) {
    std::pair<std::function<absl::Status()>, size_t> step;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      step = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    absl::Status status;
    bool skip = false;
    {
      absl::MutexLock lock(&mu_);
      skip = !error_.ok();  // after an error nothing more is written
    }
    if (!skip) status = step.first();
    absl::MutexLock lock(&mu_);
    busy_ = false;
    queued_bytes_ -= step.second;
    if (!status.ok() && error_.ok()) error_ = status;
  }
}

absl::Status CsvFileSink::DoOpen(const std::string& name) {
  if (writer_ != nullptr) return absl::FailedPreconditionError(absl::StrCat("open ", name, ": ", name_, " is open"));
  name_ = name;
  writer_ = std::make_unique<AtomicFileWriter>(options_.output_dir, name_, temp_dir_);
  sha_ = std::make_unique<Sha256>();
  return Fail(writer_->Open());
}

absl::Status CsvFileSink::DoAppend(absl::string_view data) {
  if (writer_ == nullptr) return absl::FailedPreconditionError("append without an open file");
  sha_->Update(data);
  return Fail(writer_->Append(data));
}

absl::StatusOr<CsvFileSink::Sealed> CsvFileSink::DoSeal(v1::FileManifest* manifest, int64_t created_time_us) {
  if (writer_ == nullptr) return absl::FailedPreconditionError("commit without an open file");
  manifest->set_file_name(name_);
  manifest->set_sha256(sha_->HexDigest());
  manifest->set_size_bytes(static_cast<int64_t>(writer_->bytes_written()));
  manifest->set_created_time_us(created_time_us);
  writer_->set_modification_time_us(created_time_us);
  Sealed sealed;
  if (options_.write_manifests) {
    absl::StatusOr<std::string> json = ManifestJson(*manifest);
    if (!json.ok()) return Fail(json.status());
    sealed.manifest_json = *std::move(json);
  }
  sealed.name = name_;
  sealed.csv = std::move(writer_);
  sealed.manifest = *manifest;
  sha_.reset();
  return sealed;
}

absl::Status CsvFileSink::QueueSealed(Sealed sealed) {
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || sealed_.size() < options_.max_sealed_files;
  };
  mu_.Await(absl::Condition(&room));
  if (!error_.ok()) {
    ++stats_.failed;
    return error_;  // `sealed` goes, and its temp file with it
  }
  sealed_.push_back(std::move(sealed));
  return absl::OkStatus();
}

void CsvFileSink::PublishLoop() {
  for (;;) {
    std::vector<Sealed> group;
    bool skip = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !sealed_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (sealed_.empty()) return;  // stopping, nothing left
      while (!sealed_.empty()) {
        group.push_back(std::move(sealed_.front()));
        sealed_.pop_front();
      }
      publishing_ = true;
      // After a failed group nothing more lands. After a write error files sealed before it still
      // do: they are whole, and every later file is not sealed (the I/O thread skips its steps).
      skip = publish_failed_;
      if (skip) stats_.failed += static_cast<int64_t>(group.size());
    }
    const absl::Status status = skip ? absl::OkStatus() : PublishGroup(group);
    group.clear();  // removes the temp files of files that did not land
    absl::MutexLock lock(&mu_);
    publishing_ = false;
    if (!status.ok()) {
      publish_failed_ = true;
      if (error_.ok()) error_ = status;
    }
  }
}

absl::Status CsvFileSink::PublishGroup(std::vector<Sealed>& group) {
  // 1. Every file's bytes durable under its temp name; stop at the first failure.
  absl::Status status;
  size_t landing = 0;  // files [0, landing) go on
  for (; landing < group.size(); ++landing) {
    Sealed& file = group[landing];
    status = file.csv->Sync();
    if (status.ok() && options_.write_manifests) {
      file.manifest_file = std::make_unique<AtomicFileWriter>(
          options_.output_dir, absl::StrCat(file.name, ".manifest.json"), temp_dir_);
      status = file.manifest_file->Open();
      if (status.ok()) status = file.manifest_file->Append(file.manifest_json);
      if (status.ok()) status = file.manifest_file->Sync();
    }
    if (!status.ok()) break;
  }
  auto manifest_path = [this](const Sealed& file) {
    return absl::StrCat(options_.output_dir, "/", file.name, ".manifest.json");
  };
  // 2. The manifests in place, durably, before any of their CSVs.
  size_t manifests = 0;  // manifests [0, manifests) are renamed
  if (options_.write_manifests) {
    for (; manifests < landing; ++manifests) {
      absl::Status renamed = group[manifests].manifest_file->Publish();
      if (!renamed.ok()) {
        if (status.ok()) status = renamed;
        landing = manifests;
        break;
      }
    }
    if (manifests > 0) {
      absl::Status synced = SyncDirectory(options_.output_dir);
      if (!synced.ok()) {
        if (status.ok()) status = synced;
        for (size_t i = 0; i < manifests; ++i) ::unlink(manifest_path(group[i]).c_str());
        landing = manifests = 0;
      }
    }
  }
  // 3. The CSVs in place, in order; a CSV that cannot be renamed takes its manifest (and the
  // later ones) back, so no final name points at nothing.
  size_t shown = 0;
  for (; shown < landing; ++shown) {
    absl::Status renamed = group[shown].csv->Publish();
    if (!renamed.ok()) {
      if (status.ok()) status = renamed;
      break;
    }
  }
  for (size_t i = shown; i < manifests; ++i) ::unlink(manifest_path(group[i]).c_str());
  if (shown > 0 || manifests > shown) {
    absl::Status synced = SyncDirectory(options_.output_dir);
    if (!synced.ok()) {
      if (status.ok()) status = synced;
      shown = 0;  // in place, but not known to be durable: no file counts as committed
    }
  }
  int64_t bytes = 0;
  for (size_t i = 0; i < shown; ++i) bytes += group[i].manifest.size_bytes();
  {
    absl::MutexLock lock(&mu_);
    stats_.files += static_cast<int64_t>(shown);
    stats_.bytes += bytes;
    stats_.failed += static_cast<int64_t>(group.size() - shown);
  }
  for (size_t i = 0; i < shown; ++i) {
    if (group[i].committed) group[i].committed(group[i].manifest);
  }
  return status;
}

absl::Status CsvFileSink::Fail(absl::Status status) {
  if (!status.ok()) {
    {
      absl::MutexLock lock(&mu_);
      ++stats_.failed;
    }
    DoAbort();
  }
  return status;
}

void CsvFileSink::DoAbort() {
  if (writer_ != nullptr) writer_->Abort();
  writer_.reset();
  sha_.reset();
}

}  // namespace ecomstream::generator

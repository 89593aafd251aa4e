#include "services/processor/earlier_rows.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status.h"

namespace ecomstream::processor {
namespace {

constexpr size_t kRereadChunkBytes = 16 * 1024;

// Reads a file from an offset on, with pread (the first reading's descriptor keeps its position).
class PreadSource : public ByteSource {
 public:
  PreadSource(std::shared_ptr<const int> fd, std::string path, uint64_t offset)
      : fd_(std::move(fd)), path_(std::move(path)), offset_(offset) {}
  absl::StatusOr<size_t> Read(char* buffer, size_t size) override {
    for (;;) {
      const ssize_t n = ::pread(*fd_, buffer, size, static_cast<off_t>(offset_));
      if (n >= 0) {
        offset_ += static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
      }
      if (errno != EINTR) return ErrnoToStatus(errno, absl::StrCat("read ", path_));
    }
  }

 private:
  std::shared_ptr<const int> fd_;
  std::string path_;
  uint64_t offset_;
};

}  // namespace

RereadRows::RereadRows(OpenAt open_at, CsvReaderOptions options) : open_at_(std::move(open_at)), options_(options) {
  options_.skip_bom = false;
  options_.chunk_bytes = kRereadChunkBytes;
}

std::unique_ptr<RereadRows> RereadRows::ForFile(const std::string& path, CsvReaderOptions options) {
  auto fd = std::make_shared<std::shared_ptr<const int>>();
  OpenAt open_at = [path, fd](uint64_t offset) -> absl::StatusOr<std::unique_ptr<ByteSource>> {
    if (*fd == nullptr) {
      const int opened = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (opened < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
      *fd = std::shared_ptr<const int>(new int(opened), [](const int* p) {
        ::close(*p);
        delete p;
      });
    }
    return std::unique_ptr<ByteSource>(new PreadSource(*fd, path, offset));
  };
  return std::make_unique<RereadRows>(std::move(open_at), options);
}

void RereadRows::Note(int64_t row, const CsvRecord& record) {
  if ((row - 1) % kRowsPerMark == 0 && static_cast<size_t>((row - 1) / kRowsPerMark) == marks_.size()) {
    marks_.push_back(record.offset);
  }
}

absl::Status RereadRows::Find(int64_t row, CsvRecord* record) {
  const int64_t mark = (row - 1) / kRowsPerMark;
  if (row < 1 || mark >= static_cast<int64_t>(marks_.size())) {
    return absl::InternalError(absl::StrCat("row ", row, " was never read"));
  }
  reader_.reset();
  ASSIGN_OR_RETURN(source_, open_at_(marks_[mark]));
  reader_ = std::make_unique<CsvReader>(source_.get(), options_);
  for (int64_t r = mark * kRowsPerMark + 1; r <= row; ++r) {
    ASSIGN_OR_RETURN(bool more, reader_->Next(record));
    if (!more) return absl::DataLossError(absl::StrCat("row ", row, " is no longer in the file"));
  }
  return absl::OkStatus();
}

void KeptRows::Keep(int64_t row, const CsvRecord& record) {
  kept_.try_emplace(row, absl::StrCat(record.raw, "\n"));
}

absl::Status KeptRows::Find(int64_t row, CsvRecord* record) {
  auto it = kept_.find(row);
  if (it == kept_.end()) return absl::InternalError(absl::StrCat("row ", row, " was not kept"));
  reader_.reset();
  source_ = std::make_unique<StringByteSource>(it->second);
  CsvReaderOptions options;
  options.skip_bom = false;
  options.max_row_bytes = it->second.size() + 1;
  options.chunk_bytes = it->second.size() + 1;
  reader_ = std::make_unique<CsvReader>(source_.get(), options);
  ASSIGN_OR_RETURN(bool more, reader_->Next(record));
  if (!more) return absl::InternalError(absl::StrCat("row ", row, " is empty"));
  return absl::OkStatus();
}

}  // namespace ecomstream::processor

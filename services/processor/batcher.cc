#include "services/processor/batcher.h"

#include <sys/mman.h>

#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/time_util.h"

namespace ecomstream::processor {
namespace {

// Serialized overhead of one event beyond its CSV text: tags, varints and a v1 row's derived
// category. CSV spends at least one byte per field on separators, so raw + this bounds a row.
constexpr size_t kEventOverheadBytes = 160;
// A dead letter holds its raw bytes plus a detail of a few hundred bytes.
constexpr size_t kDeadLetterOverheadBytes = 1024;

// Arena blocks are 128 KiB pieces of 2 MiB regions that are transparent huge pages where the
// kernel grants them on request (THP "madvise" or "always"): blocks in 4 KiB pages cost a page
// fault per page on first touch, about 10 us each on a virtual machine, a tenth of the
// processor's CPU for the in-flight window's worth of batches. Small pieces keep what a batch
// holds within 128 KiB of what it uses (a whole huge page is resident once touched), so the
// window takes no more memory than with plain pages.
constexpr size_t kBlockBytes = 128 << 10;
constexpr size_t kRegionBytes = 2 << 20;
constexpr size_t kMaxPooledBytes = 32 << 20;  // beyond this, blocks go back to the kernel

// A fresh kRegionBytes region aligned to kRegionBytes (so it can be one huge page).
char* NewRegion() {
  void* raw = ::mmap(nullptr, 2 * kRegionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kRegionBytes - 1) & ~(kRegionBytes - 1);
  if (aligned > begin) ::munmap(raw, aligned - begin);
  const uintptr_t end = begin + 2 * kRegionBytes;
  if (aligned + kRegionBytes < end) {
    ::munmap(reinterpret_cast<void*>(aligned + kRegionBytes), end - aligned - kRegionBytes);
  }
  ::madvise(reinterpret_cast<void*>(aligned), kRegionBytes, MADV_HUGEPAGE);  // advice: without THP, plain pages
  return reinterpret_cast<char*>(aligned);
}

// The arena blocks of settled batches, reused by the next ones. Blocks are freed on the writer
// client's thread and taken on the reader's, hence the lock (taken once per block). A block of
// another size (one allocation larger than a block) comes from and goes back to the heap.
class BlockPool {
 public:
  void* Take(size_t size) {
    if (size != kBlockBytes) return ::operator new(size);
    absl::MutexLock lock(&mu_);
    if (!free_.empty()) {
      void* block = free_.back();
      free_.pop_back();
      return block;
    }
    if (carved_ == kRegionBytes) {
      region_ = NewRegion();
      carved_ = 0;
    }
    void* block = region_ + carved_;
    carved_ += kBlockBytes;
    return block;
  }
  void Give(void* block, size_t size) {
    if (size != kBlockBytes) {
      ::operator delete(block);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      if ((free_.size() + 1) * kBlockBytes <= kMaxPooledBytes) {
        free_.push_back(block);
        return;
      }
    }
    ::munmap(block, kBlockBytes);  // a piece of a region: the kernel splits its huge page
  }

 private:
  absl::Mutex mu_;
  std::vector<void*> free_ ABSL_GUARDED_BY(mu_);
  char* region_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t carved_ ABSL_GUARDED_BY(mu_) = kRegionBytes;  // of region_
};

BlockPool& Pool() {
  static BlockPool* pool = new BlockPool();
  return *pool;
}

google::protobuf::ArenaOptions BatchArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = kBlockBytes;
  options.max_block_size = kBlockBytes;
  options.block_alloc = [](size_t size) { return Pool().Take(size); };
  options.block_dealloc = [](void* block, size_t size) { Pool().Give(block, size); };
  return options;
}

}  // namespace

OwnedBatch::OwnedBatch()
    : arena_(std::make_unique<google::protobuf::Arena>(BatchArenaOptions())),
      batch_(google::protobuf::Arena::CreateMessage<v1::Batch>(arena_.get())) {}

Batcher::Batcher(BatcherOptions options, FileBatchInfo info, int64_t first_row, const tracing::Tracer* tracer,
                 std::function<int64_t()> now, ComponentCounters* counters)
    : options_(options),
      info_(std::move(info)),
      tracer_(tracer),
      now_(now ? std::move(now) : std::function<int64_t()>(&MonotonicMicros)),
      counts_(counters),
      first_row_(first_row),
      next_row_(first_row) {
  Open();
}

void Batcher::Open() {
  open_ = std::make_unique<OwnedBatch>();
  reason_counts_.fill(0);
  late_ = 0;
  first_row_ = next_row_;
}

void Batcher::NextRow() {
  if (next_row_ == first_row_) opened_at_us_ = now_();
  ++next_row_;
  ++counts_.received;
}

v1::Event* Batcher::AddEvent(size_t raw_bytes, bool late) {
  NextRow();
  open_->estimated_bytes += raw_bytes + kEventOverheadBytes;
  if (late) ++late_;
  return open_->batch().add_events();
}

void Batcher::AddDeadLetter(const v1::DeadLetter& dead_letter) {
  NextRow();
  *open_->batch().add_dead_letters() = dead_letter;
  for (int reason : dead_letter.reasons()) ++reason_counts_[reason];
  open_->estimated_bytes += dead_letter.raw().size() + dead_letter.detail().size() + kDeadLetterOverheadBytes;
}

void Batcher::AddDuplicate() {
  NextRow();
  v1::Batch& batch = open_->batch();
  batch.set_duplicate_rows(batch.duplicate_rows() + 1);
}

bool Batcher::Full() const {
  if (next_row_ == first_row_) return false;
  return next_row_ - first_row_ >= options_.max_rows || open_->estimated_bytes >= options_.max_bytes ||
         now_() - opened_at_us_ >= absl::ToInt64Microseconds(options_.linger);
}

std::unique_ptr<OwnedBatch> Batcher::Cut(bool last, int64_t total_file_rows) {
  std::unique_ptr<OwnedBatch> done = std::move(open_);
  v1::Batch& batch = done->batch();
  batch.set_file_id(info_.file_id);
  batch.set_file_name(info_.file_name);
  batch.set_claim_token(info_.claim_token);
  batch.set_first_row(first_row_);
  batch.set_last_row(next_row_ - 1);
  batch.set_last_batch(last);
  if (last) batch.set_total_file_rows(total_file_rows);
  for (int reason = 0; reason < kNumRejectReasons; ++reason) {
    if (reason_counts_[reason] == 0) continue;
    v1::ReasonCount* count = batch.add_reason_counts();
    count->set_reason(static_cast<v1::RejectReason>(reason));
    count->set_count(reason_counts_[reason]);
  }
  done->counts = RowCounts{done->rows(), batch.events_size(), batch.dead_letters_size(), batch.duplicate_rows(),
                           late_, reason_counts_};
  tracing::Span& span = done->span;
  span = tracer_->StartSpan("batch.send", tracing::SpanKind::kClient, info_.trace);
  span.SetAttribute("file.name", info_.file_name);
  span.SetAttribute("file.id", info_.file_id);
  span.SetAttribute("batch.first_row", batch.first_row());
  span.SetAttribute("batch.last_row", batch.last_row());
  span.SetAttribute("batch.last", last);
  span.SetAttribute("rows", done->rows());
  span.SetAttribute("events", batch.events_size());
  span.SetAttribute("dead_letters", batch.dead_letters_size());
  span.SetAttribute("duplicates", batch.duplicate_rows());
  batch.set_traceparent(span.context().ToTraceparent());
  batch.set_file_drop_time_us(info_.file_drop_time_us);
  batch.set_read_time_us(info_.read_time_us);
  Open();
  ++counts_.sent;
  counts_.Flush();
  return done;
}

}  // namespace ecomstream::processor


#include "services/processor/batcher.h"

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

constexpr size_t kStartBlockBytes = 64 * 1024;
constexpr size_t kMaxBlockBytes = 1 << 20;
constexpr int kBlockClasses = 5;                 // 64 KiB, 128 KiB, ... 1 MiB
constexpr size_t kMaxPooledBytes = 32 << 20;     // beyond this, blocks go back to malloc

// The arena blocks of settled batches, reused by the next ones: a fresh 1 MiB block costs a
// page fault per 4 KiB page, which was a tenth of the processor's CPU. Blocks are freed on the
// writer client's thread and taken on the reader's, hence the lock (taken once per block).
class BlockPool {
 public:
  void* Take(size_t size) {
    const int c = Class(size);
    if (c >= 0) {
      absl::MutexLock lock(&mu_);
      if (!free_[c].empty()) {
        void* block = free_[c].back();
        free_[c].pop_back();
        pooled_bytes_ -= size;
        return block;
      }
    }
    return ::operator new(size);
  }
  void Give(void* block, size_t size) {
    const int c = Class(size);
    if (c >= 0) {
      absl::MutexLock lock(&mu_);
      if (pooled_bytes_ + size <= kMaxPooledBytes) {
        free_[c].push_back(block);
        pooled_bytes_ += size;
        return;
      }
    }
    ::operator delete(block);
  }

 private:
  static int Class(size_t size) {
    for (int c = 0; c < kBlockClasses; ++c) {
      if (size == kStartBlockBytes << c) return c;
    }
    return -1;
  }
  absl::Mutex mu_;
  std::vector<void*> free_[kBlockClasses] ABSL_GUARDED_BY(mu_);
  size_t pooled_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

BlockPool& Pool() {
  static BlockPool* pool = new BlockPool();
  return *pool;
}

google::protobuf::ArenaOptions BatchArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = kStartBlockBytes;
  options.max_block_size = kMaxBlockBytes;
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
      counters_(counters),
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
  if (counters_ != nullptr) counters_->received.Increment();
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
  if (counters_ != nullptr) counters_->sent.Increment();
  return done;
}

}  // namespace ecomstream::processor


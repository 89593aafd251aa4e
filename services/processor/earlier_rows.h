// earlier_rows: gives the row validator an earlier record of the file back, so its compact
// event-id index (event_id_index.h) can check a possible duplicate exactly.
//
// RereadRows reads the row again from its source: it remembers the byte offset of every 16th
// record (half a byte per row) and scans at most 16 records from there. KeptRows (the validator's
// default when it is given none, e.g. for single rows or in tests) keeps a copy of each row the
// validator asks it to keep. Not thread-safe.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_EARLIER_ROWS_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_EARLIER_ROWS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/processor/csv_reader.h"

namespace ecomstream::processor {

class EarlierRows {
 public:
  virtual ~EarlierRows() = default;
  // Every record of the file, in order, row 1 first.
  virtual void Note(int64_t row, const CsvRecord& record) = 0;
  // `row` (just noted) is the first valid row of its event id: Find may be asked for it later.
  virtual void Keep(int64_t row, const CsvRecord& record) = 0;
  // Fills `record` with `row` (noted earlier) as read the first time (its fields and raw bytes;
  // valid until the next call). kDataLoss when the source no longer has it; I/O errors as is.
  virtual absl::Status Find(int64_t row, CsvRecord* record) = 0;
};

class RereadRows : public EarlierRows {
 public:
  // A byte source positioned at `offset` of the input being validated.
  using OpenAt = std::function<absl::StatusOr<std::unique_ptr<ByteSource>>(uint64_t offset)>;
  // `options` are the first reading's (the byte order mark is not skipped again).
  RereadRows(OpenAt open_at, CsvReaderOptions options);
  // Reads with pread from `path`, opened on the first Find.
  static std::unique_ptr<RereadRows> ForFile(const std::string& path, CsvReaderOptions options);

  void Note(int64_t row, const CsvRecord& record) override;
  void Keep(int64_t, const CsvRecord&) override {}
  absl::Status Find(int64_t row, CsvRecord* record) override;

  static constexpr int64_t kRowsPerMark = 16;

 private:
  OpenAt open_at_;
  CsvReaderOptions options_;
  std::vector<uint64_t> marks_;  // offset of rows 1, 65, 129, ...
  std::unique_ptr<ByteSource> source_;
  std::unique_ptr<CsvReader> reader_;
};

class KeptRows : public EarlierRows {
 public:
  void Note(int64_t, const CsvRecord&) override {}
  void Keep(int64_t row, const CsvRecord& record) override;
  absl::Status Find(int64_t row, CsvRecord* record) override;

 private:
  absl::flat_hash_map<int64_t, std::string> kept_;  // raw bytes plus '\n'
  std::unique_ptr<StringByteSource> source_;
  std::unique_ptr<CsvReader> reader_;
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_EARLIER_ROWS_H_

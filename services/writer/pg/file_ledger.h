// file_ledger: ClaimFile against ecomstream.ingest_files.
//
// A file is claimed for a lease (the request's lease_ms, capped by max_lease; default_lease when
// 0). Each committed batch extends the lease (pg_sink). Outcomes:
//   CLAIMED            a file never seen: start at row 1
//   ALREADY_COMMITTED  its last batch is committed: nothing to do
//   RESUME             the lease expired (its claimant died), or the same claimant asks again:
//                      continue after resume_after_row, the last contiguous committed row
//   HELD_BY_OTHER      another claimant's lease is live: try later
// Every CLAIMED/RESUME answer carries a fresh claim token; batches carrying an older token are
// refused (kAborted) unless already committed. Concurrent claims of one file serialize on its
// row (INSERT ... ON CONFLICT DO NOTHING, then SELECT ... FOR UPDATE): exactly one wins.
//
// Thread-safe.
#ifndef ECOMSTREAM_SERVICES_WRITER_PG_FILE_LEDGER_H_
#define ECOMSTREAM_SERVICES_WRITER_PG_FILE_LEDGER_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ecomstream/v1/ingest.pb.h"
#include "services/writer/pg/pg_pool.h"
#include "services/writer/pg/writer_metrics.h"

namespace ecomstream::writer {

// A well-formed file id no file has (no file's SHA-256 is known to be all zeros): the sessions'
// rehearsals (FileLedger::WarmUp, PgSink's session setup) use it in transactions rolled back.
inline constexpr char kRehearsalFileId[] =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

struct FileLedgerOptions {
  absl::Duration default_lease = absl::Seconds(30);
  absl::Duration max_lease = absl::Seconds(300);
};

class FileLedger {
 public:
  // `pool` and `metrics` must outlive the ledger.
  FileLedger(PgPool* pool, WriterMetrics* metrics, FileLedgerOptions options = {});

  // kInvalidArgument for a malformed request (file_id not sha256:<hex>, empty or oversized
  // claimant or file_name, NUL bytes, negative sizes or lease); kUnavailable when the database
  // is unreachable.
  absl::StatusOr<v1::ClaimFileResponse> Claim(const v1::ClaimFileRequest& request);

  // Runs a claim on a pooled session and rolls it back (a file id no file has), so that the
  // first real claim does not pay for the session's first use of the statement and its tables
  // (several ms). Changes no data. kUnavailable while the database is down.
  absl::Status WarmUp();

 private:
  PgPool* pool_;
  WriterMetrics* metrics_;
  FileLedgerOptions options_;
};

}  // namespace ecomstream::writer

#endif  // ECOMSTREAM_SERVICES_WRITER_PG_FILE_LEDGER_H_

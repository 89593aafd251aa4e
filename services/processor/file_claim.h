// file_claim: the claim step for an inspected file, the ClaimFile round trip (proto
// ClaimFileRequest / ClaimFileResponse; docs/design.md, "Delivery"): the request, which is what
// the writer's ledger records about the file, and the reading of the answer: load it (from
// which row), ask again later, or leave the file to whoever committed it.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_FILE_CLAIM_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_FILE_CLAIM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/trace_context.h"
#include "services/processor/file_inspector.h"
#include "services/processor/writer_client.h"

namespace ecomstream::processor {

struct ClaimStepOptions {
  std::string claimant;  // this processor's instance id
  absl::Duration lease = absl::Seconds(60);
  absl::Duration rescan_interval = absl::Seconds(2);  // bounds the wait for another's lease
};

class ClaimStep {
 public:
  // `writer` must outlive the step.
  ClaimStep(ClaimStepOptions options, WriterClient* writer) : options_(std::move(options)), writer_(writer) {}

  // Asks the writer for `facts`' file, first dropped at `drop_time_us`, with `trace` (the
  // file.process span) in the metadata; returns at once. PendingClaim::Wait() gives the answer,
  // errors as WriterClient::ClaimFile returns them.
  std::unique_ptr<PendingClaim> Start(const FileFacts& facts, int64_t drop_time_us,
                                      const tracing::TraceContext& trace) const;

  // The wait before asking again about a file whose lease another processor holds: until the
  // lease expires, between 100 ms and the rescan interval.
  absl::Duration HeldByOtherWait(const v1::ClaimFileResponse& claim) const;

 private:
  const ClaimStepOptions options_;
  WriterClient* const writer_;
};

// True when a ClaimFile error means the writer is unreachable (every claim waits) rather than a
// refusal of this file.
bool WriterUnavailable(const absl::Status& status);

// The rows of the file already committed by an earlier claimant (0 unless the answer is RESUME);
// kInternal when that is beyond the file's rows (when the inspection knows them; else the file
// job checks it).
absl::StatusOr<int64_t> ResumeAfterRow(const FileFacts& facts, const v1::ClaimFileResponse& claim);

// True when `claim` lets this processor load the file from its first row (CLAIMED, or RESUME with
// nothing committed yet): what a file job started before the answer has read is what it needs.
bool GrantsFromFirstRow(const v1::ClaimFileResponse& claim);

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_FILE_CLAIM_H_

#include "services/processor/file_claim.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/time_util.h"
#include "services/processor/redrive.h"

namespace ecomstream::processor {

std::unique_ptr<PendingClaim> ClaimStep::Start(const FileFacts& facts, int64_t drop_time_us,
                                               const tracing::TraceContext& trace) const {
  v1::ClaimFileRequest request;
  request.set_file_id(facts.file_id);
  request.set_file_name(facts.name);
  request.set_size_bytes(facts.size_bytes);
  request.set_claimant(options_.claimant);
  request.set_lease_ms(absl::ToInt64Milliseconds(options_.lease));
  request.set_file_drop_time_us(drop_time_us);
  request.set_schema_version(facts.schema.version);
  request.set_expected_rows(facts.has_manifest ? facts.manifest.rows() : 0);
  request.set_header(HeaderText(facts.schema));  // what a redrive re-parses its dead letters with
  request.set_reference_time_us(facts.reference_time_us);
  return writer_->StartClaimFile(request, trace);
}

absl::Duration ClaimStep::HeldByOtherWait(const v1::ClaimFileResponse& claim) const {
  const absl::Duration until_expiry = absl::Microseconds(claim.lease_expires_us() - NowMicros());
  return std::clamp(until_expiry, absl::Milliseconds(100),
                    std::max(absl::Milliseconds(100), options_.rescan_interval));
}

bool WriterUnavailable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

absl::StatusOr<int64_t> ResumeAfterRow(const FileFacts& facts, const v1::ClaimFileResponse& claim) {
  const int64_t resume_after_row =
      claim.outcome() == v1::ClaimFileResponse::OUTCOME_RESUME ? claim.resume_after_row() : 0;
  if (facts.rows != kRowsUnknown && resume_after_row > facts.rows) {
    return absl::InternalError(
        absl::StrCat("the writer asked to resume after row ", resume_after_row, " of ", facts.rows));
  }
  return resume_after_row;
}

bool GrantsFromFirstRow(const v1::ClaimFileResponse& claim) {
  return claim.outcome() == v1::ClaimFileResponse::OUTCOME_CLAIMED ||
         (claim.outcome() == v1::ClaimFileResponse::OUTCOME_RESUME && claim.resume_after_row() == 0);
}

}  // namespace ecomstream::processor

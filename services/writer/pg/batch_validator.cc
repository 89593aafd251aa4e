#include "services/writer/pg/batch_validator.h"

#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/domain.h"
#include "common/uuid.h"

namespace ecomstream::writer {
namespace {

constexpr size_t kMaxTextBytes = 1024;

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Marks `row` as seen; kInvalidArgument if it is outside the batch or already seen. `what` names
// the row's holder in the message (made only then).
absl::Status ClaimRow(const v1::Batch& batch, int64_t row, absl::FunctionRef<std::string()> what,
                      std::vector<bool>* seen) {
  if (row < batch.first_row() || row > batch.last_row()) {
    return absl::InvalidArgumentError(absl::StrCat(what(), " has row ", row, ", outside the batch's rows ",
                                                   batch.first_row(), "-", batch.last_row()));
  }
  const size_t index = static_cast<size_t>(row - batch.first_row());
  if ((*seen)[index]) {
    return absl::InvalidArgumentError(absl::StrCat("row ", row, " appears twice in the batch (", what(), ")"));
  }
  (*seen)[index] = true;
  return absl::OkStatus();
}

absl::Status ValidateEvent(const v1::Event& event, int index) {
  const auto where = [&] { return absl::StrCat("event ", index, " (row ", event.source_row(), ")"); };
  if (event.event_id().size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat(where(), " has a ", event.event_id().size(), "-byte event_id; a UUID is 16 bytes"));
  }
  if (!event.session_id().empty() && event.session_id().size() != 16) {
    return absl::InvalidArgumentError(absl::StrCat(where(), " has a ", event.session_id().size(),
                                                   "-byte session_id; a UUID is 16 bytes (or empty for NULL)"));
  }
  if (domain::EventTypeName(event.event_type()).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where(), " has no known event_type (", event.event_type(), ")"));
  }
  if (event.user_segment() != v1::USER_SEGMENT_UNSPECIFIED && domain::UserSegmentName(event.user_segment()).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where(), " has an unknown user_segment (", event.user_segment(), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDeadLetter(const v1::DeadLetter& dead_letter, std::map<int, int64_t>* reason_counts) {
  if (dead_letter.reasons().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("dead letter at row ", dead_letter.row(), " has no reason"));
  }
  for (int reason : dead_letter.reasons()) {
    if (reason == v1::REJECT_REASON_UNSPECIFIED || !v1::RejectReason_IsValid(reason)) {
      return absl::InvalidArgumentError(
          absl::StrCat("dead letter at row ", dead_letter.row(), " has an unknown reason (", reason, ")"));
    }
    ++(*reason_counts)[reason];
  }
  if (dead_letter.line() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dead letter at row ", dead_letter.row(), " has a negative line (", dead_letter.line(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateText(absl::string_view field, absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is missing"));
  if (value.size() > kMaxTextBytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", value.size(), " bytes; the limit is ", kMaxTextBytes));
  }
  if (value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFileId(absl::string_view file_id) {
  if (file_id.empty()) return absl::InvalidArgumentError("file_id is missing");
  constexpr absl::string_view kPrefix = "sha256:";
  if (file_id.size() != kPrefix.size() + 64 || file_id.substr(0, kPrefix.size()) != kPrefix ||
      !IsLowerHex(file_id.substr(kPrefix.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("file_id '", absl::CEscape(file_id.substr(0, 80)), "' is not sha256:<64 lower-case hex digits>"));
  }
  return absl::OkStatus();
}

absl::Status ValidateBatch(const v1::Batch& batch) {
  if (absl::Status status = ValidateFileId(batch.file_id()); !status.ok()) return status;
  if (absl::Status status = ValidateText("file_name", batch.file_name()); !status.ok()) return status;
  Uuid token;
  if (batch.claim_token().empty()) return absl::InvalidArgumentError("claim_token is missing (call ClaimFile first)");
  if (!ParseUuid(batch.claim_token(), &token)) {
    return absl::InvalidArgumentError(absl::StrCat("claim_token '", absl::CEscape(batch.claim_token().substr(0, 80)),
                                                   "' is not a UUID"));
  }
  const int64_t first = batch.first_row();
  const int64_t last = batch.last_row();
  const bool empty_file = first == 1 && last == 0 && batch.last_batch();
  if (first < 1 || (last < first && !empty_file)) {
    return absl::InvalidArgumentError(absl::StrCat("rows ", first, "-", last,
                                                   " are not a range of data rows (first_row >= 1, last_row >= "
                                                   "first_row; an empty file is rows 1-0 in its last batch)"));
  }
  if (batch.last_batch() && batch.total_file_rows() != 0 && batch.total_file_rows() != last) {
    return absl::InvalidArgumentError(absl::StrCat("the last batch ends at row ", last, " but total_file_rows is ",
                                                   batch.total_file_rows()));
  }
  if (batch.duplicate_rows() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("duplicate_rows is negative (", batch.duplicate_rows(), ")"));
  }
  const int64_t rows = last - first + 1;
  const int64_t accounted = batch.events_size() + batch.dead_letters_size() + batch.duplicate_rows();
  if (accounted != rows) {
    return absl::InvalidArgumentError(absl::StrCat("row count mismatch: rows ", first, "-", last, " are ", rows,
                                                   " rows but events + dead_letters + duplicate_rows = ",
                                                   batch.events_size(), " + ", batch.dead_letters_size(), " + ",
                                                   batch.duplicate_rows(), " = ", accounted));
  }
  std::vector<bool> seen(static_cast<size_t>(rows), false);
  for (int i = 0; i < batch.events_size(); ++i) {
    const v1::Event& event = batch.events(i);
    if (absl::Status status = ValidateEvent(event, i); !status.ok()) return status;
    const auto what = [i] { return absl::StrCat("event ", i); };
    if (absl::Status status = ClaimRow(batch, event.source_row(), what, &seen); !status.ok()) return status;
  }
  std::map<int, int64_t> reason_counts;
  for (const v1::DeadLetter& dead_letter : batch.dead_letters()) {
    if (absl::Status status = ValidateDeadLetter(dead_letter, &reason_counts); !status.ok()) return status;
    const auto what = [] { return std::string("a dead letter"); };
    if (absl::Status status = ClaimRow(batch, dead_letter.row(), what, &seen); !status.ok()) return status;
  }
  if (!batch.reason_counts().empty()) {
    std::map<int, int64_t> claimed;
    for (const v1::ReasonCount& count : batch.reason_counts()) claimed[count.reason()] += count.count();
    for (auto it = claimed.begin(); it != claimed.end();) it = it->second == 0 ? claimed.erase(it) : std::next(it);
    if (claimed != reason_counts) {
      std::string detail;
      for (const auto& [reason, count] : claimed) {
        const auto found = reason_counts.find(reason);
        const int64_t actual = found == reason_counts.end() ? 0 : found->second;
        if (actual != count) {
          absl::StrAppend(&detail, " ", domain::RejectReasonName(static_cast<v1::RejectReason>(reason)), " says ",
                          count, " but ", actual, " dead letters have it;");
        }
      }
      for (const auto& [reason, count] : reason_counts) {
        if (claimed.count(reason) == 0) {
          absl::StrAppend(&detail, " ", domain::RejectReasonName(static_cast<v1::RejectReason>(reason)),
                          " is missing but ", count, " dead letters have it;");
        }
      }
      return absl::InvalidArgumentError(absl::StrCat("reason_counts disagree with dead_letters:", detail));
    }
  }
  return absl::OkStatus();
}

}  // namespace ecomstream::writer

// redrive: loads stored dead letters that the current rules now accept (docs/redrive.md).
//
//   writer DeadLetters.List (pages, in id order) -> Revalidate (re-parse the raw row with its
//   file's header and reference time, validate with the current rules) -> writer
//   DeadLetters.Redrive (one transaction per page: insert what passes and mark its dead letter,
//   store the new reasons of what still fails)
//
// Exactly once: the writer marks a redriven dead letter in the transaction that inserts its
// event and List returns only unmarked ones, so running redrive again, or after a kill, loads
// nothing twice. A Redrive call whose outcome is unknown (UNAVAILABLE, deadline) is sent again as
// is; the writer answers it from its ledger. The processor talks only gRPC to the writer, so it
// needs no database login.
//
// Runs on the caller's thread.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_REDRIVE_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_REDRIVE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/processor/retry.h"
#include "services/processor/rules.h"
#include "services/processor/schema_registry.h"

namespace ecomstream::processor {

// The header the file ledger keeps for a file: its column names in file order, comma-separated.
std::string HeaderText(const Schema& schema);

// Re-validates one stored dead letter with `rules`: an item carrying the event when it passes
// now, or its new reasons (the stored line kept) when it does not. kFailedPrecondition, saying
// why, for a dead letter that cannot be re-parsed: no header or reference time in the ledger, a
// truncated raw row (row_too_large), or a row the database rejected (its raw is the writer's
// rendering, not the file's bytes).
absl::StatusOr<v1::RedriveItem> Revalidate(const v1::StoredDeadLetter& stored, const Rules& rules,
                                           size_t max_row_bytes);

struct RedriveOptions {
  v1::DeadLetterFilter filter;
  int64_t limit = 0;     // dead letters examined at most; 0 = all that match
  bool dry_run = false;  // list and re-validate, send nothing
  int page_size = 500;   // dead letters per List call and per Redrive transaction
  size_t max_row_bytes = 65536;
  absl::Duration rpc_timeout = absl::Seconds(60);
  int max_attempts = 8;  // per call, on UNAVAILABLE or DEADLINE_EXCEEDED
  BackoffOptions backoff;
  std::string run_id;    // default: a new UUID
};

// kInvalidArgument naming the flag for a bad filter (an unknown or unspecified reason, an
// empty or reversed time range, a file name with a '/' or NUL, a negative limit).
absl::Status ValidateRedriveOptions(const RedriveOptions& options);

struct RedriveReport {
  std::string run_id;
  std::string rules_version;
  int64_t examined = 0;
  int64_t passing = 0;          // re-validated into an event (sent, or would be with dry_run)
  int64_t failing = 0;          // still failing after re-validation
  int64_t not_redrivable = 0;   // could not be re-parsed (see Revalidate)
  int64_t inserted = 0;         // the writer's verdicts (not with dry_run)
  int64_t unchanged = 0;
  int64_t still_failing = 0;    // failing + passing rows the writer kept (conflicting_duplicate...)
  int64_t already_redriven = 0;
  std::map<std::string, int64_t> failing_reasons;  // new reasons of the rows still failing
  std::map<std::string, int64_t> not_redrivable_why;
};

// Human-readable lines for the end of a redrive ("Redrive ... inserted=12 ...").
std::string RedriveSummary(const RedriveReport& report, bool dry_run);

class Redriver {
 public:
  Redriver(std::shared_ptr<grpc::ChannelInterface> channel, std::shared_ptr<const Rules> rules,
           RedriveOptions options);
  // Runs until every matching dead letter (or `limit`) is examined, or `cancelled` says stop
  // (checked between pages: kCancelled, with what was committed before it in the log). Errors:
  // the writer's, after max_attempts for retryable ones.
  absl::StatusOr<RedriveReport> Run(const std::function<bool()>& cancelled);

 private:
  template <typename Request, typename Response, typename Call>
  absl::Status CallWithRetries(const Request& request, Response* response, Call call);

  std::unique_ptr<v1::DeadLetters::Stub> stub_;
  std::shared_ptr<const Rules> rules_;
  RedriveOptions options_;
  Backoff backoff_;
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_REDRIVE_H_

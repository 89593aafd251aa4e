#include "services/processor/redrive.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/domain.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status.h"
#include "common/uuid.h"
#include "services/processor/csv_reader.h"
#include "services/processor/row_validator.h"

namespace ecomstream::processor {
namespace {

bool HasReason(const v1::StoredDeadLetter& stored, RejectReason reason) {
  return std::find(stored.reasons().begin(), stored.reasons().end(), reason) != stored.reasons().end();
}

}  // namespace

std::string HeaderText(const Schema& schema) {
  std::vector<absl::string_view> names(static_cast<size_t>(schema.field_count));
  for (int c = 0; c < Column::kNumColumns; ++c) {
    const int index = schema.index[c];
    if (index >= 0 && index < schema.field_count) names[static_cast<size_t>(index)] = ColumnName(static_cast<Column>(c));
  }
  return absl::StrJoin(names, ",");
}

absl::StatusOr<v1::RedriveItem> Revalidate(const v1::StoredDeadLetter& stored, const Rules& rules,
                                           size_t max_row_bytes) {
  if (stored.header().empty() || stored.reference_time_us() == 0) {
    return absl::FailedPreconditionError("its file's header and reference time are not in the file ledger");
  }
  if (HasReason(stored, v1::REJECT_REASON_ROW_TOO_LARGE)) {
    return absl::FailedPreconditionError("the stored row is truncated (row_too_large)");
  }
  if (HasReason(stored, v1::REJECT_REASON_DATABASE_REJECTED)) {
    return absl::FailedPreconditionError("the database rejected it; its raw text is the writer's rendering");
  }
  const std::vector<absl::string_view> header = absl::StrSplit(stored.header(), ',');
  absl::StatusOr<Schema> schema = SchemaRegistry::Detect(header);
  if (!schema.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("the ledger's header is not a schema: ", schema.status().message()));
  }
  CsvReaderOptions csv;
  csv.max_row_bytes = max_row_bytes;
  // Stored without its terminator; give it back, as the record was read from its file.
  const std::string data = absl::StrCat(stored.raw(), "\n");
  StringByteSource source(data);
  CsvReader reader(&source, csv);
  CsvRecord record;
  absl::StatusOr<bool> more = reader.Next(&record);
  if (!more.ok()) return more.status();
  if (!*more) return absl::FailedPreconditionError("the stored row holds no record");

  RowValidatorOptions validator_options;
  validator_options.reference_time_us = stored.reference_time_us();
  validator_options.late_after_us = rules.late_after_us();
  validator_options.max_future_us = rules.max_future_us();
  validator_options.max_row_bytes = max_row_bytes;
  validator_options.rules = &rules;
  RowValidator validator(*schema, validator_options);
  v1::RedriveItem item;
  item.set_dead_letter_id(stored.id());
  // One row alone: the validator cannot see the file's other rows, so a conflict with one of
  // them stays (and the writer refuses to overwrite a stored event with other content).
  if (validator.Validate(record, stored.row()) == RowOutcome::kEvent &&
      !HasReason(stored, v1::REJECT_REASON_CONFLICTING_DUPLICATE)) {
    validator.FillEvent(item.mutable_event());
    return item;
  }
  v1::DeadLetter* dead_letter = item.mutable_still_failing();
  if (validator.counts().events == 0) {
    validator.FillDeadLetter(dead_letter);
  } else {
    dead_letter->set_row(stored.row());
    dead_letter->set_raw(stored.raw());
  }
  if (HasReason(stored, v1::REJECT_REASON_CONFLICTING_DUPLICATE) &&
      std::find(dead_letter->reasons().begin(), dead_letter->reasons().end(),
                v1::REJECT_REASON_CONFLICTING_DUPLICATE) == dead_letter->reasons().end()) {
    dead_letter->add_reasons(v1::REJECT_REASON_CONFLICTING_DUPLICATE);
    if (!dead_letter->detail().empty()) dead_letter->mutable_detail()->append("; ");
    dead_letter->mutable_detail()->append(
        "event_id: an earlier valid row of this file has the same event_id and different content");
    if (dead_letter->column().empty()) dead_letter->set_column("event_id");
  }
  dead_letter->set_line(stored.line());
  return item;
}

std::string RedriveSummary(const RedriveReport& r, bool dry_run) {
  std::string out = absl::StrCat(dry_run ? "Dry run (nothing changed)" : "Redrive done", ": run_id=", r.run_id,
                                 " rules_version=", r.rules_version, " examined=", r.examined, " passing=", r.passing,
                                 " failing=", r.failing, " not_redrivable=", r.not_redrivable);
  if (!dry_run) {
    absl::StrAppend(&out, "\n  writer: inserted=", r.inserted, " unchanged=", r.unchanged,
                    " still_failing=", r.still_failing, " already_redriven=", r.already_redriven);
  }
  for (const auto& [reason, n] : r.failing_reasons) absl::StrAppend(&out, "\n  still failing: ", reason, "=", n);
  for (const auto& [why, n] : r.not_redrivable_why) absl::StrAppend(&out, "\n  not redrivable (", why, "): ", n);
  return out;
}

absl::Status ValidateRedriveOptions(const RedriveOptions& options) {
  for (int reason : options.filter.reasons()) {
    if (reason <= 0 || !v1::RejectReason_IsValid(reason)) {
      return absl::InvalidArgumentError(absl::StrCat("--redrive_reason holds ", reason, ", not a reason code"));
    }
  }
  const std::string& file = options.filter.file_name();
  if (file.size() > 1024 || file.find('/') != std::string::npos || file.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("--redrive_file must be a file's base name (no '/', at most 1024 bytes)");
  }
  if (options.filter.from_us() < 0 || options.filter.to_us() < 0 ||
      (options.filter.to_us() != 0 && options.filter.from_us() >= options.filter.to_us())) {
    return absl::InvalidArgumentError("--redrive_from must be before --redrive_to");
  }
  if (options.limit < 0) return absl::InvalidArgumentError("--redrive_limit must not be negative");
  if (options.page_size < 1 || options.page_size > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("--redrive_page_size ", options.page_size, " is not in 1..1000"));
  }
  return absl::OkStatus();
}

Redriver::Redriver(std::shared_ptr<grpc::ChannelInterface> channel, std::shared_ptr<const Rules> rules,
                   RedriveOptions options)
    : stub_(v1::DeadLetters::NewStub(std::move(channel))),
      rules_(std::move(rules)),
      options_(std::move(options)),
      backoff_(options_.backoff, std::random_device{}()) {
  if (options_.run_id.empty()) options_.run_id = FormatUuid(NewUuidV4());
}

template <typename Request, typename Response, typename Call>
absl::Status Redriver::CallWithRetries(const Request& request, Response* response, Call call) {
  absl::Status status;
  backoff_.Reset();
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.rpc_timeout));
    context.set_wait_for_ready(true);
    status = FromGrpcStatus(call(&context, request, response));
    if (status.ok() || !(absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status))) return status;
    LOG_WARNING("Writer unavailable during redrive; retrying") << Kv("attempt", attempt)
                                                              << Kv("error", status.ToString());
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff_.Next()));
  }
  return status;
}

absl::StatusOr<RedriveReport> Redriver::Run(const std::function<bool()>& cancelled) {
  if (absl::Status status = ValidateRedriveOptions(options_); !status.ok()) return status;
  RedriveReport report;
  report.run_id = options_.run_id;
  report.rules_version = rules_->version();
  int64_t after_id = 0;
  int64_t next_seq = 1;
  for (;;) {
    if (cancelled && cancelled()) return absl::CancelledError("redrive stopped");
    int64_t page = options_.page_size;
    if (options_.limit > 0) page = std::min<int64_t>(page, options_.limit - report.examined);
    if (page <= 0) break;
    v1::ListDeadLettersRequest list;
    *list.mutable_filter() = options_.filter;
    list.set_after_id(after_id);
    list.set_limit(static_cast<int32_t>(page));
    v1::ListDeadLettersResponse listed;
    RETURN_IF_ERROR(CallWithRetries(list, &listed, [this](grpc::ClientContext* c, const auto& req, auto* resp) {
      return stub_->List(c, req, resp);
    }));
    if (listed.dead_letters().empty()) break;

    v1::RedriveRequest redrive;
    redrive.set_run_id(options_.run_id);
    redrive.set_first_seq(next_seq);
    redrive.set_rules_version(rules_->version());
    for (const v1::StoredDeadLetter& stored : listed.dead_letters()) {
      ++report.examined;
      after_id = std::max(after_id, stored.id());
      absl::StatusOr<v1::RedriveItem> item = Revalidate(stored, *rules_, options_.max_row_bytes);
      if (!item.ok()) {
        ++report.not_redrivable;
        ++report.not_redrivable_why[std::string(item.status().message())];
        continue;
      }
      if (item->has_event()) {
        ++report.passing;
      } else {
        ++report.failing;
        for (int reason : item->still_failing().reasons()) {
          ++report.failing_reasons[domain::RejectReasonName(static_cast<RejectReason>(reason))];
        }
      }
      *redrive.add_items() = *std::move(item);
    }
    if (options_.dry_run || redrive.items().empty()) continue;
    v1::RedriveResponse done;
    RETURN_IF_ERROR(CallWithRetries(redrive, &done, [this](grpc::ClientContext* c, const auto& req, auto* resp) {
      return stub_->Redrive(c, req, resp);
    }));
    next_seq += redrive.items_size();
    report.inserted += done.inserted();
    report.unchanged += done.unchanged();
    report.still_failing += done.still_failing();
    report.already_redriven += done.already_redriven();
    LOG_INFO("Redrive page committed") << Kv("run_id", options_.run_id) << Kv("first_seq", redrive.first_seq())
                                       << Kv("items", redrive.items_size()) << Kv("inserted", done.inserted())
                                       << Kv("unchanged", done.unchanged()) << Kv("still_failing", done.still_failing())
                                       << Kv("already_redriven", done.already_redriven())
                                       << Kv("already_committed", done.already_committed());
  }
  return report;
}

}  // namespace ecomstream::processor

#include "services/writer/pg/file_ledger.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/uuid.h"
#include "services/writer/pg/batch_validator.h"
#include "services/writer/pg/pg_connection.h"

namespace ecomstream::writer {
namespace {

// $6 claimant, $7 token, $8 lease in ms, $10 header, $11 reference time (redrive re-parses with
// them; sql/020_redrive.sql). Returns nothing if the file is already known. Prepared once per
// session (kInsertClaimName): planning it cost more than running it (~0.45 of ~0.6 ms).
constexpr char kInsertClaimName[] = "ecomstream_ledger_insert_claim";
constexpr char kInsertClaim[] = R"sql(
INSERT INTO ecomstream.ingest_files (
  file_id, file_name, size_bytes, schema_version, expected_rows, state, claimant, claim_token, lease_ms,
  lease_expires_at, file_drop_time, header, reference_time)
VALUES ($1, $2, $3::bigint, nullif($4::smallint, 0), nullif($5::bigint, 0), 'claimed', $6, $7::uuid,
        $8::bigint, clock_timestamp() + $8::bigint * interval '1 millisecond',
        to_timestamp(nullif($9::bigint, 0) / 1e6), nullif($10, ''),
        timestamptz 'epoch' + nullif($11::bigint, 0) * interval '1 microsecond')
ON CONFLICT (file_id) DO NOTHING
RETURNING (extract(epoch FROM lease_expires_at) * 1000000)::bigint)sql";

// WarmUp's claim token (the claim is rolled back).
constexpr char kRehearsalToken[] = "00000000-0000-0000-0000-000000000000";

// Prepares the claim INSERT on the server (once per session; sent with its first use).
void PrepareClaim(PgConnection& connection) {
  if (connection.ledger_ready) return;
  connection.prepare(kInsertClaimName, kInsertClaim);
  connection.ledger_ready = true;
}

constexpr char kLockClaim[] = R"sql(
SELECT state, claimant, committed_through, lease_expires_at <= clock_timestamp(),
       (extract(epoch FROM lease_expires_at) * 1000000)::bigint
FROM ecomstream.ingest_files
WHERE file_id = $1
FOR UPDATE)sql";

constexpr char kTakeClaim[] = R"sql(
UPDATE ecomstream.ingest_files SET
  claimant = $2, claim_token = $3::uuid, lease_ms = $4::bigint,
  lease_expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond',
  claims = claims + 1, file_name = $5, claimed_at = now(), updated_at = now()
WHERE file_id = $1
RETURNING (extract(epoch FROM lease_expires_at) * 1000000)::bigint)sql";

absl::Status ValidateRequest(const v1::ClaimFileRequest& request) {
  if (absl::Status status = ValidateFileId(request.file_id()); !status.ok()) return status;
  if (absl::Status status = ValidateText("file_name", request.file_name()); !status.ok()) return status;
  if (absl::Status status = ValidateText("claimant", request.claimant()); !status.ok()) return status;
  if (request.size_bytes() < 0 || request.expected_rows() < 0 || request.lease_ms() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("size_bytes (", request.size_bytes(), "), expected_rows (",
                                                   request.expected_rows(), ") and lease_ms (", request.lease_ms(),
                                                   ") must not be negative"));
  }
  if (!request.header().empty()) {
    if (absl::Status status = ValidateText("header", request.header()); !status.ok()) return status;
  }
  if (request.schema_version() < 0 || request.schema_version() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema_version ", request.schema_version(), " is not 1, 2, 3 (or 0 for unknown)"));
  }
  return absl::OkStatus();
}

}  // namespace

FileLedger::FileLedger(PgPool* pool, WriterMetrics* metrics, FileLedgerOptions options)
    : pool_(pool), metrics_(metrics), options_(options) {}

absl::Status FileLedger::WarmUp() {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  try {
    PgConnection& connection = **lease;
    PrepareClaim(connection);
    pqxx::work rehearsal(connection);  // destroyed uncommitted: rolled back
    rehearsal.exec_prepared(kInsertClaimName, kRehearsalFileId, "rehearsal", 0, 0, 0, "rehearsal", kRehearsalToken, 0, 0, "",
                            0);
  } catch (const std::exception& e) {
    absl::Status status = StatusFromPgException(e);
    if (!(*lease)->is_open()) lease->MarkBroken();
    return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ClaimFileResponse> FileLedger::Claim(const v1::ClaimFileRequest& request) {
  if (absl::Status status = ValidateRequest(request); !status.ok()) return status;
  const int64_t lease_ms =
      request.lease_ms() == 0
          ? absl::ToInt64Milliseconds(options_.default_lease)
          : std::min<int64_t>(request.lease_ms(), absl::ToInt64Milliseconds(options_.max_lease));
  const std::string token = FormatUuid(NewUuidV4());

  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  v1::ClaimFileResponse response;
  try {
    // A file never seen (nearly every claim) is claimed by one statement on its own, committed as
    // it runs: no BEGIN and COMMIT round trips. A known file is read and taken under its row lock.
    pqxx::result inserted;
    {
      PgConnection& connection = **lease;
      PrepareClaim(connection);
      pqxx::nontransaction statement(connection);
      inserted = statement.exec_prepared(kInsertClaimName, request.file_id(), request.file_name(), request.size_bytes(),
                                       request.schema_version(), request.expected_rows(), request.claimant(),
                                       token, lease_ms, request.file_drop_time_us(), request.header(),
                                       request.reference_time_us());
    }
    if (!inserted.empty()) {
      response.set_outcome(v1::ClaimFileResponse::OUTCOME_CLAIMED);
      response.set_claim_token(token);
      response.set_lease_expires_us(inserted[0][0].as<int64_t>());
    } else {
      pqxx::work txn(**lease);
      const pqxx::row file = txn.exec_params1(kLockClaim, request.file_id());
      const std::string holder = file[1].as<std::string>();
      if (file[0].as<std::string>() == "committed") {
        response.set_outcome(v1::ClaimFileResponse::OUTCOME_ALREADY_COMMITTED);
        response.set_resume_after_row(file[2].as<int64_t>());
      } else if (holder == request.claimant() || file[3].as<bool>()) {
        const pqxx::row taken =
            txn.exec_params1(kTakeClaim, request.file_id(), request.claimant(), token, lease_ms, request.file_name());
        response.set_outcome(v1::ClaimFileResponse::OUTCOME_RESUME);
        response.set_resume_after_row(file[2].as<int64_t>());
        response.set_claim_token(token);
        response.set_lease_expires_us(taken[0].as<int64_t>());
      } else {
        response.set_outcome(v1::ClaimFileResponse::OUTCOME_HELD_BY_OTHER);
        response.set_holder(holder);
        response.set_lease_expires_us(file[4].as<int64_t>());
      }
      txn.commit();
    }
  } catch (const std::exception& e) {
    absl::Status status = StatusFromPgException(e);
    if (!(*lease)->is_open()) lease->MarkBroken();
    return status;
  }
  metrics_->RecordClaim(response.outcome());
  return response;
}

}  // namespace ecomstream::writer

#include "services/writer/pg/redrive_store.h"

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/domain.h"
#include "common/uuid.h"
#include "services/writer/pg/batch_validator.h"
#include "services/writer/pg/event_stats.h"
#include "services/writer/pg/pg_connection.h"

namespace ecomstream::writer {
namespace {

constexpr size_t kMaxDetailBytes = 16384;
constexpr size_t kMaxRulesVersionBytes = 64;

// $1 after_id, $2 reasons text[], $3 file name, $4/$5 stored-at bounds in us (0 = none), $6 limit.
constexpr char kListDeadLetters[] = R"sql(
SELECT d.id, d.file_id, d.file_name, d.row_number, coalesce(d.line_number, 0), d.raw, d.reasons::text,
       coalesce(f.header, ''), coalesce((extract(epoch FROM f.reference_time) * 1000000)::bigint, 0)
FROM ecomstream.dead_letter_events d
LEFT JOIN ecomstream.ingest_files f ON f.file_id = d.file_id
WHERE d.redriven_at IS NULL AND d.id > $1::bigint
  AND (cardinality($2::text[]) = 0 OR d.reasons && $2::text[])
  AND ($3 = '' OR d.file_name = $3)
  AND ($4::bigint = 0 OR d.created_at >= timestamptz 'epoch' + $4::bigint * interval '1 microsecond')
  AND ($5::bigint = 0 OR d.created_at < timestamptz 'epoch' + $5::bigint * interval '1 microsecond')
ORDER BY d.id
LIMIT $6::integer)sql";

constexpr char kFindRedriveBatch[] = R"sql(
SELECT inserted, unchanged, dead_lettered, duplicates
FROM ecomstream.ingest_batches
WHERE file_id = $1 AND first_row = $2::bigint)sql";

// Locks the request's dead letters (in id order: concurrent redrives cannot deadlock).
constexpr char kLockDeadLetters[] = R"sql(
SELECT id, file_id, file_name, redriven_at IS NOT NULL
FROM ecomstream.dead_letter_events
WHERE id = ANY($1::bigint[])
ORDER BY id
FOR UPDATE)sql";

// The event as parameters $1..$20 (every one text: '' is NULL; $20 is its event_sources key), as
// a one-row relation `v`.
#define ECOMSTREAM_REDRIVE_EVENT_VALUES                                                                      \
  "WITH v (event_id, user_id, session_id, event_type, product_id, category, price, quantity, total_amount, " \
  "event_time, user_segment, device_type, browser, geo_country, geo_city, referrer, campaign_id, "           \
  "schema_version, late_arrival, source_id) AS (VALUES ("                                                    \
  "$1::uuid, $2::bigint, nullif($3, '')::uuid, $4::text, nullif($5, '')::bigint, nullif($6, ''), "           \
  "nullif($7, '')::numeric / 100, nullif($8, '')::integer, nullif($9, '')::numeric / 100, "                  \
  "timestamptz 'epoch' + $10::bigint * interval '1 microsecond', nullif($11, ''), nullif($12, ''), "         \
  "nullif($13, ''), nullif($14, ''), nullif($15, ''), nullif($16, ''), nullif($17, ''), $18::smallint, "     \
  "$19::boolean, $20::bigint)) "

constexpr char kInsertEvent[] = ECOMSTREAM_REDRIVE_EVENT_VALUES R"sql(
INSERT INTO ecomstream.events (event_id, user_id, session_id, event_type, product_id, category, price, quantity,
  total_amount, event_time, user_segment, device_type, browser, geo_country, geo_city, referrer, campaign_id,
  schema_version, late_arrival, source_id)
SELECT * FROM v
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id)sql";

// The content columns pg_sink compares too.
constexpr char kSameEvent[] = ECOMSTREAM_REDRIVE_EVENT_VALUES R"sql(
SELECT (e.user_id, e.session_id, e.event_type, e.product_id, e.category, e.price, e.quantity, e.total_amount,
        e.event_time, e.user_segment, e.device_type, e.browser, e.geo_country, e.geo_city, e.referrer,
        e.campaign_id)
       IS NOT DISTINCT FROM
       (v.user_id, v.session_id, v.event_type, v.product_id, v.category, v.price, v.quantity, v.total_amount,
        v.event_time, v.user_segment, v.device_type, v.browser, v.geo_country, v.geo_city, v.referrer,
        v.campaign_id)
FROM ecomstream.events e, v
WHERE e.event_id = v.event_id)sql";
#undef ECOMSTREAM_REDRIVE_EVENT_VALUES

// A redriven event's event_sources row: one per file a request stores events of, inserted after
// them (with the key taken before, from the writer's SourceIds), so no row is left without events.
constexpr char kRecordSource[] = R"sql(
INSERT INTO ecomstream.event_sources (source_id, source_file) VALUES ($1::bigint, $2))sql";

constexpr char kMarkRedriven[] = R"sql(
UPDATE ecomstream.dead_letter_events SET
  redriven_at = clock_timestamp(), redriven_event_id = $2::uuid, redrive_rules_version = $3,
  redrive_attempts = redrive_attempts + 1, last_redrive_at = clock_timestamp()
WHERE id = $1::bigint)sql";

constexpr char kStillFailing[] = R"sql(
UPDATE ecomstream.dead_letter_events SET
  reasons = $2::text[], detail = nullif($3, ''), column_name = nullif($4, ''), redrive_rules_version = $5,
  redrive_attempts = redrive_attempts + 1, last_redrive_at = clock_timestamp()
WHERE id = $1::bigint)sql";

constexpr char kAddRedriven[] = R"sql(
UPDATE ecomstream.ingest_files SET redriven = redriven + $2::bigint, updated_at = now()
WHERE file_id = $1)sql";

constexpr char kRecordRedriveBatch[] = R"sql(
INSERT INTO ecomstream.ingest_batches (
  file_id, first_row, last_row, file_name, last_batch, rows, inserted, updated, unchanged, duplicates,
  dead_lettered, reason_counts, received_at, committed_at, source, rules_version)
VALUES ($1, $2::bigint, $3::bigint, 'redrive', false, $4::bigint, $5::bigint, 0, $6::bigint, $7::bigint,
        $8::bigint, $9::jsonb, now(), clock_timestamp(), 'redrive', $10))sql";

std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const std::string& item : items) {
    if (out.size() > 1) out.push_back(',');
    AppendQuotedArrayElement(item, &out);
  }
  out.push_back('}');
  return out;
}

std::optional<v1::RejectReason> ReasonFromName(absl::string_view name) {
  for (int r = 1; r < v1::RejectReason_ARRAYSIZE; ++r) {
    if (v1::RejectReason_IsValid(r) && domain::RejectReasonName(static_cast<v1::RejectReason>(r)) == name) {
      return static_cast<v1::RejectReason>(r);
    }
  }
  return std::nullopt;
}

std::string OptionalInt(bool has, int64_t value) { return has ? absl::StrCat(value) : std::string(); }

absl::Status CheckOptionalText(absl::string_view field, absl::string_view value) {
  if (value.empty()) return absl::OkStatus();
  return ValidateText(field, value);
}

struct Counts {
  int64_t inserted = 0, unchanged = 0, still_failing = 0, already = 0;
  std::map<std::string, int64_t> reasons;
  std::map<std::string, int64_t> redriven_by_file;
};

}  // namespace

absl::Status ValidateListRequest(const v1::ListDeadLettersRequest& request) {
  if (request.limit() < 1 || request.limit() > kMaxListLimit) {
    return absl::InvalidArgumentError(absl::StrCat("limit ", request.limit(), " is not in 1..", kMaxListLimit));
  }
  if (request.after_id() < 0) return absl::InvalidArgumentError("after_id must not be negative");
  const v1::DeadLetterFilter& f = request.filter();
  for (int reason : f.reasons()) {
    if (reason <= 0 || !v1::RejectReason_IsValid(reason)) {
      return absl::InvalidArgumentError(absl::StrCat("filter.reasons holds ", reason, ", not a reject reason"));
    }
  }
  if (absl::Status s = CheckOptionalText("filter.file_name", f.file_name()); !s.ok()) return s;
  if (f.from_us() < 0 || f.to_us() < 0 || (f.to_us() != 0 && f.from_us() >= f.to_us())) {
    return absl::InvalidArgumentError(absl::StrCat("filter time range [", f.from_us(), ", ", f.to_us(),
                                                   ") is empty or negative"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRedriveRequest(const v1::RedriveRequest& request) {
  if (Uuid id; !ParseUuid(request.run_id(), &id)) {
    return absl::InvalidArgumentError(absl::StrCat("run_id \"", request.run_id().substr(0, 64), "\" is not a UUID"));
  }
  if (request.first_seq() < 1) return absl::InvalidArgumentError("first_seq must be at least 1");
  if (request.items_size() < 1 || request.items_size() > kMaxRedriveItems) {
    return absl::InvalidArgumentError(absl::StrCat("items: ", request.items_size(), " is not in 1..", kMaxRedriveItems));
  }
  if (request.rules_version().size() > kMaxRulesVersionBytes) {
    return absl::InvalidArgumentError("rules_version is longer than 64 bytes");
  }
  if (absl::Status s = ValidateText("rules_version", request.rules_version()); !s.ok()) return s;
  std::set<int64_t> ids;
  for (int i = 0; i < request.items_size(); ++i) {
    const v1::RedriveItem& item = request.items(i);
    const std::string where = absl::StrCat("items[", i, "] (dead letter ", item.dead_letter_id(), "): ");
    auto bad = [&where](absl::string_view what) { return absl::InvalidArgumentError(absl::StrCat(where, what)); };
    if (item.dead_letter_id() <= 0) return bad("dead_letter_id must be positive");
    if (!ids.insert(item.dead_letter_id()).second) return bad("listed twice");
    if (item.has_event()) {
      const v1::Event& e = item.event();
      if (e.event_id().size() != 16) return bad("event_id is not 16 bytes");
      if (!e.session_id().empty() && e.session_id().size() != 16) return bad("session_id is not empty or 16 bytes");
      if (e.event_type() == v1::EVENT_TYPE_UNSPECIFIED || !v1::EventType_IsValid(e.event_type())) {
        return bad("event_type is not a known event type");
      }
      if (!v1::UserSegment_IsValid(e.user_segment())) return bad("user_segment is not a known segment");
      const std::pair<const char*, const std::string*> texts[] = {
          {"category", &e.category()}, {"device_type", &e.device_type()}, {"browser", &e.browser()},
          {"geo_country", &e.geo_country()}, {"geo_city", &e.geo_city()}, {"referrer", &e.referrer()},
          {"campaign_id", &e.campaign_id()}};
      for (const auto& [field, value] : texts) {
        if (absl::Status s = CheckOptionalText(field, *value); !s.ok()) return bad(s.message());
      }
    } else if (item.has_still_failing()) {
      const v1::DeadLetter& d = item.still_failing();
      if (d.reasons_size() == 0) return bad("still_failing has no reason");
      for (int reason : d.reasons()) {
        if (reason <= 0 || !v1::RejectReason_IsValid(reason)) return bad(absl::StrCat("reason ", reason, " is unknown"));
      }
      if (d.detail().size() > kMaxDetailBytes || d.detail().find('\0') != std::string::npos) {
        return bad("detail is over 16 KiB or holds a NUL byte");
      }
      if (absl::Status s = CheckOptionalText("column", d.column()); !s.ok()) return bad(s.message());
    } else {
      return bad("neither event nor still_failing");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ListDeadLettersResponse> RedriveStore::List(const v1::ListDeadLettersRequest& request) {
  if (absl::Status s = ValidateListRequest(request); !s.ok()) return s;
  std::vector<std::string> reasons;
  for (int reason : request.filter().reasons()) {
    reasons.push_back(domain::RejectReasonName(static_cast<v1::RejectReason>(reason)));
  }
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  v1::ListDeadLettersResponse response;
  try {
    pqxx::read_transaction txn(**lease);
    const pqxx::result rows = txn.exec_params(kListDeadLetters, request.after_id(), TextArray(reasons),
                                              request.filter().file_name(), request.filter().from_us(),
                                              request.filter().to_us(), request.limit());
    for (const pqxx::row& row : rows) {
      v1::StoredDeadLetter* d = response.add_dead_letters();
      d->set_id(row[0].as<int64_t>());
      d->set_file_id(row[1].as<std::string>());
      d->set_file_name(row[2].as<std::string>());
      d->set_row(row[3].as<int64_t>());
      d->set_line(row[4].as<int64_t>());
      const pqxx::binarystring raw(row[5]);
      d->set_raw(raw.str());
      absl::string_view list = row[6].c_str();
      absl::ConsumePrefix(&list, "{");
      absl::ConsumeSuffix(&list, "}");
      for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipEmpty())) {
        if (std::optional<v1::RejectReason> reason = ReasonFromName(name)) d->add_reasons(*reason);
      }
      d->set_header(row[7].as<std::string>());
      d->set_reference_time_us(row[8].as<int64_t>());
    }
    txn.commit();
  } catch (const std::exception& e) {
    absl::Status status = StatusFromPgException(e);
    if (!(*lease)->is_open()) lease->MarkBroken();
    return status;
  }
  return response;
}

namespace {

// The recorded answer if (run_id, first_seq) is in the batch ledger.
std::optional<v1::RedriveResponse> RecordedAnswer(pqxx::work& txn, const std::string& ledger_id, int64_t first_seq) {
  const pqxx::result found = txn.exec_params(kFindRedriveBatch, ledger_id, first_seq);
  if (found.empty()) return std::nullopt;
  v1::RedriveResponse response;
  response.set_inserted(found[0][0].as<int64_t>());
  response.set_unchanged(found[0][1].as<int64_t>());
  response.set_still_failing(found[0][2].as<int64_t>());
  response.set_already_redriven(found[0][3].as<int64_t>());
  response.set_already_committed(true);
  return response;
}

// A dead letter of the request, locked.
struct LockedDeadLetter {
  std::string file_id, file_name;
  bool redriven;
};

// Locks the request's dead letters; those gone are missing from the map.
absl::flat_hash_map<int64_t, LockedDeadLetter> LockDeadLetters(pqxx::work& txn, const v1::RedriveRequest& request) {
  std::string ids = "{";
  for (const v1::RedriveItem& item : request.items()) {
    if (ids.size() > 1) ids.push_back(',');
    absl::StrAppend(&ids, item.dead_letter_id());
  }
  ids.push_back('}');
  absl::flat_hash_map<int64_t, LockedDeadLetter> locked;
  for (const pqxx::row& row : txn.exec_params(kLockDeadLetters, ids)) {
    locked[row[0].as<int64_t>()] =
        LockedDeadLetter{row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<bool>()};
  }
  return locked;
}

// The event as kInsertEvent's and kSameEvent's parameters $1..$20 (text; "" is NULL).
using EventParams = std::array<std::string, 20>;
EventParams EventAsParams(const v1::Event& e, int64_t source_id) {
  std::string event_id;
  AppendUuid(e.event_id(), &event_id);
  std::string session_id;
  if (!e.session_id().empty()) AppendUuid(e.session_id(), &session_id);
  return EventParams{
      event_id,
      absl::StrCat(e.user_id()),
      session_id,
      std::string(domain::EventTypeName(e.event_type())),
      OptionalInt(e.has_product_id(), e.product_id()),
      e.category(),
      OptionalInt(e.has_price_cents(), e.price_cents()),
      OptionalInt(e.has_quantity(), e.quantity()),
      OptionalInt(e.has_total_amount_cents(), e.total_amount_cents()),
      absl::StrCat(e.event_time_us()),
      std::string(domain::UserSegmentName(e.user_segment())),
      e.device_type(),
      e.browser(),
      e.geo_country(),
      e.geo_city(),
      e.referrer(),
      e.campaign_id(),
      absl::StrCat(e.schema_version()),
      e.late_arrival() ? "true" : "false",
      absl::StrCat(source_id),
  };
}

// What inserting one redriven event came to.
struct InsertOutcome {
  bool inserted = false;
  std::optional<bool> same;  // not inserted: whether the stored event has the same content
  std::string refused;       // the database's message if it refused the event
};

InsertOutcome InsertEvent(pqxx::work& txn, const EventParams& p) {
  InsertOutcome outcome;
  // A savepoint per event, so a row the database refuses leaves the rest of the page alone.
  // (Plain SQL: after a failed statement libpqxx 6.4's subtransaction did not roll back.)
  txn.exec0("SAVEPOINT redrive_event");
  try {
    outcome.inserted = !txn.exec_params(kInsertEvent, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9],
                                        p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17], p[18], p[19])
                            .empty();
    if (!outcome.inserted) {
      const pqxx::result r = txn.exec_params(kSameEvent, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9],
                                             p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17], p[18], p[19]);
      if (!r.empty()) outcome.same = r[0][0].as<bool>();
    }
    txn.exec0("RELEASE SAVEPOINT redrive_event");
  } catch (const pqxx::sql_error& e) {
    if (!IsDataError(SqlState(e))) throw;
    txn.exec0("ROLLBACK TO SAVEPOINT redrive_event");
    txn.exec0("RELEASE SAVEPOINT redrive_event");
    outcome.refused = absl::StrCat("the database refused the event: ", e.what());
    while (!outcome.refused.empty() && (outcome.refused.back() == '\n' || outcome.refused.back() == ' ')) {
      outcome.refused.pop_back();
    }
  }
  return outcome;
}

// One request's transaction; throws what libpqxx throws.
absl::StatusOr<v1::RedriveResponse> RunRedrive(pqxx::work& txn, const v1::RedriveRequest& request,
                                               SourceIds* source_ids) {
  const std::string ledger_id = absl::StrCat("redrive:", request.run_id());
  if (std::optional<v1::RedriveResponse> recorded = RecordedAnswer(txn, ledger_id, request.first_seq())) {
    return *std::move(recorded);
  }
  const absl::flat_hash_map<int64_t, LockedDeadLetter> locked = LockDeadLetters(txn, request);

  Counts counts;
  // The event_sources key of each file whose dead letters the request redrives.
  struct Source {
    int64_t id = 0;
    bool stored = false;  // an event was inserted with it
  };
  std::map<std::string, Source> sources;
  auto still_failing = [&](int64_t id, const std::vector<std::string>& reasons, const std::string& detail,
                           const std::string& column) {
    txn.exec_params(kStillFailing, id, TextArray(reasons), detail, column, request.rules_version());
    ++counts.still_failing;
    for (const std::string& reason : reasons) ++counts.reasons[reason];
  };
  for (const v1::RedriveItem& item : request.items()) {
    const auto it = locked.find(item.dead_letter_id());
    if (it == locked.end() || it->second.redriven) {
      ++counts.already;
      continue;
    }
    if (item.has_still_failing()) {
      const v1::DeadLetter& d = item.still_failing();
      std::vector<std::string> reasons;
      for (int reason : d.reasons()) reasons.push_back(domain::RejectReasonName(static_cast<v1::RejectReason>(reason)));
      still_failing(item.dead_letter_id(), reasons, d.detail(), d.column());
      continue;
    }
    Source& source = sources[it->second.file_name];
    if (source.id == 0) source.id = source_ids->Next(txn);
    const EventParams params = EventAsParams(item.event(), source.id);
    const std::string& event_id = params[0];
    const InsertOutcome outcome = InsertEvent(txn, params);
    if (!outcome.refused.empty()) {
      still_failing(item.dead_letter_id(), {domain::RejectReasonName(v1::REJECT_REASON_DATABASE_REJECTED)},
                    outcome.refused, "");
    } else if (outcome.inserted || outcome.same.value_or(false)) {
      txn.exec_params(kMarkRedriven, item.dead_letter_id(), event_id, request.rules_version());
      ++(outcome.inserted ? counts.inserted : counts.unchanged);
      source.stored = source.stored || outcome.inserted;
      ++counts.redriven_by_file[it->second.file_id];
    } else {
      still_failing(item.dead_letter_id(), {domain::RejectReasonName(v1::REJECT_REASON_CONFLICTING_DUPLICATE)},
                    absl::StrCat("event_id: event ", event_id,
                                 " is stored with other content; redrive does not overwrite stored events"),
                    "event_id");
    }
  }
  for (const auto& [file_name, source] : sources) {
    if (source.stored) txn.exec_params(kRecordSource, source.id, file_name);
  }
  for (const auto& [file_id, n] : counts.redriven_by_file) txn.exec_params(kAddRedriven, file_id, n);
  const int64_t rows = request.items_size();
  txn.exec_params(kRecordRedriveBatch, ledger_id, request.first_seq(), request.first_seq() + rows - 1, rows,
                  counts.inserted, counts.unchanged, counts.already, counts.still_failing, ReasonCountsJson(counts.reasons),
                  request.rules_version());
  txn.commit();
  v1::RedriveResponse response;
  response.set_inserted(counts.inserted);
  response.set_unchanged(counts.unchanged);
  response.set_still_failing(counts.still_failing);
  response.set_already_redriven(counts.already);
  return response;
}

}  // namespace

absl::StatusOr<v1::RedriveResponse> RedriveStore::Redrive(const v1::RedriveRequest& request) {
  if (absl::Status s = ValidateRedriveRequest(request); !s.ok()) return s;
  absl::Status status;
  // A concurrent twin of this request (a retry racing its original) trips the ledger's primary
  // key: the next attempt finds the recorded batch.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto lease = pool_->Acquire();
    if (!lease.ok()) return lease.status();
    try {
      pqxx::work txn(**lease);
      return RunRedrive(txn, request, &source_ids_);
    } catch (const std::exception& e) {
      status = StatusFromPgException(e);
      if (!(*lease)->is_open()) lease->MarkBroken();
      if (SqlState(e) != "23505" && !absl::IsUnavailable(status)) return status;
    }
  }
  return status;
}

}  // namespace ecomstream::writer

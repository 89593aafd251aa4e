#include "services/writer/pg/pg_sink.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/domain.h"
#include "common/status.h"
#include "common/time_util.h"
#include "common/trace_context.h"
#include "common/uuid.h"
#include "services/writer/pg/batch_validator.h"
#include "services/writer/pg/copy_encoder.h"
#include "services/writer/pg/event_stats.h"
#include "services/writer/pg/file_ledger.h"
#include "services/writer/pg/pg_connection.h"

namespace ecomstream::writer {
namespace {

// Per session: the staging table for events whose id is already stored. The UPDATE empties it
// (DELETE ... RETURNING); the dead rows are truncated away every kTruncateStagingRows rows, not at
// every COMMIT (ON COMMIT DELETE ROWS cost about 1 ms per batch).
constexpr char kCreateStaging[] = R"sql(
CREATE TEMP TABLE IF NOT EXISTS ecomstream_staging (
  event_id uuid, user_id bigint, session_id uuid, event_type text, product_id bigint, category text,
  price numeric, quantity integer, total_amount numeric, event_time timestamptz, user_segment text,
  device_type text, browser text, geo_country text, geo_city text, referrer text, campaign_id text,
  schema_version smallint, late_arrival boolean, source_id bigint
) ON COMMIT PRESERVE ROWS)sql";
constexpr char kTruncateStaging[] = "TRUNCATE pg_temp.ecomstream_staging";
constexpr int64_t kTruncateStagingRows = 10'000;

// The writer's joins are index lookups of a batch's rows in events, whatever the planner guesses
// about the staging table's size (it is never analyzed): no hash or merge join scans events.
constexpr char kSessionSettings[] = "SET enable_hashjoin = off; SET enable_mergejoin = off";

// The writer adds what its COPYs insert to event_stats_hourly itself, so its transactions skip
// the insert trigger (sql/006_writer_event_stats.sql). Set per transaction, by the first statement
// of each (kLockFile on the careful way, kBeginFastWay on the fast way): a session-level SET could
// be lost behind a transaction pooler, and the rows counted twice.

// The fast way's BEGIN, sent in one simple query with the transaction's first statement (usually
// the COPY of its events; FastWayTransaction).
constexpr char kBeginFastWay[] = "BEGIN; SET LOCAL ecomstream.writer_event_stats = 'on'";

// Also the largest stored event id (see UpsertOnce), to save a round trip. The row lock may wait
// for a concurrent transaction; the id is then as of before the wait, which only means that an
// id stored meanwhile is not probed: its COPY trips the unique index and the probe runs again.
constexpr char kLockFile[] = R"sql(
SELECT f.state, f.claimant, f.claim_token::text, f.committed_through,
       (SELECT e.event_id::text FROM ecomstream.events e ORDER BY e.event_id DESC LIMIT 1),
       set_config('ecomstream.writer_event_stats', 'on', true)
FROM ecomstream.ingest_files f
WHERE f.file_id = $1
FOR UPDATE OF f)sql";

// kLockFile after the fast way's insert, which has no further probe: without the largest stored
// id (its backward scan would walk the index entries of the batch begun after this one). It reads
// no events: prepared (EnsureSession).
constexpr char kLockFileAfterInsertSql[] = R"sql(
SELECT f.state, f.claimant, f.claim_token::text, f.committed_through
FROM ecomstream.ingest_files f
WHERE f.file_id = $1
FOR UPDATE OF f)sql";
constexpr char kLockFileAfterInsert[] = "ecomstream_sink_lock_file_after_insert";  // prepared kLockFileAfterInsertSql

constexpr char kFindBatch[] = R"sql(
SELECT last_row, inserted, updated, unchanged, duplicates, dead_lettered, last_batch,
       (extract(epoch FROM committed_at) * 1000000)::bigint
FROM ecomstream.ingest_batches
WHERE file_id = $1 AND first_row = $2)sql";

// The largest stored id: a backward scan of the primary key. (Qualified: a bare `event_id` in
// ORDER BY would name the text output column and sort the whole table.)
constexpr char kLargestEventId[] = R"sql(
SELECT (SELECT e.event_id::text FROM ecomstream.events e ORDER BY e.event_id DESC LIMIT 1))sql";

// The fast way's first statement when this writer knows an id it committed at the top of events
// and the batch has ids up to it: that id still stored (not truncated or deleted away) bounds the
// largest stored id from below, without the backward scan of kLargestEventId, which walks every
// index entry a concurrent batch has inserted but not committed (the batch begun ahead sits at the
// top of the index). An id stored above it by another writer is not probed: its COPY trips the
// unique index and the batch runs again the careful way. (A batch whose ids are all above the
// known id needs neither: none of them is probed whether the known id is stored or not.)
constexpr char kKnownLargestEventId[] = R"sql(
SELECT EXISTS (SELECT 1 FROM ecomstream.events e WHERE e.event_id = $1::uuid))sql";

// $1: text[] of event ids. Locks the stored ones (in id order, so concurrent writers cannot
// deadlock on them): they stay until COMMIT, so the UPDATE below finds every one. A join with
// the unnested ids is one primary key lookup per id (a nested loop: the session turns hash and
// merge joins off). `event_id = ANY($1)` was planned per element (a few ms for a batch's
// thousands of ids) and, estimated at thousands of rows, as a sequential scan of events once
// it held ~100k rows: every batch with a stored id read the whole table.
constexpr char kProbeEvents[] = R"sql(
SELECT e.event_id::text
FROM unnest($1::uuid[]) AS p(event_id) JOIN ecomstream.events e ON e.event_id = p.event_id
ORDER BY e.event_id
FOR NO KEY UPDATE OF e)sql";

// The stored ids in a batch's id range, at most $3, unlocked: one range scan of the primary key
// instead of a lookup per id. A batch's ids span a short stretch of time (UUIDv7), so the range
// usually holds only the batch's own stored ids; kProbeEvents then looks up and locks just those.
// (A range crowded with other ids, such as random ones from another source, hits the limit: the
// probe then looks up every id.)
constexpr char kStoredInRange[] = R"sql(
SELECT e.event_id::text
FROM ecomstream.events e
WHERE e.event_id BETWEEN $1::uuid AND $2::uuid
ORDER BY e.event_id
LIMIT $3)sql";

// Below this many ids to probe, the lookup per id is cheaper than another round trip.
constexpr size_t kRangeScanMinIds = 64;

// Applies the staged versions of stored events whose content differs; counts the rows changed.
constexpr char kUpdateStaged[] = R"sql(
WITH staged AS (DELETE FROM pg_temp.ecomstream_staging RETURNING *)
UPDATE ecomstream.events AS e SET
  user_id = s.user_id, session_id = s.session_id, event_type = s.event_type, product_id = s.product_id,
  category = s.category, price = s.price, quantity = s.quantity, total_amount = s.total_amount,
  event_time = s.event_time, user_segment = s.user_segment, device_type = s.device_type, browser = s.browser,
  geo_country = s.geo_country, geo_city = s.geo_city, referrer = s.referrer, campaign_id = s.campaign_id,
  schema_version = s.schema_version, late_arrival = s.late_arrival, source_id = s.source_id,
  ingested_at = now()
FROM staged AS s
WHERE e.event_id = s.event_id
  AND (e.user_id, e.session_id, e.event_type, e.product_id, e.category, e.price, e.quantity, e.total_amount,
       e.event_time, e.user_segment, e.device_type, e.browser, e.geo_country, e.geo_city, e.referrer,
       e.campaign_id)
      IS DISTINCT FROM
      (s.user_id, s.session_id, s.event_type, s.product_id, s.category, s.price, s.quantity, s.total_amount,
       s.event_time, s.user_segment, s.device_type, s.browser, s.geo_country, s.geo_city, s.referrer,
       s.campaign_id))sql";

// One statement: record the batch in the ledger, advance the file (committing it with its last
// batch), record the batch's event_sources row ($31; 0 = no event stored with it) and add the
// inserted events to event_stats_hourly ($19-$24) and segment_users ($25-$30, event_stats.h).
// Returns the ledger's commit time.
constexpr char kFinishBatchSql[] = R"sql(
WITH batch AS (
  INSERT INTO ecomstream.ingest_batches (
    file_id, first_row, last_row, file_name, last_batch, rows, inserted, updated, unchanged, duplicates,
    dead_lettered, reason_counts, claimant, file_drop_time, read_time, sent_time, received_at, committed_at,
    trace_id)
  VALUES ($1, $2::bigint, $3::bigint, $4, $5::boolean, $6::bigint, $7::bigint, $8::bigint, $9::bigint,
          $10::bigint, $11::bigint, $12::jsonb, $13, to_timestamp(nullif($14::bigint, 0) / 1e6),
          to_timestamp(nullif($15::bigint, 0) / 1e6), to_timestamp(nullif($16::bigint, 0) / 1e6),
          to_timestamp($17::bigint / 1e6), clock_timestamp(), nullif($18, ''))
  RETURNING committed_at
), file AS (
  UPDATE ecomstream.ingest_files SET
    committed_through = $3::bigint,
    batches = batches + 1,
    rows = rows + $6::bigint,
    inserted = inserted + $7::bigint,
    updated = updated + $8::bigint,
    unchanged = unchanged + $9::bigint,
    duplicates = duplicates + $10::bigint,
    dead_lettered = dead_lettered + $11::bigint,
    lease_expires_at = clock_timestamp() + lease_ms * interval '1 millisecond',
    state = CASE WHEN $5::boolean THEN 'committed' ELSE state END,
    committed_at = CASE WHEN $5::boolean THEN clock_timestamp() ELSE committed_at END,
    total_rows = CASE WHEN $5::boolean THEN $3::bigint ELSE total_rows END,
    updated_at = now()
  WHERE file_id = $1
  RETURNING file_id
), source AS (
  INSERT INTO ecomstream.event_sources (source_id, source_file, trace_id)
  SELECT $31::bigint, $4, nullif($18, '') WHERE $31::bigint <> 0
)
SELECT (extract(epoch FROM b.committed_at) * 1000000)::bigint,
       CASE WHEN cardinality($22::bigint[]) > 0
            THEN ecomstream.add_event_stats($19::timestamptz[], $20::text[], $21::text[], $22::bigint[],
                                            $23::bigint[], $24::numeric[])
            ELSE 0 END,
       CASE WHEN cardinality($27::bigint[]) > 0
            THEN ecomstream.add_segment_users($25::text[], $26::bigint[], $27::bigint[], $28::bigint[],
                                              $29::numeric[], $30::bigint[])
            ELSE 0 END
FROM batch b, file f)sql";

constexpr char kFinishBatch[] = "ecomstream_sink_finish_batch";  // prepared kFinishBatchSql

// The aggregate functions of kFinishBatchSql called on nothing (EnsureSession).
constexpr char kRehearseAggregates[] = R"sql(
SELECT ecomstream.add_event_stats('{}', '{}', '{}', '{}', '{}', '{}'),
       ecomstream.add_segment_users('{}', '{}', '{}', '{}', '{}', '{}'))sql";

// A block of event_sources keys (SourceIds).
constexpr char kTakeSourceIds[] = R"sql(
SELECT nextval(pg_get_serial_sequence('ecomstream.event_sources', 'source_id')) FROM generate_series(1, 64))sql";

const std::string& CopyEventsSql() {
  static const std::string* sql =
      new std::string(absl::StrCat("COPY ecomstream.events (", kEventColumns, ") FROM STDIN (FORMAT binary)"));
  return *sql;
}

const std::string& CopyStagingSql() {
  static const std::string* sql =
      new std::string(absl::StrCat("COPY pg_temp.ecomstream_staging (", kEventColumns, ") FROM STDIN (FORMAT binary)"));
  return *sql;
}

const std::string& CopyDeadLettersSql() {
  static const std::string* sql = new std::string(
      absl::StrCat("COPY ecomstream.dead_letter_events (", kDeadLetterColumns, ") FROM STDIN (FORMAT binary)"));
  return *sql;
}

// Unique violation: a concurrent writer inserted one of the ids the probe found new.
constexpr char kUniqueViolation[] = "23505";
constexpr int kMaxProbeRounds = 5;

// The server's message for a rejected row, one line, without libpq's "ERROR:  " prefix.
std::string DatabaseMessage(const std::exception& e) {
  absl::string_view message = absl::StripAsciiWhitespace(e.what());
  absl::ConsumePrefix(&message, "ERROR:");
  return absl::StrReplaceAll(absl::StripLeadingAsciiWhitespace(message), {{"\n", "; "}});
}

// The event ids (uuid text in the first column) of `result`, as 16-byte strings.
absl::flat_hash_set<std::string> EventIds(const pqxx::result& result) {
  absl::flat_hash_set<std::string> ids;
  for (const pqxx::row& row : result) {
    Uuid id;
    if (ParseUuid(row[0].c_str(), &id)) ids.insert(std::string(UuidBytes(id)));
  }
  return ids;
}

// The fast way's transaction (PgSink::Begin): its BEGIN goes out with its first statement, in one
// simple query, instead of a round trip of its own as libpqxx's transactions send it. Statements
// sent with exec() carry it on their own; call BeginNow() before the first one with parameters
// (exec_params, exec_prepared: the extended protocol takes one statement). Commit and rollback
// are libpqxx's (a COMMIT whose outcome is unknown throws pqxx::in_doubt_error): it derives from
// pqxx::work's own base class (libpqxx 6.4), overriding only how the BEGIN is sent.
class FastWayTransaction : public pqxx::internal::basic_transaction {
 public:
  explicit FastWayTransaction(pqxx::connection_base& connection)
      : pqxx::internal::namedclass("FastWayTransaction"),
        basic_transaction(connection, pqxx::isolation_traits<pqxx::read_committed>::name(), pqxx::read_write) {
    Begin();
  }
  ~FastWayTransaction() noexcept override { End(); }

  void BeginNow() {
    if (!begin_sent_) exec("");
  }

 private:
  void do_begin() override {}
  pqxx::result do_exec(const char query[]) override {
    if (begin_sent_) return dbtransaction::do_exec(query);
    begin_sent_ = true;
    const std::string with_begin =
        query[0] == '\0' ? std::string(kBeginFastWay) : absl::StrCat(kBeginFastWay, "; ", query);
    return dbtransaction::do_exec(with_begin.c_str());
  }
  void do_abort() override {
    if (begin_sent_) dbtransaction::do_abort();  // else the server has nothing to roll back
  }

  bool begin_sent_ = false;
};

// Statements that read events are not prepared: each is planned when it runs, with the tables
// as they are then (a plan cached while events was empty would scan it sequentially for good).
// The two that do not, run by every batch, are: the fast way's file lock (a primary key lookup
// in ingest_files) and the finish statement (an insert into ingest_batches and event_sources, an
// update of ingest_files by its primary key, and the aggregate functions, whose own statements
// PL/pgSQL caches anyway); planning the finish statement took ~0.2 ms a batch.
//
// A session's first batch used to pay for the session's first use of everything it touches:
// the catalogs of the tables, indexes, constraints and triggers, the plans, and the compilation
// of the aggregate functions (17-50 ms in all, a writer's slowest batches when idle). A new
// session rehearses a batch here instead, in a transaction rolled back: an empty COPY into
// events, the largest stored id, the file lock and the finish statement for a file id no file
// has (kRehearsalFileId: nothing is locked, updated or aggregated, and the ledger row it adds
// goes with the rollback), and both aggregate functions called on empty arrays, which build
// their plans (sql/024). No sequence is used: event_sources keys are not taken.
void EnsureSession(PgConnection& connection) {
  if (connection.sink_ready) return;
  {
    pqxx::nontransaction setup(connection);
    setup.exec(kCreateStaging);
    setup.exec(kSessionSettings);
  }
  connection.prepare(kLockFileAfterInsert, kLockFileAfterInsertSql);
  connection.prepare(kFinishBatch, kFinishBatchSql);
  FastWayTransaction rehearsal(connection);
  const EncodedEvents no_events{std::vector<const v1::Event*>()};
  std::string payload;
  connection.CopyIn(rehearsal, CopyEventsSql(), no_events.Payload({}, 0, &payload));
  rehearsal.exec(kLargestEventId);
  rehearsal.exec_prepared(kLockFileAfterInsert, kRehearsalFileId);
  const std::string none = "{}";
  rehearsal.exec_prepared(kFinishBatch, kRehearsalFileId, 1, 1, "rehearsal", false, 1, 0, 0, 0, 1, 0, none,
                          "rehearsal", 0, 0, 0, 0, "", none, none, none, none, none, none, none, none, none, none,
                          none, none, 0);
  rehearsal.exec(kRehearseAggregates);
  rehearsal.abort();
  connection.sink_ready = true;
}

struct UpsertOutcome {
  std::vector<int> inserted_rows;  // indices into events, COPYed into events
  int64_t updated = 0;
  int64_t unchanged = 0;
  std::vector<std::pair<int, std::string>> rejected;  // index into events, with the server's message
};

// One batch's transaction. Throws libpqxx exceptions; returns the non-database errors.
class BatchTransaction {
 public:
  BatchTransaction(PgConnection* connection, const PreparedBatch& prepared, SourceIds* source_ids)
      : connection_(connection),
        prepared_(prepared),
        batch_(*prepared.batch),
        events_(prepared.events),
        source_ids_(source_ids) {}

  // The first part of the fast path (PgSink::Begin): probes every event id and COPYs the new
  // events, without the file lock and without a savepoint (any failure aborts the transaction,
  // and the batch runs again the careful way). False if `known_largest` is no longer stored.
  // Usually (every id above `known_largest`) nothing is probed: the COPY is the first statement.
  bool InsertNew(FastWayTransaction& txn, const std::string& known_largest) {
    fast_way_ = &txn;
    if (!events_.empty()) source_id_ = source_ids_->Next(txn);
    bool known_stored = true;
    if (!known_largest.empty()) {
      std::string text;
      AppendUuid(known_largest, &text);
      if (HasIdUpTo(known_largest)) {
        txn.BeginNow();
        known_stored = txn.exec_params1(kKnownLargestEventId, text)[0].as<bool>();
      }
      if (known_stored) largest_from_lock_ = std::move(text);
    }
    Split split = Probe(txn, AllRows());
    Insert(txn, std::move(split.fresh), &ahead_);
    known_ = std::move(split.known);
    inserted_ahead_ = true;
    return known_stored;
  }

  // The transaction, after InsertNew or from the start; commits it unless it returns an error
  // or a replay. After InsertNew only the stored ids are left, updated without a savepoint;
  // otherwise the events are upserted under savepoints, bisecting rows the database rejects.
  absl::StatusOr<v1::Ack> Run(pqxx::dbtransaction& txn, std::map<std::string, int64_t>* reasons) {
    if (fast_way_ != nullptr) fast_way_->BeginNow();
    const pqxx::result file = inserted_ahead_ ? txn.exec_prepared(kLockFileAfterInsert, batch_.file_id())
                                              : txn.exec_params(kLockFile, batch_.file_id());
    if (file.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("file ", batch_.file_id(), " (", batch_.file_name(), ") was never claimed: call ClaimFile"));
    }
    const std::string state = file[0][0].as<std::string>();
    const int64_t committed_through = file[0][3].as<int64_t>();
    // A batch in the ledger lies within the committed rows (batches commit in row order).
    if (batch_.first_row() <= committed_through) {
      const pqxx::result ledger = txn.exec_params(kFindBatch, batch_.file_id(), batch_.first_row());
      if (!ledger.empty()) return Replayed(ledger[0], state);
    }
    if (state == "committed") {
      return absl::FailedPreconditionError(absl::StrCat("file ", batch_.file_id(), " is already committed; rows ",
                                                        batch_.first_row(), "-", batch_.last_row(),
                                                        " are not a batch of its ledger"));
    }
    if (file[0][2].as<std::string>() != batch_.claim_token()) {
      return absl::AbortedError(absl::StrCat("lease lost: file ", batch_.file_id(), " is now held by claimant '",
                                             file[0][1].as<std::string>(), "'; claim it again"));
    }
    if (batch_.first_row() != committed_through + 1) {
      return absl::FailedPreconditionError(absl::StrCat("batch rows ", batch_.first_row(), "-", batch_.last_row(),
                                                        " of file ", batch_.file_id(), " do not follow its committed rows 1-",
                                                        committed_through, "; batches must come in row order"));
    }

    if (!inserted_ahead_) {
      largest_from_lock_ = file[0][4].is_null() ? "" : file[0][4].as<std::string>();
      if (!events_.empty()) source_id_ = source_ids_->Next(txn);
    }
    UpsertOutcome upsert;
    if (inserted_ahead_) {
      upsert = std::move(ahead_);
      Update(txn, known_, &upsert);
    } else if (!events_.empty()) {
      Upsert(txn, AllRows(), &upsert);
    }

    std::vector<std::string> rejected_raw;
    std::vector<DeadLetterRow> dead_letters = DeadLetters(upsert, &rejected_raw, reasons);
    if (!dead_letters.empty()) {
      DeadLetterMetadata metadata{batch_.file_id(), batch_.file_name(), batch_.file_drop_time_us(),
                                  prepared_.received_us, prepared_.trace_id};
      connection_->CopyIn(txn, CopyDeadLettersSql(), EncodeDeadLetters(dead_letters, metadata));
    }

    v1::Ack ack;
    ack.set_file_id(batch_.file_id());
    ack.set_first_row(batch_.first_row());
    ack.set_last_row(batch_.last_row());
    ack.set_inserted(static_cast<int64_t>(upsert.inserted_rows.size()));
    ack.set_updated(upsert.updated);
    ack.set_unchanged(upsert.unchanged);
    ack.set_dead_lettered(static_cast<int64_t>(dead_letters.size()));
    ack.set_duplicates(batch_.duplicate_rows() + prepared_.duplicate_ids);
    const int64_t rows = batch_.last_row() - batch_.first_row() + 1;
    const EventStatsArrays stats = InsertedEventStats(events_, upsert.inserted_rows);
    const SegmentUsersArrays users = InsertedSegmentUsers(events_, upsert.inserted_rows);
    const pqxx::row recorded = txn.exec_prepared1(
        kFinishBatch, batch_.file_id(), batch_.first_row(), batch_.last_row(), batch_.file_name(), batch_.last_batch(),
        rows, ack.inserted(), ack.updated(), ack.unchanged(), ack.duplicates(), ack.dead_lettered(),
        ReasonCountsJson(*reasons), file[0][1].as<std::string>(), batch_.file_drop_time_us(), batch_.read_time_us(),
        batch_.sent_time_us(), prepared_.received_us, prepared_.trace_id, stats.hours, stats.event_types,
        stats.categories, stats.events, stats.quantities, stats.revenues, users.segments, users.user_ids,
        users.events, users.purchases, users.revenues, users.priced,
        upsert.inserted_rows.empty() && upsert.updated == 0 ? 0 : source_id_);
    txn.commit();
    // The ledger's commit time (taken just before COMMIT), so a replay answers with the same.
    ack.set_commit_time_us(recorded[0].as<int64_t>());
    ack.set_file_committed(batch_.last_batch());
    return ack;
  }

 private:
  // The batch is in the ledger: answer as it was answered then.
  v1::Ack Replayed(const pqxx::row& ledger, const std::string& file_state) const {
    v1::Ack ack;
    ack.set_file_id(batch_.file_id());
    ack.set_first_row(batch_.first_row());
    ack.set_last_row(ledger[0].as<int64_t>());
    ack.set_inserted(ledger[1].as<int64_t>());
    ack.set_updated(ledger[2].as<int64_t>());
    ack.set_unchanged(ledger[3].as<int64_t>());
    ack.set_duplicates(ledger[4].as<int64_t>());
    ack.set_dead_lettered(ledger[5].as<int64_t>());
    ack.set_already_committed(true);
    ack.set_file_committed(ledger[6].as<bool>() && file_state == "committed");
    ack.set_commit_time_us(ledger[7].as<int64_t>());
    return ack;
  }

  // An id of the batch is `bound` (16 bytes) or below it: the fast way probes it.
  bool HasIdUpTo(const std::string& bound) const {
    for (const v1::Event* event : events_) {
      if (event->event_id() <= bound) return true;
    }
    return false;
  }

  // Upserts events_[rows], dead-lettering only the rows the database rejects (bisecting).
  void Upsert(pqxx::dbtransaction& txn, const std::vector<int>& rows, UpsertOutcome* outcome) {
    for (int round = 1;; ++round) {
      try {
        pqxx::subtransaction savepoint(txn, "upsert");
        const UpsertOutcome counts = UpsertOnce(savepoint, rows);
        savepoint.commit();
        outcome->inserted_rows.insert(outcome->inserted_rows.end(), counts.inserted_rows.begin(),
                                      counts.inserted_rows.end());
        outcome->updated += counts.updated;
        outcome->unchanged += counts.unchanged;
        return;
      } catch (const pqxx::sql_error& e) {
        const std::string state = SqlState(e);
        if (state == kUniqueViolation && round < kMaxProbeRounds) continue;  // probe again
        if (!IsDataError(state) || state == kUniqueViolation) throw;
        if (rows.size() == 1) {
          outcome->rejected.emplace_back(rows.front(), DatabaseMessage(e));
          return;
        }
        const auto middle = rows.begin() + static_cast<std::ptrdiff_t>(rows.size() / 2);
        Upsert(txn, std::vector<int>(rows.begin(), middle), outcome);
        Upsert(txn, std::vector<int>(middle, rows.end()), outcome);
        return;
      }
    }
  }

  std::vector<int> AllRows() const {
    std::vector<int> all(events_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    return all;
  }

  UpsertOutcome UpsertOnce(pqxx::transaction_base& txn, const std::vector<int>& rows) {
    Split split = Probe(txn, rows);
    UpsertOutcome counts;
    Insert(txn, std::move(split.fresh), &counts);
    Update(txn, split.known, &counts);
    return counts;
  }

  struct Split {
    std::vector<int> fresh;  // ids not stored
    std::vector<int> known;  // stored ids, now row-locked
  };

  Split Probe(pqxx::transaction_base& txn, const std::vector<int>& rows) {
    // Event ids are UUIDv7: they grow with time, so most new ids sort above every stored one and
    // cannot be stored. Only ids up to the largest stored id need the probe. (uuid order is byte
    // order. A concurrent insert of a "new" id still trips the unique index: probe again.)
    std::string largest_text;
    if (largest_from_lock_.has_value()) {  // the first probe uses kLockFile's or a known one
      largest_text = *std::move(largest_from_lock_);
      largest_from_lock_.reset();
    } else if (const pqxx::row top = txn.exec1(kLargestEventId); !top[0].is_null()) {
      largest_text = top[0].as<std::string>();
    }
    std::string largest;  // 16 bytes, "" when events is empty
    if (Uuid id; !largest_text.empty() && ParseUuid(largest_text.c_str(), &id)) largest = std::string(UuidBytes(id));
    std::vector<absl::string_view> candidates;  // the ids that may be stored
    if (!largest.empty()) {
      for (int row : rows) {
        const std::string& event_id = events_[row]->event_id();
        if (event_id <= largest) candidates.push_back(event_id);
      }
    }
    if (candidates.size() >= kRangeScanMinIds) NarrowToStoredInRange(txn, &candidates);
    std::string ids = "{";
    for (absl::string_view event_id : candidates) {
      if (ids.size() > 1) ids.push_back(',');
      AppendUuid(event_id, &ids);
    }
    ids.push_back('}');
    absl::flat_hash_set<std::string> stored;
    if (ids.size() > 2) {
      if (fast_way_ != nullptr) fast_way_->BeginNow();
      stored = EventIds(txn.exec_params(kProbeEvents, ids));
    }
    Split split;
    split.fresh.reserve(rows.size() - stored.size());
    for (int row : rows) (stored.contains(events_[row]->event_id()) ? split.known : split.fresh).push_back(row);
    return split;
  }

  // Keeps of `candidates` (16-byte ids) those stored at the start of a range scan over their id
  // range (kStoredInRange), unless the range holds more stored ids than there are candidates.
  // An id stored after the scan is not probed: its COPY trips the unique index (as above).
  void NarrowToStoredInRange(pqxx::transaction_base& txn, std::vector<absl::string_view>* candidates) {
    const auto [lowest, highest] = std::minmax_element(candidates->begin(), candidates->end());
    std::string low;
    std::string high;
    AppendUuid(*lowest, &low);
    AppendUuid(*highest, &high);
    const auto limit = static_cast<int64_t>(candidates->size());
    if (fast_way_ != nullptr) fast_way_->BeginNow();
    const pqxx::result in_range = txn.exec_params(kStoredInRange, low, high, limit);
    if (static_cast<int64_t>(in_range.size()) >= limit) return;  // crowded: probe every candidate
    const absl::flat_hash_set<std::string> stored = EventIds(in_range);
    candidates->erase(std::remove_if(candidates->begin(), candidates->end(),
                                     [&stored](absl::string_view id) { return !stored.contains(id); }),
                      candidates->end());
  }

  // COPYs the new events straight into events.
  void Insert(pqxx::transaction_base& txn, std::vector<int> fresh, UpsertOutcome* counts) {
    if (fresh.empty()) return;
    std::string subset;
    connection_->CopyIn(txn, CopyEventsSql(), prepared_.encoded.Payload(fresh, source_id_, &subset));
    counts->inserted_rows.insert(counts->inserted_rows.end(), fresh.begin(), fresh.end());
  }

  // Applies the stored events whose content differs, through the staging table.
  void Update(pqxx::transaction_base& txn, const std::vector<int>& known, UpsertOutcome* counts) {
    if (known.empty()) return;
    if (connection_->staged_rows > kTruncateStagingRows) {
      txn.exec(kTruncateStaging);
      connection_->staged_rows = 0;
    }
    std::string subset;
    connection_->CopyIn(txn, CopyStagingSql(), prepared_.encoded.Payload(known, source_id_, &subset));
    connection_->staged_rows += static_cast<int64_t>(known.size());
    const auto updated = static_cast<int64_t>(txn.exec(kUpdateStaged).affected_rows());
    counts->updated += updated;
    counts->unchanged += static_cast<int64_t>(known.size()) - updated;
  }

  // The processor's dead letters plus the rows the database rejected, and their reason counts.
  std::vector<DeadLetterRow> DeadLetters(const UpsertOutcome& upsert, std::vector<std::string>* rejected_raw,
                                         std::map<std::string, int64_t>* reasons) const {
    std::vector<DeadLetterRow> rows;
    rows.reserve(static_cast<size_t>(batch_.dead_letters_size()) + upsert.rejected.size());
    for (const v1::DeadLetter& dead_letter : batch_.dead_letters()) {
      DeadLetterRow row{dead_letter.row(), dead_letter.line(), dead_letter.raw(), {}, dead_letter.detail(),
                        dead_letter.column()};
      for (int reason : dead_letter.reasons()) {
        row.reasons.push_back(domain::RejectReasonName(static_cast<v1::RejectReason>(reason)));
        ++(*reasons)[row.reasons.back()];
      }
      rows.push_back(std::move(row));
    }
    const std::string rejected_reason = domain::RejectReasonName(v1::REJECT_REASON_DATABASE_REJECTED);
    rejected_raw->reserve(upsert.rejected.size());
    for (const auto& [index, message] : upsert.rejected) {
      const v1::Event& event = *events_[index];
      rejected_raw->push_back(FormatEventCsv(event));
      rows.push_back(DeadLetterRow{event.source_row(), 0, rejected_raw->back(), {rejected_reason}, message, ""});
      ++(*reasons)[rejected_reason];
    }
    return rows;
  }

  PgConnection* connection_;
  const PreparedBatch& prepared_;
  const v1::Batch& batch_;
  const std::vector<const v1::Event*>& events_;
  SourceIds* source_ids_;
  FastWayTransaction* fast_way_ = nullptr;        // InsertNew's transaction, null on the careful way
  int64_t source_id_ = 0;                         // this transaction's event_sources key
  std::optional<std::string> largest_from_lock_;  // the largest stored event id as text, "" = none
  bool inserted_ahead_ = false;                   // InsertNew ran: ahead_ and known_ are set
  UpsertOutcome ahead_;
  std::vector<int> known_;
};

}  // namespace

int64_t SourceIds::Next(pqxx::transaction_base& txn) {
  {
    absl::MutexLock lock(&mu_);
    if (!free_.empty()) {
      const int64_t id = free_.back();
      free_.pop_back();
      return id;
    }
  }
  // Taken outside the lock (another stream may take a block meanwhile: both are used up).
  const pqxx::result block = txn.exec(kTakeSourceIds);
  absl::MutexLock lock(&mu_);
  // Handed out from the back: smallest first.
  for (pqxx::result::size_type i = block.size(); i-- > 0;) free_.push_back(block[i][0].as<int64_t>());
  const int64_t id = free_.back();
  free_.pop_back();
  return id;
}

PgSink::PgSink(PgPool* pool, WriterMetrics* metrics, const tracing::Tracer* tracer, PgSinkOptions options)
    : pool_(pool), metrics_(metrics), tracer_(tracer), options_(options) {}

absl::Status PgSink::WarmUp(int sessions) {
  std::vector<PgPool::Lease> leases;  // held, so that each round sets up another session
  leases.reserve(static_cast<size_t>(std::max(sessions, 0)));
  for (int i = 0; i < sessions; ++i) {
    absl::StatusOr<PgPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.status();
    try {
      EnsureSession(**lease);
    } catch (const std::exception& e) {
      if (!(*lease)->is_open()) lease->MarkBroken();
      return StatusFromPgException(e);
    }
    leases.push_back(*std::move(lease));
  }
  return absl::OkStatus();
}

void BatchDeleter::operator()(const v1::Batch* batch) const {
  if (google::protobuf::Arena* arena = batch->GetArena(); arena != nullptr) {
    delete arena;
  } else {
    delete batch;
  }
}

absl::StatusOr<std::unique_ptr<PreparedBatch>> PgSink::Prepare(v1::Batch batch) const {
  return Prepare(BatchPtr(new v1::Batch(std::move(batch))));
}

absl::StatusOr<std::unique_ptr<PreparedBatch>> PgSink::Prepare(BatchPtr batch) const {
  if (absl::Status status = ValidateBatch(*batch); !status.ok()) {
    metrics_->RecordBatchFailure(status.code());
    return status;
  }
  auto prepared = std::make_unique<PreparedBatch>();
  prepared->batch = std::move(batch);
  const v1::Batch& kept = *prepared->batch;
  // Tracing is best effort: a malformed traceparent just stores no trace id.
  const tracing::TraceContext trace = tracing::TraceContext::FromTraceparentOrInvalid(kept.traceparent());
  if (trace.IsValid()) prepared->trace_id = trace.trace_id().ToHex();
  prepared->received_us = NowMicros();
  // One pass: each id's latest row so far, the rows it replaced, the largest id (every id is 16
  // bytes, ValidateBatch says, so byte order is uuid order).
  absl::flat_hash_map<absl::string_view, int> last_row_of;
  last_row_of.reserve(static_cast<size_t>(kept.events_size()));
  std::vector<bool> replaced;  // sized at the first duplicate id
  absl::string_view largest;
  for (int i = 0; i < kept.events_size(); ++i) {
    const absl::string_view id = kept.events(i).event_id();
    if (largest.empty() || std::memcmp(id.data(), largest.data(), id.size()) > 0) largest = id;
    const auto [it, inserted] = last_row_of.try_emplace(id, i);
    if (inserted) continue;
    if (replaced.empty()) replaced.resize(static_cast<size_t>(kept.events_size()));
    replaced[static_cast<size_t>(it->second)] = true;
    it->second = i;
    ++prepared->duplicate_ids;
  }
  prepared->largest_event_id = std::string(largest);
  prepared->events.reserve(last_row_of.size());
  for (int i = 0; i < kept.events_size(); ++i) {
    if (replaced.empty() || !replaced[static_cast<size_t>(i)]) prepared->events.push_back(&kept.events(i));
  }
  prepared->encoded = EncodedEvents(prepared->events);
  return prepared;
}

absl::StatusOr<v1::Ack> PgSink::Write(const v1::Batch& batch) {
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedBatch> prepared, Prepare(batch));
  return Commit(*prepared, Begin(*prepared), [] {});
}

// The spans of one Commit (from `start`, when its transaction was begun earlier): batch.write
// continues the processor's batch.send span.
tracing::Span StartBatchWriteSpan(const tracing::Tracer& tracer, const v1::Batch& batch,
                                  std::optional<absl::Time> start = std::nullopt) {
  tracing::StartSpanOptions options;
  options.start_time = start;
  tracing::Span span = tracer.StartSpan("batch.write", tracing::SpanKind::kServer,
                                        tracing::TraceContext::FromTraceparentOrInvalid(batch.traceparent()), options);
  span.SetAttribute("file.name", batch.file_name());
  span.SetAttribute("batch.first_row", batch.first_row());
  span.SetAttribute("batch.last_row", batch.last_row());
  return span;
}

// db.commit: one per transaction.
tracing::Span StartDbCommitSpan(const tracing::Tracer& tracer, const tracing::Span& parent, int attempt,
                                std::optional<absl::Time> start = std::nullopt) {
  tracing::StartSpanOptions options;
  options.start_time = start;
  tracing::Span span = tracer.StartSpan("db.commit", tracing::SpanKind::kClient, parent.context(), options);
  span.SetAttribute("db.system", "postgresql");
  span.SetAttribute("attempt", attempt);
  return span;
}

// (Its spans start in Commit, dated back to `started_at`: a Begin that fails leaves no trace.)
class PgSink::Begun {
 public:
  Begun(PgPool::Lease lease, const PreparedBatch& prepared, SourceIds* source_ids)
      : lease(std::move(lease)), transaction(&*this->lease, prepared, source_ids) {}
  ~Begun() {
    txn.reset();  // rolls back unless committed
    if (!lease->is_open()) lease.MarkBroken();
  }

  PgPool::Lease lease;
  const int64_t started_us = MonotonicMicros();
  const absl::Time started_at = absl::Now();
  BatchTransaction transaction;
  std::unique_ptr<FastWayTransaction> txn;
};

void PgSink::BegunDeleter::operator()(Begun* begun) const { delete begun; }

PgSink::BegunPtr PgSink::Begin(const PreparedBatch& prepared) {
  std::optional<PgPool::Lease> lease = pool_->TryAcquire();
  if (!lease.has_value()) return nullptr;
  BegunPtr begun(new Begun(*std::move(lease), prepared, &source_ids_));
  try {
    EnsureSession(*begun->lease);
    begun->txn = std::make_unique<FastWayTransaction>(*begun->lease);
    const std::string known_largest = KnownLargestEventId();
    if (!begun->transaction.InsertNew(*begun->txn, known_largest)) ForgetLargestEventId(known_largest);
  } catch (const std::exception& e) {
    return nullptr;  // rolled back; whatever it was, Commit's whole transaction will tell
  }
  return begun;
}

absl::StatusOr<v1::Ack> PgSink::Commit(const PreparedBatch& prepared, BegunPtr begun,
                                       absl::FunctionRef<void()> before_rerun) {
  const v1::Batch& batch = *prepared.batch;
  tracing::Span span;
  std::optional<absl::StatusOr<v1::Ack>> finished;
  int next_attempt = 1;
  if (begun != nullptr) {
    span = StartBatchWriteSpan(*tracer_, batch, begun->started_at);
    tracing::Span commit = StartDbCommitSpan(*tracer_, span, 1, begun->started_at);
    std::map<std::string, int64_t> reasons;
    finished = Finish(*begun, &reasons);
    commit.SetStatus(finished.has_value() ? finished->status() : absl::AbortedError("runs again"));
    metrics_->RecordFastPath(finished.has_value());
    if (finished.has_value() && finished->ok()) RecordCommitted(prepared, **finished, reasons, begun->started_us);
    begun.reset();  // rolls back unless committed
    commit.End();
    next_attempt = 2;
  } else {
    span = StartBatchWriteSpan(*tracer_, batch);
  }
  if (!finished.has_value()) {
    before_rerun();
    finished = CommitWithRetries(prepared, span, next_attempt);
  }
  absl::StatusOr<v1::Ack>& ack = *finished;
  span.SetStatus(ack.status());
  if (ack.ok()) {
    span.SetAttribute("rows.inserted", ack->inserted());
    span.SetAttribute("rows.updated", ack->updated());
    span.SetAttribute("rows.dead_lettered", ack->dead_lettered());
    span.SetAttribute("batch.already_committed", ack->already_committed());
  } else {
    metrics_->RecordBatchFailure(ack.status().code());
  }
  return std::move(ack);
}

std::optional<absl::StatusOr<v1::Ack>> PgSink::Finish(Begun& begun, std::map<std::string, int64_t>* reasons) {
  try {
    return begun.transaction.Run(*begun.txn, reasons);
  } catch (const std::exception& e) {
    const absl::Status status = StatusFromPgException(e);
    // A row the database rejects or a concurrent insert (bisected or probed again under
    // savepoints), a deadlock or a lost session: the careful transaction sorts it out.
    if (IsDataError(SqlState(e)) || absl::IsUnavailable(status)) return std::nullopt;
    return status;
  }
}

std::string PgSink::KnownLargestEventId() const {
  absl::MutexLock lock(&largest_mu_);
  return largest_committed_;
}

void PgSink::ForgetLargestEventId(const std::string& gone) {
  absl::MutexLock lock(&largest_mu_);
  if (largest_committed_ == gone) largest_committed_.clear();
}

void PgSink::RecordCommitted(const PreparedBatch& prepared, const v1::Ack& ack,
                             const std::map<std::string, int64_t>& reasons, int64_t started_us) {
  if (!ack.already_committed() &&
      ack.inserted() + ack.updated() + ack.unchanged() == static_cast<int64_t>(prepared.events.size())) {
    // Every event of the batch is stored now (not so when the database rejected one).
    absl::MutexLock lock(&largest_mu_);
    if (prepared.largest_event_id > largest_committed_) largest_committed_ = prepared.largest_event_id;
  }
  metrics_->RecordBatch(ack, reasons, static_cast<double>(MonotonicMicros() - started_us) / 1e6,
                        prepared.batch->file_drop_time_us());
}

absl::StatusOr<v1::Ack> PgSink::CommitWithRetries(const PreparedBatch& prepared, const tracing::Span& parent,
                                                  int first_attempt) {
  absl::Status status;
  for (int attempt = first_attempt; attempt <= options_.max_attempts; ++attempt) {
    auto lease = pool_->Acquire();
    if (!lease.ok()) return lease.status();
    tracing::Span commit = StartDbCommitSpan(*tracer_, parent, attempt);
    std::map<std::string, int64_t> reasons;
    const int64_t started_us = MonotonicMicros();
    absl::StatusOr<v1::Ack> ack;
    try {
      EnsureSession(**lease);
      pqxx::work txn(**lease);
      ack = BatchTransaction(&**lease, prepared, &source_ids_).Run(txn, &reasons);
    } catch (const std::exception& e) {
      ack = StatusFromPgException(e);
    }
    commit.SetStatus(ack.status());
    if (ack.ok()) {
      RecordCommitted(prepared, *ack, reasons, started_us);
      return ack;
    }
    status = ack.status();
    if (!(*lease)->is_open()) lease->MarkBroken();
    // A deadlock, a serialization failure or a stale session: the transaction rolled back (or,
    // if COMMIT's outcome is unknown, the ledger will say so), so running it again is safe.
    if (status.code() != absl::StatusCode::kUnavailable) break;
  }
  return status;
}

}  // namespace ecomstream::writer

#include "services/writer/pg/testing/writer_testing.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/domain.h"
#include "common/sha256.h"
#include "common/uuid.h"
#include "services/writer/pg/migrator.h"

namespace ecomstream::writer::testing {

using ::ecomstream::testing::SharedPgCluster;

std::string CreateMigratedDatabase(absl::string_view prefix) {
  // Migrated once per cluster (per ctest run), then copied: a copy takes a fraction of the time
  // the migrations do.
  auto dsn = SharedPgCluster().CreateDatabaseFromTemplate(prefix, "ecomstream_migrated", [](const std::string& dsn) {
    auto migrations = EmbeddedMigrations();
    if (!migrations.ok()) return migrations.status();
    auto report = Migrator(dsn, *std::move(migrations)).Apply();
    return report.ok() ? absl::OkStatus() : report.status();
  });
  EXPECT_TRUE(dsn.ok()) << dsn.status();
  return dsn.ok() ? *dsn : "";
}

std::string DatabaseName(const std::string& dsn) {
  const size_t at = dsn.find("dbname=");
  if (at == std::string::npos) return "";
  const size_t end = dsn.find(' ', at);
  return dsn.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7);
}

std::string LoginDsn(const std::string& owner_dsn, absl::string_view group_role) {
  const std::string role = absl::StrCat(DatabaseName(owner_dsn), "_", absl::StripPrefix(group_role, "ecomstream_"));
  Sql(owner_dsn, absl::StrCat("CREATE ROLE \"", role, "\" LOGIN IN ROLE ", group_role));
  const std::string user = absl::StrCat("user=", SharedPgCluster().superuser());
  return absl::StrReplaceAll(owner_dsn, {{user, absl::StrCat("user=", role)}});
}

std::string Sql(const std::string& dsn, absl::string_view sql) {
  auto output = SharedPgCluster().Psql(DatabaseName(dsn), sql);
  EXPECT_TRUE(output.ok()) << output.status();
  return output.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*output)) : "";
}

absl::StatusOr<std::string> SqlAs(const std::string& dsn, absl::string_view sql) {
  absl::StatusOr<std::string> output = ::ecomstream::testing::RunSql(dsn, sql);
  if (!output.ok()) return output.status();
  return std::string(absl::StripTrailingAsciiWhitespace(*output));
}

int LatestSchemaVersion() {
  auto migrations = EmbeddedMigrations();
  return migrations.ok() && !migrations->empty() ? migrations->back().version : 0;
}

std::string FileIdFor(absl::string_view seed) { return absl::StrCat("sha256:", Sha256Hex(seed)); }

v1::Event MakeEvent(uint64_t n) {
  constexpr int64_t k2026 = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
  v1::Event event;
  event.set_event_id(std::string(UuidBytes(UuidV7(k2026 / 1000 + static_cast<int64_t>(n), n * 7919, n * 104729))));
  event.set_user_id(static_cast<int64_t>(1 + n % 500));
  event.set_session_id(std::string(UuidBytes(UuidV4(n + 1, n + 2))));
  event.set_event_type(v1::EVENT_TYPE_PURCHASE);
  event.set_product_id(static_cast<int64_t>(100000 + n % 800));
  event.set_category("electronics");
  event.set_price_cents(static_cast<int64_t>(1999 + n % 1000));
  event.set_quantity(static_cast<int32_t>(1 + n % 3));
  event.set_total_amount_cents(event.price_cents() * event.quantity());
  event.set_event_time_us(k2026 + static_cast<int64_t>(n) * 60'000'000);
  event.set_user_segment(v1::USER_SEGMENT_RETURNING);
  event.set_device_type("mobile");
  event.set_browser("chrome");
  event.set_geo_country("DE");
  event.set_geo_city("Berlin");
  event.set_referrer("google");
  event.set_campaign_id("spring-sale");
  event.set_schema_version(3);
  return event;
}

v1::ClaimFileRequest MakeClaimRequest(absl::string_view name, absl::string_view claimant, int64_t lease_ms) {
  v1::ClaimFileRequest request;
  request.set_file_id(FileIdFor(name));
  request.set_file_name(std::string(name));
  request.set_claimant(std::string(claimant));
  request.set_lease_ms(lease_ms);
  return request;
}

v1::DeadLetter MakeDeadLetter(absl::string_view raw, std::vector<v1::RejectReason> reasons, int64_t line) {
  v1::DeadLetter dead_letter;
  dead_letter.set_raw(std::string(raw));
  for (v1::RejectReason reason : reasons) dead_letter.add_reasons(reason);
  dead_letter.set_line(line);
  dead_letter.set_detail("price: '-5' is negative");
  dead_letter.set_column("price");
  return dead_letter;
}

v1::Batch MakeBatch(const TestFile& file, int64_t first_row, std::vector<v1::Event> events,
                    std::vector<v1::DeadLetter> dead_letters, int64_t duplicate_rows, bool last_batch) {
  v1::Batch batch;
  batch.set_file_id(file.file_id);
  batch.set_file_name(file.name);
  batch.set_claim_token(file.claim_token);
  batch.set_first_row(first_row);
  int64_t row = first_row;
  for (v1::Event& event : events) {
    event.set_source_row(row++);
    *batch.add_events() = std::move(event);
  }
  std::map<int, int64_t> reasons;
  for (v1::DeadLetter& dead_letter : dead_letters) {
    dead_letter.set_row(row++);
    for (int reason : dead_letter.reasons()) ++reasons[reason];
    *batch.add_dead_letters() = std::move(dead_letter);
  }
  for (const auto& [reason, count] : reasons) {
    v1::ReasonCount* reason_count = batch.add_reason_counts();
    reason_count->set_reason(static_cast<v1::RejectReason>(reason));
    reason_count->set_count(count);
  }
  batch.set_duplicate_rows(duplicate_rows);
  row += duplicate_rows;
  batch.set_last_row(row - 1);
  batch.set_last_batch(last_batch);
  if (last_batch) batch.set_total_file_rows(row - 1);
  batch.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  batch.set_file_drop_time_us(1'767'225'600'000'000);
  batch.set_sent_time_us(1'767'225'601'000'000);
  return batch;
}

void WriterDbTest::SetUp() {
  const std::string name(::testing::UnitTest::GetInstance()->current_test_info()->name());
  owner_dsn_ = CreateMigratedDatabase(absl::AsciiStrToLower(name.substr(0, 30)));
  ASSERT_FALSE(owner_dsn_.empty());
  writer_dsn_ = LoginDsn(owner_dsn_, "ecomstream_writer");
  metrics_ = std::make_unique<WriterMetrics>(&registry_);
  PgPoolOptions options;
  options.dsn = writer_dsn_;
  options.max_connections = 8;
  options.required_schema_version = LatestSchemaVersion();
  options.check_interval = absl::Milliseconds(200);
  options.max_backoff = absl::Milliseconds(500);
  pool_ = std::make_unique<PgPool>(options);
  ASSERT_TRUE(pool_->Start().ok()) << pool_->last_error();
  sink_ = std::make_unique<PgSink>(pool_.get(), metrics_.get(), tracer_.get());
  ledger_ = std::make_unique<FileLedger>(pool_.get(), metrics_.get());
}

void WriterDbTest::TearDown() {
  ledger_.reset();
  sink_.reset();
  pool_.reset();
}

TestFile WriterDbTest::Claim(absl::string_view name, absl::string_view claimant, int64_t lease_ms) {
  v1::ClaimFileRequest request = MakeClaimRequest(name, claimant, lease_ms);
  request.set_size_bytes(1234);
  request.set_schema_version(3);
  auto response = ledger_->Claim(request);
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return {};
  EXPECT_EQ(response->outcome(), v1::ClaimFileResponse::OUTCOME_CLAIMED) << response->DebugString();
  return TestFile{request.file_id(), request.file_name(), response->claim_token()};
}

std::string WriterDbTest::StatsDrift() {
  return Sql(R"sql(
WITH fresh AS (
  SELECT date_trunc('hour', event_time, 'UTC') AS hour, event_type, category, count(*)::bigint AS events,
         coalesce(sum(quantity), 0)::bigint AS quantity,
         coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0)::numeric(18,2) AS revenue
  FROM ecomstream.events GROUP BY 1, 2, 3),
kept AS (SELECT hour, event_type, category, events, quantity, revenue FROM ecomstream.event_stats_hourly),
fresh_users AS (
  SELECT coalesce(user_segment, 'unknown') AS user_segment, user_id, count(*) AS events,
         count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
         coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0)::numeric(18,2) AS revenue,
         count(total_amount) FILTER (WHERE event_type = 'purchase') AS priced_purchases
  FROM ecomstream.events GROUP BY 1, 2),
fresh_totals AS (
  SELECT user_segment, count(*) AS users, count(*) FILTER (WHERE purchases > 0) AS buyers, sum(events)::bigint AS events,
         sum(purchases)::bigint AS purchases, sum(revenue)::numeric(18,2) AS revenue,
         sum(priced_purchases)::bigint AS priced_purchases
  FROM fresh_users GROUP BY 1),
kept_totals AS (SELECT * FROM ecomstream.segment_totals WHERE users > 0 OR events <> 0)
SELECT 'missing ' || f::text FROM (SELECT * FROM fresh EXCEPT SELECT * FROM kept) f
UNION ALL
SELECT 'extra ' || k::text FROM (SELECT * FROM kept EXCEPT SELECT * FROM fresh) k
UNION ALL
SELECT 'missing user ' || f::text FROM (SELECT * FROM fresh_users EXCEPT SELECT * FROM ecomstream.segment_users) f
UNION ALL
SELECT 'extra user ' || k::text FROM (SELECT * FROM ecomstream.segment_users EXCEPT SELECT * FROM fresh_users) k
UNION ALL
SELECT 'missing segment ' || f::text FROM (SELECT * FROM fresh_totals EXCEPT SELECT * FROM kept_totals) f
UNION ALL
SELECT 'extra segment ' || k::text FROM (SELECT * FROM kept_totals EXCEPT SELECT * FROM fresh_totals) k)sql");
}

}  // namespace ecomstream::writer::testing

// Writer throughput against the baselines, in one run on one throwaway PostgreSQL cluster
// (tests/pg_fixture: initdb + pg_ctl, fsync off for every contender alike):
//
//   writer insert-mostly  N rows over one gRPC stream (window of W batches of B rows), of which
//                         a fraction F updates events loaded before the run, the rest are new
//   writer update-only    the same N rows again with changed content: every row an UPDATE
//   psql \copy            the same N rows as CSV into bench.events_copy (LIKE ecomstream.events
//                         INCLUDING ALL: same columns, constraints and indexes; no trigger)
//   pgloader              the same CSV into another identical table, pgloader's defaults
//
// The writer does more than the baselines for every row: dedupe, the existence probe, the
// content comparison of updates, exact hourly aggregates, the batch and file ledgers, one
// transaction per batch and the ack. Each contender runs --repetitions times on emptied tables;
// the median is reported.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/csv.h"
#include "common/domain.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/sha256.h"
#include "common/time_util.h"
#include "common/uuid.h"
#include "ecomstream/v1/ingest.grpc.pb.h"
#include "services/writer/pg/copy_encoder.h"
#include "services/writer/pg/migrator.h"
#include "services/writer/writer_server.h"
#include "tests/pg_fixture.h"

ABSL_FLAG(int64_t, rows, 200'000, "Rows per contender run.");
ABSL_FLAG(int64_t, batch_rows, 5000, "Rows per batch (the processor's default).");
ABSL_FLAG(int, window, 8, "Batches in flight on the stream (the processor's default).");
ABSL_FLAG(double, update_fraction, 0.05, "Share of insert-mostly rows that update an existing event.");
ABSL_FLAG(int, repetitions, 3, "Runs per contender; the median is reported.");
ABSL_FLAG(bool, pgloader, true, "Also run pgloader (if installed).");

namespace ecomstream::writer {
namespace {

using ::ecomstream::testing::PgCluster;
using ::ecomstream::testing::RunCommand;

struct Run {
  double seconds = 0;
  std::vector<double> batch_ms;  // send -> ack of each batch
};

struct Contender {
  std::string name;
  int64_t rows = 0;
  std::vector<Run> runs;
  std::string note;
  double MedianSeconds() const {
    std::vector<double> s;
    for (const Run& run : runs) s.push_back(run.seconds);
    std::sort(s.begin(), s.end());
    return s.empty() ? 0 : s[s.size() / 2];
  }
  std::string RunSeconds() const {
    std::string out;
    for (const Run& run : runs) absl::StrAppend(&out, out.empty() ? "" : " ", absl::StrFormat("%.2f", run.seconds));
    return out;
  }
  double RowsPerSecond() const { return MedianSeconds() > 0 ? static_cast<double>(rows) / MedianSeconds() : 0; }
  double Percentile(double p) const {
    std::vector<double> all;
    for (const Run& run : runs) all.insert(all.end(), run.batch_ms.begin(), run.batch_ms.end());
    if (all.empty()) return 0;
    std::sort(all.begin(), all.end());
    return all[std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())))];
  }
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "writer_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const absl::Status& status, absl::string_view what) {
  if (!status.ok()) Die(absl::StrCat(what, ": ", status.ToString()));
}

// A plausible event stream: time-ordered v7 ids, a spread of types, categories and users.
std::vector<v1::Event> GenerateEvents(int64_t count, uint64_t seed, int64_t start_us) {
  static constexpr const char* kCategories[] = {"electronics", "books", "clothing", "toys", "grocery", "sports"};
  static constexpr v1::EventType kTypes[] = {v1::EVENT_TYPE_VIEW, v1::EVENT_TYPE_VIEW, v1::EVENT_TYPE_SEARCH,
                                             v1::EVENT_TYPE_ADD_TO_CART, v1::EVENT_TYPE_PURCHASE};
  std::mt19937_64 rng(seed);
  std::vector<v1::Event> events(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    v1::Event& e = events[static_cast<size_t>(i)];
    const int64_t time_us = start_us + i * 10'000;
    e.set_event_id(std::string(UuidBytes(UuidV7(time_us / 1000, rng(), rng()))));
    e.set_user_id(static_cast<int64_t>(1 + rng() % 100'000));
    e.set_session_id(std::string(UuidBytes(UuidV4(rng(), rng()))));
    e.set_event_type(kTypes[rng() % std::size(kTypes)]);
    if (e.event_type() != v1::EVENT_TYPE_SEARCH) {
      e.set_product_id(static_cast<int64_t>(100'000 + rng() % 50'000));
      e.set_category(kCategories[rng() % std::size(kCategories)]);
      e.set_price_cents(static_cast<int64_t>(99 + rng() % 50'000));
      e.set_quantity(static_cast<int32_t>(1 + rng() % 4));
      e.set_total_amount_cents(e.price_cents() * e.quantity());
    }
    e.set_event_time_us(time_us);
    e.set_user_segment(static_cast<v1::UserSegment>(1 + rng() % 5));
    e.set_device_type(rng() % 2 ? "mobile" : "desktop");
    e.set_browser(rng() % 2 ? "chrome" : "safari");
    e.set_geo_country(rng() % 2 ? "DE" : "US");
    e.set_geo_city(rng() % 2 ? "Berlin" : "New York");
    e.set_referrer("google");
    e.set_campaign_id(absl::StrCat("campaign-", rng() % 20));
    e.set_schema_version(3);
    e.set_source_row(i + 1);
  }
  return events;
}

// Changes content the writer compares, so a re-sent event is an UPDATE.
void Mutate(v1::Event* event) {
  event->set_geo_city(absl::StrCat(event->geo_city(), " (moved)"));
  event->set_quantity(event->quantity() + 1);
  if (event->has_price_cents()) event->set_total_amount_cents(event->price_cents() * event->quantity());
}

// The rows as CSV in kEventColumns order (the columns \copy and pgloader load).
void WriteCsv(const std::vector<v1::Event>& events, const std::string& path) {
  std::string out;
  out.reserve(events.size() * 300);
  for (const v1::Event& e : events) {
    std::string id;
    AppendUuid(e.event_id(), &id);
    std::string session;
    AppendUuid(e.session_id(), &session);
    const auto cents = [](int64_t v) { return absl::StrFormat("%d.%02d", v / 100, v % 100); };
    const std::string fields[] = {
        id, absl::StrCat(e.user_id()), session, std::string(domain::EventTypeName(e.event_type())),
        e.has_product_id() ? absl::StrCat(e.product_id()) : "", e.category(),
        e.has_price_cents() ? cents(e.price_cents()) : "", e.has_quantity() ? absl::StrCat(e.quantity()) : "",
        e.has_total_amount_cents() ? cents(e.total_amount_cents()) : "", FormatTimestampMicros(e.event_time_us()),
        std::string(domain::UserSegmentName(e.user_segment())), e.device_type(), e.browser(), e.geo_country(),
        e.geo_city(), e.referrer(), e.campaign_id(), absl::StrCat(e.schema_version()), e.late_arrival() ? "t" : "f",
        "bench.csv", ""};
    for (size_t i = 0; i < std::size(fields); ++i) {
      if (i > 0) out.push_back(',');
      AppendCsvField(fields[i], &out);
    }
    out.push_back('\n');
  }
  std::ofstream(path, std::ios::binary) << out;
}

class StreamClient {
 public:
  explicit StreamClient(const std::string& address)
      : channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        stub_(v1::Ingest::NewStub(channel_)) {}

  // Claims `name` and streams `events` in batches with `window` in flight; times first send to
  // last ack. Batches are serialized before the clock starts, as \\copy's CSV is written before
  // its clock starts: the processor's encoding is not the writer's work.
  Run Send(const std::string& name, const std::vector<v1::Event>& events, int64_t batch_rows, int window) {
    v1::ClaimFileRequest request;
    request.set_file_id(absl::StrCat("sha256:", Sha256Hex(name)));
    request.set_file_name(name);
    request.set_claimant("writer-bench");
    v1::ClaimFileResponse claim;
    grpc::ClientContext claim_context;
    if (grpc::Status s = stub_->ClaimFile(&claim_context, request, &claim); !s.ok()) Die(s.error_message());
    std::vector<v1::Batch> batches;
    for (int64_t first = 0; first < static_cast<int64_t>(events.size()); first += batch_rows) {
      v1::Batch& batch = batches.emplace_back();
      batch.set_file_id(request.file_id());
      batch.set_file_name(name);
      batch.set_claim_token(claim.claim_token());
      const int64_t last = std::min<int64_t>(first + batch_rows, static_cast<int64_t>(events.size()));
      batch.set_first_row(first + 1);
      batch.set_last_row(last);
      for (int64_t i = first; i < last; ++i) {
        v1::Event* event = batch.add_events();
        *event = events[static_cast<size_t>(i)];
        event->set_source_row(i + 1);
      }
      batch.set_last_batch(last == static_cast<int64_t>(events.size()));
      batch.set_file_drop_time_us(NowMicros());
    }
    std::vector<grpc::ByteBuffer> wire(batches.size());
    for (size_t i = 0; i < batches.size(); ++i) {
      bool own = false;
      if (!grpc::GenericSerialize<grpc::ProtoBufferWriter, v1::Batch>(batches[i], &wire[i], &own).ok()) {
        Die("cannot serialize a batch");
      }
    }
    Run run;
    std::vector<int64_t> sent_us(batches.size());
    absl::Mutex mu;
    size_t acked = 0;
    grpc::ClientContext context;
    // The generated stub's own bidi stream, over pre-serialized messages.
    const grpc::internal::RpcMethod method("/ecomstream.v1.Ingest/Write", grpc::internal::RpcMethod::BIDI_STREAMING,
                                           channel_);
    std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, v1::Ack>> stream(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, v1::Ack>::Create(channel_.get(), method,
                                                                                      &context));
    const int64_t start = MonotonicMicros();
    std::thread reader([&] {
      v1::Ack ack;
      while (stream->Read(&ack)) {
        absl::MutexLock lock(&mu);
        run.batch_ms.push_back(static_cast<double>(MonotonicMicros() - sent_us[acked]) / 1000.0);
        ++acked;
      }
    });
    for (size_t i = 0; i < batches.size(); ++i) {
      {
        absl::MutexLock lock(&mu);
        auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return i - acked < static_cast<size_t>(window); };
        mu.Await(absl::Condition(&room));
        sent_us[i] = MonotonicMicros();
      }
      if (!stream->Write(wire[i])) break;
    }
    stream->WritesDone();
    reader.join();
    run.seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
    if (grpc::Status s = stream->Finish(); !s.ok() || acked != batches.size()) {
      Die(absl::StrCat("stream of ", name, " failed after ", acked, " acks: ", s.error_message()));
    }
    return run;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
};

Run TimeCommand(const std::vector<std::string>& argv) {
  std::string output;
  const int64_t start = MonotonicMicros();
  const int rc = RunCommand(argv, &output);
  Run run{static_cast<double>(MonotonicMicros() - start) / 1e6, {}};
  if (rc != 0) Die(absl::StrCat(argv[0], " failed (", rc, "): ", output.substr(0, 2000)));
  return run;
}

int Main() {
  const int64_t rows = absl::GetFlag(FLAGS_rows);
  const int64_t batch_rows = absl::GetFlag(FLAGS_batch_rows);
  const int window = absl::GetFlag(FLAGS_window);
  const int repetitions = absl::GetFlag(FLAGS_repetitions);
  const double update_fraction = absl::GetFlag(FLAGS_update_fraction);
  if (rows < 1 || batch_rows < 1 || window < 1 || repetitions < 1 || !(update_fraction >= 0 && update_fraction <= 1)) {
    Die("--rows, --batch_rows, --window and --repetitions must be at least 1, --update_fraction within [0, 1]");
  }
  const int64_t updates = static_cast<int64_t>(static_cast<double>(rows) * update_fraction);
  SetMinLogLevel(LogLevel::kWarning);

  std::fprintf(stderr, "Starting a throwaway PostgreSQL cluster...\n");
  auto cluster_or = PgCluster::Start();
  Check(cluster_or.status(), "PostgreSQL");
  std::unique_ptr<PgCluster> cluster = std::move(cluster_or).value();
  auto dsn = cluster->CreateDatabase("writer_bench");
  Check(dsn.status(), "create database");
  auto migrations = EmbeddedMigrations();
  Check(migrations.status(), "migrations");
  Check(Migrator(*dsn, *migrations).Apply().status(), "migrate");
  const std::string db = dsn->substr(dsn->find("dbname=") + 7);
  const auto psql = [&](const std::string& sql) { Check(cluster->Psql(db, sql).status(), sql); };
  psql("CREATE SCHEMA bench;"
       "CREATE TABLE bench.events_copy (LIKE ecomstream.events INCLUDING ALL);"
       "CREATE TABLE bench.events_pgloader (LIKE ecomstream.events INCLUDING ALL);"
       "CREATE ROLE bench_writer LOGIN IN ROLE ecomstream_writer;"
       // Background vacuum/analyze landing in one contender's run and not another's is noise.
       "ALTER TABLE ecomstream.events SET (autovacuum_enabled = false);"
       "ALTER TABLE bench.events_copy SET (autovacuum_enabled = false);"
       "ALTER TABLE bench.events_pgloader SET (autovacuum_enabled = false);");

  // Data: `updates` events loaded before each insert-mostly run, and `rows` to send: the
  // preloaded ones changed, spread evenly, and new ones.
  const int64_t start_us = 1'767'225'600'000'000;
  const std::vector<v1::Event> preload = GenerateEvents(updates, 1, start_us - 86'400'000'000);
  std::vector<v1::Event> insert_mostly = GenerateEvents(rows - updates, 2, start_us);
  for (int64_t i = 0; i < updates; ++i) {
    v1::Event changed = preload[static_cast<size_t>(i)];
    Mutate(&changed);
    const size_t at = static_cast<size_t>((i * rows) / std::max<int64_t>(updates, 1));
    insert_mostly.insert(insert_mostly.begin() + static_cast<std::ptrdiff_t>(std::min(at, insert_mostly.size())),
                         changed);
  }
  std::vector<v1::Event> update_only = insert_mostly;
  for (v1::Event& event : update_only) Mutate(&event);
  const std::string csv = absl::StrCat(cluster->dir(), "/bench.csv");
  WriteCsv(insert_mostly, csv);
  RunCommand({"chmod", "644", csv});

  WriterConfig config;
  config.listen_address = "127.0.0.1:0";
  config.pg_dsn = absl::StrCat("host=127.0.0.1 port=", cluster->port(), " user=bench_writer dbname=", db);
  config.max_message_bytes = 16 << 20;
  metrics::Registry registry;
  std::unique_ptr<tracing::Tracer> tracer = tracing::Tracer::Disabled();
  WriterServer server(config, &registry, tracer.get());
  Check(server.Start(), "writer");
  StreamClient client(absl::StrCat("127.0.0.1:", server.port()));

  Contender copy{"psql \\copy", rows, {}, "same CSV, identical table and indexes"};
  Contender insert{"writer insert-mostly", rows, {}, absl::StrFormat("%.0f%% updates, batches of %d, window %d",
                                                                     100.0 * static_cast<double>(updates) / static_cast<double>(rows),
                                                                     batch_rows, window)};
  Contender update{"writer update-only", rows, {}, "every row changes an existing event"};
  Contender loader{"pgloader", rows, {}, "same CSV, identical table, pgloader defaults"};
  const bool with_pgloader = absl::GetFlag(FLAGS_pgloader) && RunCommand({"pgloader", "--version"}) == 0;
  const std::string columns = kEventColumns;
  const std::string load_file = absl::StrCat(cluster->dir(), "/bench.load");
  std::ofstream(load_file) << "LOAD CSV FROM '" << csv << "' (" << columns << ")\n"
                           << "  INTO postgresql://" << cluster->superuser() << "@127.0.0.1:" << cluster->port() << "/"
                           << db << "?bench.events_pgloader (" << columns << ")\n"
                           << "  WITH fields terminated by ',', fields optionally enclosed by '\"';\n";

  for (int r = 0; r < repetitions; ++r) {
    std::fprintf(stderr, "Repetition %d/%d...\n", r + 1, repetitions);
    psql("TRUNCATE ecomstream.events, ecomstream.event_stats_hourly, ecomstream.dead_letter_events, "
         "ecomstream.ingest_batches, ecomstream.ingest_files, bench.events_copy, bench.events_pgloader;");
    // Every timed run starts right after a checkpoint, so none pays for another's dirty pages.
    psql("CHECKPOINT;");
    copy.runs.push_back(TimeCommand({"psql", "-X", "-q", "-d", cluster->Dsn(db), "-c",
                                     absl::StrCat("\\copy bench.events_copy (", columns, ") FROM '", csv,
                                                  "' WITH (FORMAT csv)")}));
    client.Send(absl::StrCat("preload-", r), preload, batch_rows, window);  // untimed
    psql("CHECKPOINT;");
    insert.runs.push_back(client.Send(absl::StrCat("insert-mostly-", r), insert_mostly, batch_rows, window));
    psql("CHECKPOINT;");
    update.runs.push_back(client.Send(absl::StrCat("update-only-", r), update_only, batch_rows, window));
    psql("CHECKPOINT;");
    if (with_pgloader) loader.runs.push_back(TimeCommand({"pgloader", "--no-ssl-cert-verification", load_file}));
  }
  // The writer's work must be real: every row there, every update applied.
  auto counts = cluster->Psql(db, "SELECT (SELECT count(*) FROM ecomstream.events), "
                                  "(SELECT sum(updated) FROM ecomstream.ingest_batches), "
                                  "(SELECT count(*) FROM bench.events_copy)");
  Check(counts.status(), "count the loaded rows");
  // The last repetition's tables: every row once; the insert-mostly updates plus every row again.
  const std::string expected = absl::StrCat(rows, "|", updates + rows, "|", rows);
  if (absl::StripTrailingAsciiWhitespace(*counts) != expected) {
    Die(absl::StrCat("events|updated rows in the ledger|\\copy rows are ", *counts, ", expected ", expected));
  }

  std::printf("\nwriter_bench: %lld rows per run, median of %d runs; throwaway PostgreSQL 15 cluster (fsync off, "
              "autovacuum off on the loaded tables, CHECKPOINT before each run)\n\n",
              static_cast<long long>(rows), repetitions);
  std::printf("%-22s %10s %10s %12s %9s %9s %9s %9s  %s\n", "contender", "rows", "seconds", "rows/s", "vs \\copy",
              "p50 ms", "p95 ms", "p99 ms", "note (seconds of each run)");
  const double copy_rate = copy.RowsPerSecond();
  for (const Contender* c : {&insert, &update, &copy, &loader}) {
    if (c->runs.empty()) {
      std::printf("%-22s %10s  (not run: pgloader not installed or --pgloader=false)\n", c->name.c_str(), "-");
      continue;
    }
    const bool batches = !c->runs.front().batch_ms.empty();
    std::printf("%-22s %10lld %10.2f %12.0f %9.2f %9s %9s %9s  %s\n", c->name.c_str(), static_cast<long long>(c->rows),
                c->MedianSeconds(), c->RowsPerSecond(), c->RowsPerSecond() / copy_rate,
                batches ? absl::StrFormat("%.1f", c->Percentile(0.50)).c_str() : "-",
                batches ? absl::StrFormat("%.1f", c->Percentile(0.95)).c_str() : "-",
                batches ? absl::StrFormat("%.1f", c->Percentile(0.99)).c_str() : "-",
                absl::StrCat(c->note, " (", c->RunSeconds(), ")").c_str());
  }
  // Load from other processes drifts: also compare within each repetition.
  std::vector<double> ratios;
  for (size_t r = 0; r < insert.runs.size(); ++r) ratios.push_back(copy.runs[r].seconds / insert.runs[r].seconds);
  std::string per_run;
  for (double ratio : ratios) absl::StrAppend(&per_run, absl::StrFormat(" %.2f", ratio));
  std::sort(ratios.begin(), ratios.end());
  std::printf("\ninsert-mostly / \\copy = %.2f (medians; target >= 0.90), per repetition:%s (median %.2f)\n",
              insert.RowsPerSecond() / copy_rate, per_run.c_str(), ratios[ratios.size() / 2]);
  std::printf("latencies are per batch, send -> ack, with %d batches in flight\n", window);
  server.Shutdown(absl::Seconds(5));
  return 0;
}

}  // namespace
}  // namespace ecomstream::writer

int main(int argc, char** argv) {
  ecomstream::ParseCommandLineWithEnv(argc, argv, "writer_bench: the writer against psql \\copy and pgloader");
  return ecomstream::writer::Main();
}

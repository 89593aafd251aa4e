// One trace per file, from the generator's file.write to the writer's db.commit, through the three
// real binaries exporting OTLP/gRPC to a test collector and a real PostgreSQL (docs/design.md,
// "Tracing"). Every span is checked against the file's manifest and the batch ledger.
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/trace_context.h"
#include "ecomstream/v1/ingest.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_util.h"
#include "tests/otel/test_collector.h"
#include "tests/trace_e2e/traced_pipeline.h"

namespace ecomstream::testing {
namespace {

using ::opentelemetry::proto::trace::v1::Span;
using ::testing::ElementsAre;
using ::testing::Pair;

// Each committed batch: its file, first row, trace id, and drop and commit times (microseconds).
constexpr char kLedgerSql[] = R"sql(
SELECT file_name, first_row, coalesce(trace_id, ''),
       (extract(epoch FROM file_drop_time) * 1000000)::bigint,
       (extract(epoch FROM committed_at) * 1000000)::bigint
FROM ecomstream.ingest_batches ORDER BY file_name, first_row)sql";

struct LedgerBatch {
  int64_t first_row = 0;
  std::string trace_id;
  int64_t drop_us = 0;
  int64_t committed_us = 0;
};

// Batches by file name.
std::map<std::string, std::vector<LedgerBatch>> ReadLedger(const Pipeline& p) {
  std::map<std::string, std::vector<LedgerBatch>> ledger;
  absl::StatusOr<std::string> rows = p.Query(kLedgerSql);
  EXPECT_TRUE(rows.ok()) << rows.status();
  if (!rows.ok()) return ledger;
  for (absl::string_view line : absl::StrSplit(*rows, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, '|');
    LedgerBatch b;
    if (f.size() != 5 || !absl::SimpleAtoi(f[1], &b.first_row) || !absl::SimpleAtoi(f[3], &b.drop_us) ||
        !absl::SimpleAtoi(f[4], &b.committed_us)) {
      ADD_FAILURE() << "ledger row: " << line;
      continue;
    }
    b.trace_id = f[2];
    ledger[f[0]].push_back(b);
  }
  return ledger;
}

int64_t Start(const CollectedSpan& s) { return static_cast<int64_t>(s.span.start_time_unix_nano()); }
int64_t End(const CollectedSpan& s) { return static_cast<int64_t>(s.span.end_time_unix_nano()); }
int64_t Duration(const CollectedSpan& s) { return End(s) - Start(s); }

std::vector<const CollectedSpan*> Named(const std::vector<CollectedSpan>& spans, absl::string_view name) {
  std::vector<const CollectedSpan*> out;
  for (const CollectedSpan& s : spans) {
    if (s.span.name() == name) out.push_back(&s);
  }
  return out;
}

// Which service sent it, what kind it is, and whose child it is.
void ExpectSpan(const CollectedSpan& s, absl::string_view service, Span::SpanKind kind, const std::string& parent) {
  SCOPED_TRACE(s.span.name());
  EXPECT_EQ(s.ResourceAttribute("service.name"), service);
  EXPECT_EQ(s.span.kind(), kind) << Span::SpanKind_Name(s.span.kind());
  EXPECT_EQ(s.parent_span_id_hex(), parent);
  EXPECT_LE(Start(s), End(s));
}

// `inner` lies within `outer` on the (shared) wall clock.
void ExpectWithin(const CollectedSpan& inner, const CollectedSpan& outer) {
  EXPECT_GE(Start(inner), Start(outer)) << inner.span.name() << " starts before its " << outer.span.name();
  EXPECT_LE(End(inner), End(outer)) << inner.span.name() << " ends after its " << outer.span.name();
}

v1::FileManifest ReadManifest(const std::string& path) {
  v1::FileManifest manifest;
  absl::StatusOr<std::string> json = ReadFileToString(path);
  EXPECT_TRUE(json.ok()) << json.status();
  if (json.ok()) {
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &manifest).ok()) << path;
  }
  return manifest;
}

// Runs the pipeline once with every service exporting to `collector`: the generator with
// `generator_flags` (a live clock: the ledger's drop times, the files' mtimes, share the spans'
// clock), the writer, `processor --once` in batches of 500 rows, then SIGTERM to the writer (which
// flushes its spans). Returns the batch ledger by file name.
std::map<std::string, std::vector<LedgerBatch>> RunPipeline(TracedPipeline& p,
                                                            const std::vector<std::string>& generator_flags) {
  absl::Status generated = p.Generate(generator_flags);
  EXPECT_TRUE(generated.ok()) << generated;
  absl::Status writer = p.StartWriter();
  EXPECT_TRUE(writer.ok()) << writer;
  if (!generated.ok() || !writer.ok()) return {};
  absl::StatusOr<int> code = p.RunProcessorOnce({"--batch_rows=500"});
  EXPECT_TRUE(code.ok() && *code == 0) << (code.ok() ? absl::StrCat("exit ", *code) : code.status().ToString());
  absl::StatusOr<int> writer_exit = p.writer()->Stop();
  EXPECT_TRUE(writer_exit.ok() && *writer_exit == 0) << "writer exit";
  return ReadLedger(p.pipeline());
}

// Below file.process: one batch.send (CLIENT, processor) per ledger batch, one batch.write
// (SERVER, writer) under each, one db.commit (CLIENT, writer, db.system=postgresql) under each
// batch.write. Each CLIENT span contains the server work it waits for (batch.send ends at the ack,
// which the writer sends after COMMIT; batch.write contains its transaction), and each batch's
// committed_at (clock_timestamp() inside its transaction, in microseconds) lies within its
// db.commit. Returns the db.commit of the batch the ledger committed last (null on a failure).
const CollectedSpan* ExpectBatchesUnder(const CollectedSpan& process, const std::vector<CollectedSpan>& spans,
                                        const std::vector<LedgerBatch>& batches) {
  std::map<std::string, const CollectedSpan*> sends, batch_writes;  // by span id
  for (const CollectedSpan* send : Named(spans, "batch.send")) {
    ExpectSpan(*send, "ecomstream-processor", Span::SPAN_KIND_CLIENT, process.span_id_hex());
    ExpectWithin(*send, process);
    sends[send->span_id_hex()] = send;
  }
  std::set<std::string> sends_written;
  std::map<int64_t, const CollectedSpan*> batch_write_by_first_row;
  for (const CollectedSpan* bw : Named(spans, "batch.write")) {
    if (sends.count(bw->parent_span_id_hex()) != 1) {
      ADD_FAILURE() << "batch.write's parent is not a batch.send of this file";
      return nullptr;
    }
    ExpectSpan(*bw, "ecomstream-writer", Span::SPAN_KIND_SERVER, bw->parent_span_id_hex());
    ExpectWithin(*bw, *sends.at(bw->parent_span_id_hex()));
    EXPECT_TRUE(sends_written.insert(bw->parent_span_id_hex()).second) << "one batch.write per batch.send";
    batch_writes[bw->span_id_hex()] = bw;
    const auto first_row = bw->Attribute("batch.first_row");
    EXPECT_TRUE(first_row.has_value()) << "batch.write without batch.first_row";
    if (first_row.has_value()) batch_write_by_first_row[first_row->int_value()] = bw;
  }
  std::map<std::string, const CollectedSpan*> commit_of;  // batch.write span id -> its db.commit
  for (const CollectedSpan* commit : Named(spans, "db.commit")) {
    if (batch_writes.count(commit->parent_span_id_hex()) != 1) {
      ADD_FAILURE() << "db.commit's parent is not a batch.write of this file";
      return nullptr;
    }
    ExpectSpan(*commit, "ecomstream-writer", Span::SPAN_KIND_CLIENT, commit->parent_span_id_hex());
    ExpectWithin(*commit, *batch_writes.at(commit->parent_span_id_hex()));
    const auto db_system = commit->Attribute("db.system");
    EXPECT_EQ(db_system.has_value() ? db_system->string_value() : "(none)", "postgresql");
    EXPECT_TRUE(commit_of.emplace(commit->parent_span_id_hex(), commit).second) << "one db.commit per batch";
  }

  const CollectedSpan* last_commit = nullptr;
  int64_t last_committed_us = 0;
  for (const LedgerBatch& b : batches) {
    const auto bw = batch_write_by_first_row.find(b.first_row);
    if (bw == batch_write_by_first_row.end() || commit_of.count(bw->second->span_id_hex()) == 0) {
      ADD_FAILURE() << "no batch.write with its db.commit for ledger batch " << b.first_row;
      return nullptr;
    }
    const CollectedSpan& commit = *commit_of.at(bw->second->span_id_hex());
    EXPECT_GE(b.committed_us * 1000, Start(commit) - 1000) << "batch " << b.first_row;
    EXPECT_LE(b.committed_us * 1000, End(commit)) << "batch " << b.first_row;
    if (last_commit == nullptr || b.committed_us > last_committed_us) {
      last_commit = &commit;
      last_committed_us = b.committed_us;
    }
  }
  return last_commit;
}

// Three files of 2000 rows in batches of 500: per file file.write -> file.process -> 4 x
// (batch.send -> batch.write -> db.commit), all under the trace id of the file's manifest.
TEST(TraceE2eTest, EachFileIsOneTraceFromFileWriteToDbCommitThatAgreesWithTheBatchLedger) {
  absl::StatusOr<std::unique_ptr<TestCollector>> collector = TestCollector::Start();
  ASSERT_TRUE(collector.ok()) << collector.status();
  TracedPipeline p("trace_e2e", TracedPipeline::ExportTo(**collector));
  const std::map<std::string, std::vector<LedgerBatch>> ledger = RunPipeline(
      p, {"--total_events=6000", "--events_per_file=2000", "--events_per_second=0", "--seed=11", "--anomaly_rate=0.05"});
  const std::vector<std::string> files = ListFiles(p.pipeline().archive(), ".csv");
  ASSERT_EQ(files.size(), 3u) << p.pipeline().Logs();
  size_t expected_spans = 0;
  for (const auto& [name, batches] : ledger) expected_spans += 3 + 3 * batches.size();
  ASSERT_EQ(expected_spans, 3u * (3 + 3 * 4)) << "2000 rows in batches of 500";
  // Every service has exited (or flushed at SIGTERM), so everything should be there already.
  EXPECT_TRUE((*collector)->WaitForSpans(expected_spans, absl::Seconds(5)))
      << (*collector)->span_count() << " of " << expected_spans << " spans";

  std::set<std::string> file_traces;
  for (const std::string& name : files) {
    SCOPED_TRACE(name);
    const v1::FileManifest manifest = ReadManifest(p.pipeline().archive() + "/" + name + ".manifest.json");
    absl::StatusOr<tracing::TraceContext> root = tracing::TraceContext::FromTraceparent(manifest.traceparent());
    ASSERT_TRUE(root.ok()) << "manifest traceparent '" << manifest.traceparent() << "': " << root.status();
    const std::string trace = root->trace_id().ToHex();
    file_traces.insert(trace);
    ASSERT_EQ(ledger.count(name), 1u);
    const std::vector<LedgerBatch>& batches = ledger.at(name);
    for (const LedgerBatch& b : batches) {
      EXPECT_EQ(b.trace_id, trace) << "batch " << b.first_row << ": the ledger leads to the file's trace";
      EXPECT_EQ(b.drop_us, batches[0].drop_us);
    }

    const std::vector<CollectedSpan> spans = (*collector)->SpansForTrace(trace);
    std::map<std::string, size_t> names;
    for (const CollectedSpan& s : spans) ++names[s.span.name()];
    const size_t n = batches.size();
    ASSERT_THAT(names, ElementsAre(Pair("batch.send", n), Pair("batch.write", n), Pair("db.commit", n),
                                   Pair("file.claim", 1u), Pair("file.process", 1u), Pair("file.write", 1u)));
    const CollectedSpan& write = *Named(spans, "file.write")[0];
    const CollectedSpan& process = *Named(spans, "file.process")[0];
    ExpectSpan(write, "ecomstream-generator", Span::SPAN_KIND_PRODUCER, "");
    EXPECT_EQ(write.span_id_hex(), root->span_id().ToHex()) << "the manifest names file.write itself";
    ASSERT_TRUE(write.Attribute("rows").has_value());
    EXPECT_EQ(write.Attribute("rows")->int_value(), manifest.rows());
    ExpectSpan(process, "ecomstream-processor", Span::SPAN_KIND_CONSUMER, write.span_id_hex());
    // The claim, answered by the writer under file.process (from the call's traceparent metadata).
    const CollectedSpan& claim = *Named(spans, "file.claim")[0];
    ExpectSpan(claim, "ecomstream-writer", Span::SPAN_KIND_SERVER, process.span_id_hex());
    ASSERT_TRUE(claim.Attribute("claim.outcome").has_value());
    EXPECT_EQ(claim.Attribute("claim.outcome")->string_value(), "OUTCOME_CLAIMED");
    EXPECT_GE(Start(claim), Start(process));
    // The first batch is read (batch.send starts at its cut) while the claim travels, but no batch
    // reaches the writer before the claim is answered.
    for (const CollectedSpan* batch_write : Named(spans, "batch.write")) EXPECT_LE(End(claim), Start(*batch_write));
    // file.write brackets the drop time (the CSV's mtime, set just before its rename) and, as a
    // PRODUCER, does not contain its consumer: this processor started after the generator exited.
    EXPECT_LE(Start(write), batches[0].drop_us * 1000);
    EXPECT_GE(End(write), batches[0].drop_us * 1000);
    EXPECT_GE(Start(process), End(write));
    const CollectedSpan* last_commit = ExpectBatchesUnder(process, spans, batches);
    ASSERT_NE(last_commit, nullptr);

    // Root to commit against the ledger's drop -> commit of the file's last batch. The spans'
    // interval contains the ledger's; the difference is the rows' generation before the drop
    // (inside file.write) plus COMMIT after committed_at (inside db.commit), so it is at most
    // those two spans' durations (plus 2 us of rounding to the ledger's microseconds).
    const LedgerBatch& last = *std::max_element(
        batches.begin(), batches.end(), [](const LedgerBatch& a, const LedgerBatch& b) { return a.committed_us < b.committed_us; });
    const int64_t root_to_commit_ns = End(*last_commit) - Start(write);
    const int64_t ledger_ns = (last.committed_us - last.drop_us) * 1000;
    EXPECT_GE(root_to_commit_ns, ledger_ns - 1000);
    EXPECT_LE(root_to_commit_ns - ledger_ns, Duration(write) + Duration(*last_commit) + 2000)
        << "file.write " << Duration(write) << " ns, db.commit " << Duration(*last_commit) << " ns";
    std::printf("%s: root->commit %.3f ms, ledger drop->commit %.3f ms, file.write %.3f ms, last db.commit %.3f ms\n",
                name.c_str(), root_to_commit_ns / 1e6, ledger_ns / 1e6, Duration(write) / 1e6,
                Duration(*last_commit) / 1e6);
  }

  // One trace per file, and nothing else: no span outside the files' traces.
  std::set<std::string> traces;
  for (const CollectedSpan& s : (*collector)->Spans()) traces.insert(s.trace_id_hex());
  EXPECT_EQ(file_traces.size(), 3u);
  EXPECT_EQ(traces, file_traces);
}

// Without a manifest the processor has no context to continue: file.process starts the file's
// trace, the batches hang below it as usual, and the ledger leads to that trace. The generator's
// file.write stays a trace of its own.
TEST(TraceE2eTest, AFileWithoutAManifestStartsItsTraceAtFileProcessAndTheLedgerLeadsThere) {
  absl::StatusOr<std::unique_ptr<TestCollector>> collector = TestCollector::Start();
  ASSERT_TRUE(collector.ok()) << collector.status();
  TracedPipeline p("trace_e2e_no_manifest", TracedPipeline::ExportTo(**collector));
  const std::map<std::string, std::vector<LedgerBatch>> ledger =
      RunPipeline(p, {"--total_events=1000", "--events_per_file=1000", "--manifests=false", "--seed=12"});
  ASSERT_EQ(ledger.size(), 1u) << p.pipeline().Logs();
  const auto& [name, batches] = *ledger.begin();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_TRUE((*collector)->WaitForSpans(1 + 1 + 1 + 3 * 2, absl::Seconds(5))) << (*collector)->span_count();
  const std::string trace = batches[0].trace_id;
  EXPECT_EQ(batches[1].trace_id, trace);

  const std::vector<CollectedSpan> spans = (*collector)->SpansForTrace(trace);
  std::map<std::string, size_t> names;
  for (const CollectedSpan& s : spans) ++names[s.span.name()];
  ASSERT_THAT(names, ElementsAre(Pair("batch.send", 2u), Pair("batch.write", 2u), Pair("db.commit", 2u),
                                 Pair("file.claim", 1u), Pair("file.process", 1u)));
  const CollectedSpan& process = *Named(spans, "file.process")[0];
  ExpectSpan(process, "ecomstream-processor", Span::SPAN_KIND_CONSUMER, "");
  ExpectSpan(*Named(spans, "file.claim")[0], "ecomstream-writer", Span::SPAN_KIND_SERVER, process.span_id_hex());
  EXPECT_NE(ExpectBatchesUnder(process, spans, batches), nullptr);

  const std::vector<CollectedSpan> all = (*collector)->Spans();
  const std::vector<const CollectedSpan*> writes = Named(all, "file.write");
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_NE(writes[0]->trace_id_hex(), trace);
  EXPECT_EQ(all.size(), spans.size() + 1) << "nothing but the two traces";
}

}  // namespace
}  // namespace ecomstream::testing

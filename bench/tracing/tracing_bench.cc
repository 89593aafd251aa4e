// What a span costs: StartSpan + 3 attributes + End, as the services will write it.
//
//   build/bin/tracing_bench --benchmark_min_time=1
//
// The collector runs in a child process (forked before gRPC starts) so that its decoding is not
// billed to us. BM_Span_Exported reports *process* CPU per span (the caller, the export thread
// turning spans into protobuf and gRPC sending them), flushing every 512 spans so that none is
// dropped; read its CPU column, not Time (which includes waiting for the collector). The other
// cases report the calling thread's CPU.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "common/otlp_exporter.h"
#include "common/tracer.h"
#include "tests/otel/test_collector.h"

namespace ecomstream::tracing {
namespace {

std::string collector_endpoint;  // answers at once
std::string stuck_endpoint;      // holds every Export for an hour

const TraceContext kParent(NewTraceId(), NewSpanId(), kTraceFlagSampled);

inline void OneSpan(const Tracer& tracer, int64_t i) {
  Span span = tracer.StartSpan("batch.send", SpanKind::kClient, kParent);
  span.SetAttribute("file.name", "events-000123.csv");
  span.SetAttribute("rows", i);
  span.SetAttribute("db.system", "postgresql");
  span.End();
}

std::unique_ptr<Tracer> ExportingTracer(const std::string& endpoint) {
  TracerOptions options;
  options.resource = {{"service.name", std::string("tracing-bench")}};
  OtlpExporterOptions exporter_options;
  exporter_options.endpoint = endpoint;
  auto exporter = OtlpExporter::Create(exporter_options, options.resource);
  if (!exporter.ok()) {
    std::fprintf(stderr, "%s\n", exporter.status().ToString().c_str());
    std::abort();
  }
  return std::make_unique<Tracer>(options, *std::move(exporter));
}

void ReportStats(benchmark::State& state, const Tracer& tracer) {
  const ExportStats stats = tracer.stats();
  state.counters["exported"] = static_cast<double>(stats.exported);
  state.counters["dropped"] = static_cast<double>(stats.dropped());
  state.SetItemsProcessed(state.iterations());
}

void BM_Span_SdkDisabled(benchmark::State& state) {
  std::unique_ptr<Tracer> tracer = Tracer::Disabled();
  int64_t i = 0;
  for (auto _ : state) OneSpan(*tracer, ++i);
  ReportStats(state, *tracer);
}
BENCHMARK(BM_Span_SdkDisabled);

void BM_Span_NotSampled(benchmark::State& state) {
  TracerOptions options;
  options.sampler = Sampler::AlwaysOff();
  auto tracer = std::make_unique<Tracer>(options, nullptr);
  int64_t i = 0;
  for (auto _ : state) OneSpan(*tracer, ++i);
  ReportStats(state, *tracer);
}
BENCHMARK(BM_Span_NotSampled);

void BM_Span_Exported(benchmark::State& state) {
  std::unique_ptr<Tracer> tracer = ExportingTracer(collector_endpoint);
  int64_t i = 0;
  for (auto _ : state) {
    OneSpan(*tracer, ++i);
    if (i % 512 == 0) (void)tracer->ForceFlush(absl::Seconds(30));
  }
  (void)tracer->ForceFlush(absl::Seconds(30));
  ReportStats(state, *tracer);
}
BENCHMARK(BM_Span_Exported)->MeasureProcessCPUTime();

// The collector accepts one batch and never answers: the queue fills and every later span is
// dropped. This is what the pipeline pays while the collector is stuck.
void BM_Span_CollectorStuck(benchmark::State& state) {
  std::unique_ptr<Tracer> tracer = ExportingTracer(stuck_endpoint);
  int64_t i = 0;
  for (auto _ : state) OneSpan(*tracer, ++i);
  ReportStats(state, *tracer);
  (void)tracer->Shutdown(absl::Milliseconds(100));
}
BENCHMARK(BM_Span_CollectorStuck);

void BM_Traceparent_FormatAndParse(benchmark::State& state) {
  const TraceContext context(NewTraceId(), NewSpanId(), kTraceFlagSampled);
  for (auto _ : state) {
    std::string text = context.ToTraceparent();
    benchmark::DoNotOptimize(TraceContext::FromTraceparent(text));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Traceparent_FormatAndParse);

// The child: two collectors, their ports on `ports_fd`, then wait for the parent to close `stop_fd`.
void RunCollectors(int ports_fd, int stop_fd) {
  auto ok = testing::TestCollector::Start();
  auto stuck = testing::TestCollector::Start();
  if (!ok.ok() || !stuck.ok()) _exit(1);
  (*ok)->SetKeepSpans(false);
  (*stuck)->SetKeepSpans(false);
  (*stuck)->SetExportDelay(absl::Hours(1));
  const int ports[2] = {(*ok)->port(), (*stuck)->port()};
  if (write(ports_fd, ports, sizeof(ports)) != sizeof(ports)) _exit(1);
  char byte;
  while (read(stop_fd, &byte, 1) > 0) {
  }
}

}  // namespace
}  // namespace ecomstream::tracing

int main(int argc, char** argv) {
  int ports_pipe[2];
  int stop_pipe[2];
  if (pipe(ports_pipe) != 0 || pipe(stop_pipe) != 0) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    close(ports_pipe[0]);
    close(stop_pipe[1]);
    ecomstream::tracing::RunCollectors(ports_pipe[1], stop_pipe[0]);
    _exit(0);
  }
  close(ports_pipe[1]);
  close(stop_pipe[0]);
  int ports[2];
  if (read(ports_pipe[0], ports, sizeof(ports)) != sizeof(ports)) {
    std::fprintf(stderr, "The collector process did not start\n");
    return 1;
  }
  ecomstream::tracing::collector_endpoint = absl::StrCat("http://127.0.0.1:", ports[0]);
  ecomstream::tracing::stuck_endpoint = absl::StrCat("http://127.0.0.1:", ports[1]);

  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  close(stop_pipe[1]);
  int status = 0;
  waitpid(child, &status, 0);
  return 0;
}

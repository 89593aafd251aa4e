#!/usr/bin/env bash
# CPU time per row that tracing and metrics add to the processor and the writer.
#
# The same generated files are loaded into a fresh database per run, the modes taking turns:
#   off      OTEL_SDK_DISABLED=true, no --metrics_address, nothing scraped
#   traces   OTLP export of every span to a local sink (bin/otlp_sink); no /metrics
#   metrics  OTEL_SDK_DISABLED=true; /metrics served by both services and scraped every
#            --scrape_interval seconds (Prometheus' default is 15 s; 1 s is the pessimistic case)
#   on       traces and metrics
# and each process' CPU time (user + system) is measured over the load: the processor's with
# /usr/bin/time (it runs --once), the writer's from /proc/PID/stat before and after. The metric
# updates themselves are compiled in and happen in every mode, so "off" still counts; the
# differences are tracing (spans, export, the span metrics) and serving and scraping /metrics.
#
#   bench/tracing/pipeline_overhead.sh                          # 500k rows, 3 runs per mode
#   bench/tracing/pipeline_overhead.sh --rows=200000 --runs=5 --scrape_interval=15 --modes=off,on
#
# Needs bin/ecomstream-{generator,processor,writer} and bin/otlp_sink in ECOMSTREAM_BUILD_DIR
# (default <repo>/build): ninja -C build ecomstream-generator ecomstream-processor ecomstream-writer otlp_sink
# Starts (and removes) its own PostgreSQL cluster with scripts/lib.sh's start_pg.
set -euo pipefail
# shellcheck source=../../scripts/lib.sh
source "$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib.sh"

rows=500000
runs=3
events_per_file=50000
batch_rows=5000
scrape_interval=1
modes=off,traces,metrics,on
for arg in "$@"; do
  case "$arg" in
    --rows=*) rows="${arg#*=}" ;;
    --runs=*) runs="${arg#*=}" ;;
    --events_per_file=*) events_per_file="${arg#*=}" ;;
    --batch_rows=*) batch_rows="${arg#*=}" ;;
    --scrape_interval=*) scrape_interval="${arg#*=}" ;;
    --modes=*) modes="${arg#*=}" ;;
    *) die "unknown argument '$arg' (see the header of $0)" ;;
  esac
done

bin="$ECOMSTREAM_BUILD_DIR/bin"
for b in ecomstream-generator ecomstream-processor ecomstream-writer otlp_sink; do
  [[ -x "$bin/$b" ]] || die "$bin/$b is missing: ninja -C $ECOMSTREAM_BUILD_DIR $b"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package: time)"

work="$(mktemp -d /tmp/ecomstream-overhead.XXXXXX)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_pg "$work" 2>/dev/null || true
  # As root the cluster lives outside $work (scripts/lib.sh pg_location).
  rm -rf "$(cat "$work/pg_location" 2>/dev/null)" "$work"
}
trap cleanup EXIT

# user + system CPU of a running process, in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the ')' that ends the command name).
cpu_ticks() {
  local stat
  stat="$(<"/proc/$1/stat")"
  stat="${stat##*) }"
  read -r -a fields <<<"$stat"
  echo $((fields[11] + fields[12]))
}
ticks_per_second="$(getconf CLK_TCK)"

start_pg "$work"
pg_port="$(<"$work/port")"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tA "$@"; }

log "Generating $rows rows ($events_per_file per file)"
OTEL_SDK_DISABLED=true "$bin/ecomstream-generator" --output_dir="$work/source" --total_events="$rows" \
  --events_per_file="$events_per_file" --seed=20240301 --start_time=2024-03-01T12:00:00Z --quiet

"$bin/otlp_sink" >"$work/sink.out" 2>"$work/sink.err" &
sink_pid=$!
pids+=("$sink_pid")
for _ in $(seq 100); do [[ -s "$work/sink.out" ]] && break; sleep 0.05; done
sink_endpoint="$(head -n 1 "$work/sink.out")"
[[ -n "$sink_endpoint" ]] || die "otlp_sink did not start: $(cat "$work/sink.err")"

# One load; appends "MODE PROCESSOR_CPU_S WRITER_CPU_S WALL_S" to $results.
load() {
  local mode="$1" run="$2" dir db writer_port processor_metrics="" writer_metrics="" writer_pid scraper_pid=""
  local -a env_vars processor_flags writer_flags
  dir="$work/$mode-$run"
  db="overhead_${mode}_$run"
  mkdir -p "$dir/inbox" "$dir/archive" "$dir/quarantine"
  cp "$work/source/"*.csv "$work/source/"*.manifest.json "$dir/inbox/"
  psql_admin -c "CREATE DATABASE $db" >/dev/null
  writer_port="$(free_port)"
  processor_flags=(--input_dir="$dir/inbox" --archive_dir="$dir/archive" --quarantine_dir="$dir/quarantine"
                   --writer_address="127.0.0.1:$writer_port" --batch_rows="$batch_rows" --once)
  writer_flags=(--listen_address="127.0.0.1:$writer_port" --migrate
                --pg_dsn="host=127.0.0.1 port=$pg_port user=postgres dbname=$db")
  case "$mode" in
    traces | on) env_vars=(OTEL_SDK_DISABLED=false OTEL_EXPORTER_OTLP_ENDPOINT="$sink_endpoint") ;;
    off | metrics) env_vars=(OTEL_SDK_DISABLED=true) ;;
    *) die "unknown mode '$mode' (off, traces, metrics, on)" ;;
  esac
  if [[ "$mode" == metrics || "$mode" == on ]]; then
    processor_metrics="127.0.0.1:$(free_port)"
    writer_metrics="127.0.0.1:$(free_port)"
    processor_flags+=(--metrics_address="$processor_metrics")
    writer_flags+=(--metrics_address="$writer_metrics")
  fi

  env "${env_vars[@]}" "$bin/ecomstream-writer" "${writer_flags[@]}" >"$dir/writer.log" 2>&1 &
  writer_pid=$!
  pids+=("$writer_pid")
  for _ in $(seq 300); do
    "$bin/ecomstream-writer" --health_check="127.0.0.1:$writer_port" >/dev/null 2>&1 && break
    kill -0 "$writer_pid" 2>/dev/null || die "writer exited: $(tail -n 5 "$dir/writer.log")"
    sleep 0.1
  done
  if [[ -n "$processor_metrics" ]]; then
    ( while true; do
        curl -fsS "http://$processor_metrics/metrics" >/dev/null 2>&1 || true
        curl -fsS "http://$writer_metrics/metrics" >/dev/null 2>&1 || true
        sleep "$scrape_interval"
      done ) &
    scraper_pid=$!
    pids+=("$scraper_pid")
  fi

  local writer_before writer_after started ended
  writer_before="$(cpu_ticks "$writer_pid")"
  started="$(date +%s.%N)"
  env "${env_vars[@]}" /usr/bin/time -f '%U %S' -o "$dir/processor.time" \
    "$bin/ecomstream-processor" "${processor_flags[@]}" >"$dir/processor.log" 2>&1 \
    || die "processor failed ($mode run $run): $(tail -n 5 "$dir/processor.log")"
  ended="$(date +%s.%N)"
  writer_after="$(cpu_ticks "$writer_pid")"
  if [[ -n "$scraper_pid" ]]; then kill "$scraper_pid"; wait "$scraper_pid" 2>/dev/null || true; fi
  kill -TERM "$writer_pid"
  wait "$writer_pid" || die "writer exited non-zero ($mode run $run): $(tail -n 5 "$dir/writer.log")"

  local loaded processor_cpu
  loaded="$(psql -X -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -tA \
    -c "SELECT coalesce(sum(rows), 0) FROM ecomstream.ingest_batches")"
  [[ "$loaded" == "$rows" ]] || die "$mode run $run: the batch ledger has $loaded rows, not $rows"
  processor_cpu="$(awk '{ print $1 + $2 }' "$dir/processor.time")"
  psql_admin -c "DROP DATABASE $db" >/dev/null
  rm -rf "$dir"
  awk -v mode="$mode" -v p="$processor_cpu" -v w="$((writer_after - writer_before))" -v hz="$ticks_per_second" \
      -v a="$started" -v b="$ended" 'BEGIN { printf "%s %.2f %.2f %.2f\n", mode, p, w / hz, b - a }' >>"$results"
  log "run $run: $(tail -n 1 "$results")   (mode, processor CPU s, writer CPU s, wall s)"
}

results="$work/results"
: >"$results"
IFS=, read -r -a mode_list <<<"$modes"
for run in $(seq "$runs"); do
  for mode in "${mode_list[@]}"; do
    load "$mode" "$run"
  done
done
kill -TERM "$sink_pid"
wait "$sink_pid" || true
spans="$(sed -n 2p "$work/sink.out")"

# Medians per mode (column 2 processor, 3 writer, 4 wall), and each mode's difference per row
# from "off".
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_median() { awk -v mode="$1" -v c="$2" '$1 == mode { print $c }' "$results" | median; }
echo
echo "pipeline_overhead: $rows rows, $runs runs per mode, batches of $batch_rows, /metrics scraped every ${scrape_interval}s when served"
echo "otlp_sink: $spans"
printf '%-8s %16s %16s %10s %34s\n' mode "processor CPU s" "writer CPU s" "wall s" "added CPU per row vs off (p + w)"
for mode in "${mode_list[@]}"; do
  p="$(column_median "$mode" 2)"
  w="$(column_median "$mode" 3)"
  t="$(column_median "$mode" 4)"
  added="-"
  if [[ "$mode" != off && " ${mode_list[*]} " == *" off "* ]]; then
    added="$(awk -v rows="$rows" -v p="$p" -v w="$w" -v p0="$(column_median off 2)" -v w0="$(column_median off 3)" \
      'BEGIN { printf "%.3f us + %.3f us = %.3f us", (p - p0) * 1e6 / rows, (w - w0) * 1e6 / rows, (p + w - p0 - w0) * 1e6 / rows }')"
  fi
  printf '%-8s %16s %16s %10s %34s\n' "$mode" "$p" "$w" "$t" "$added"
done
echo "every run (mode, processor CPU s, writer CPU s, wall s):"
cat "$results"

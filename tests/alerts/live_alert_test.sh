#!/usr/bin/env bash
# Runs a real Prometheus (Debian's `prometheus`) against the live writer, processor and generator
# and checks that EcomstreamDeadLetterRateHigh and EcomstreamRejectReasonHigh fire when 30% of
# rows are bad (all with a bad price), while EcomstreamDatabaseDown stays quiet. The database is a
# new one on the ctest run's cluster ($ECOMSTREAM_TEST_PG, the pg_cluster fixture), or on a
# cluster of its own when run by hand. Everything else (inbox, Prometheus data) lives in a temp
# directory of its own, removed at the end; ports are free ports.
# The rules are deploy/prometheus/rules/*.yml with their `for:` shortened to 1s (same
# expressions), scraped and evaluated every quarter second.
#   tests/alerts/live_alert_test.sh BIN_DIR
set -euo pipefail
bin="${1:?usage: live_alert_test.sh BIN_DIR}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
command -v prometheus >/dev/null || die "prometheus is not installed (scripts/lib.sh installs it)"

work="$(mktemp -d "${TMPDIR:-/tmp}/ecomstream-live-alerts.XXXXXX")"
pids=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_pg "$work" >/dev/null 2>&1 || true
  if [[ -f "$work/pg_location" ]]; then rm -rf "$(<"$work/pg_location")"; fi
  rm -rf "$work"
}
trap cleanup EXIT
export OTEL_SDK_DISABLED=true  # no collector here: no span is exported or dropped
mkdir -p "$work/inbox" "$work/archive" "$work/quarantine" "$work/rules" "$work/prometheus"

# Five distinct free ports in one python3 start (each takes tens of milliseconds).
read -r writer_port writer_metrics processor_metrics generator_metrics prometheus_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')

# Prometheus first: it starts up (a second or so) while the database is created and migrated.
for rules in "$root"/deploy/prometheus/rules/*.yml; do
  sed -E 's/^( *)for: .*/\1for: 1s/' "$rules" >"$work/rules/$(basename "$rules")"
done
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 250ms
  evaluation_interval: 250ms
rule_files: ["$work/rules/*.yml"]
scrape_configs:
  - job_name: ecomstream-writer
    static_configs: [{targets: ["127.0.0.1:$writer_metrics"]}]
  - job_name: ecomstream-processor
    static_configs: [{targets: ["127.0.0.1:$processor_metrics"]}]
  - job_name: ecomstream-generator
    static_configs: [{targets: ["127.0.0.1:$generator_metrics"]}]
YAML
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
  --web.listen-address="127.0.0.1:$prometheus_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

if [[ -n "${ECOMSTREAM_TEST_PG:-}" && -f "$ECOMSTREAM_TEST_PG" ]]; then
  pg_port="$(sed -n 's/^port=//p' "$ECOMSTREAM_TEST_PG")"
  pg_user="$(sed -n 's/^superuser=//p' "$ECOMSTREAM_TEST_PG")"
  db="live_alerts_$$_${RANDOM}"
  psql -X -q -v ON_ERROR_STOP=1 -d "host=127.0.0.1 port=$pg_port user=$pg_user dbname=postgres" \
    -c "CREATE DATABASE $db" || die "cannot create a database on the test cluster of $ECOMSTREAM_TEST_PG"
  dsn="host=127.0.0.1 port=$pg_port user=$pg_user dbname=$db"
else
  start_pg "$work" 2>/dev/null
  dsn="host=127.0.0.1 port=$(<"$work/port") user=postgres dbname=postgres"
fi
"$bin/ecomstream-writer" --pg_dsn="$dsn" --migrate_only >"$work/migrate.log" 2>&1 ||
  { cat "$work/migrate.log" >&2; die "migrations failed"; }

"$bin/ecomstream-writer" --listen_address="127.0.0.1:$writer_port" --pg_dsn="$dsn" \
  --metrics_address="127.0.0.1:$writer_metrics" >"$work/writer.log" 2>&1 &
pids+=($!)
"$bin/ecomstream-processor" --input_dir="$work/inbox" --archive_dir="$work/archive" \
  --quarantine_dir="$work/quarantine" --writer_address="127.0.0.1:$writer_port" \
  --metrics_address="127.0.0.1:$processor_metrics" >"$work/processor.log" 2>&1 &
pids+=($!)
# 30% of rows get a bad price: each is a dead letter with reason bad_price.
"$bin/ecomstream-generator" --output_dir="$work/inbox" --total_events=0 --events_per_second=2000 \
  --events_per_file=500 --anomaly_rate=0.3 --anomaly_kinds=bad_price --late_rate=0 --seed=7 --quiet \
  --metrics_address="127.0.0.1:$generator_metrics" >"$work/generator.log" 2>&1 &
pids+=($!)

# firing_alerts: the names of the alerts firing now, one per line (reason label after a space).
firing_alerts() {
  local answer
  answer="$(curl -fsS "http://127.0.0.1:$prometheus_port/api/v1/alerts" 2>/dev/null)" || return 0
  python3 -c '
import json, sys
for a in json.load(sys.stdin)["data"]["alerts"]:
    if a["state"] == "firing":
        print(a["labels"]["alertname"], a["labels"].get("reason", ""))' <<<"$answer"
}

deadline=$((SECONDS + 150))
alerts=""
while (( SECONDS < deadline )); do
  alerts="$(firing_alerts || true)"
  if grep -q '^EcomstreamDeadLetterRateHigh' <<<"$alerts" && grep -q '^EcomstreamRejectReasonHigh' <<<"$alerts"; then
    break
  fi
  sleep 0.1
done
for service in writer processor generator; do
  echo "--- $service log (last lines)"; tail -n 3 "$work/$service.log"
done
echo "--- firing alerts"; echo "$alerts"
rate="$(curl -fsS "http://127.0.0.1:$prometheus_port/api/v1/query" \
  --data-urlencode 'query=sum(rate(ecomstream_writer_rows_total{outcome="dead_lettered"}[5m])) / sum(rate(ecomstream_writer_rows_total[5m]))' |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")')"
echo "--- dead-letter share of rows in Prometheus: $rate"
status=0
grep -q '^EcomstreamDeadLetterRateHigh' <<<"$alerts" || { echo "FAIL: EcomstreamDeadLetterRateHigh did not fire"; status=1; }
grep -q '^EcomstreamRejectReasonHigh bad_price$' <<<"$alerts" ||
  { echo "FAIL: EcomstreamRejectReasonHigh did not fire for bad_price"; status=1; }
if grep -q '^EcomstreamDatabaseDown' <<<"$alerts"; then echo "FAIL: EcomstreamDatabaseDown fired"; status=1; fi
python3 -c "import sys; r=float(sys.argv[1]); sys.exit(0 if 0.2 < r < 0.4 else 1)" "$rate" ||
  { echo "FAIL: dead-letter share $rate is not about 0.3"; status=1; }
exit "$status"

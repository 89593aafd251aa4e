#include "services/generator/generator_flags.h"

#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, output_dir, "", "Inbox the CSV files and manifests are dropped into (temp files in its .tmp/).");
ABSL_FLAG(int64_t, total_events, 0, "Events to write in all; 0 = until SIGTERM or --duration.");
ABSL_FLAG(int64_t, events_per_file, 10000, "Rows per file (a file also closes after --file_interval).");
ABSL_FLAG(double, events_per_second, 0, "Target rate; 0 = as fast as possible.");
ABSL_FLAG(double, anomaly_rate, 0.02, "Share of rows given one anomaly of --anomaly_kinds (besides late_event).");
ABSL_FLAG(double, late_rate, 0.005, "Share of rows that arrive late: event_time 2-6 h before the file's creation.");
ABSL_FLAG(std::string, anomaly_kinds, "all", "Comma list of anomaly kinds or groups (all, noise, invalid, malformed).");
ABSL_FLAG(uint64_t, seed, 0, "Random seed; 0 = a random one (logged).");
ABSL_FLAG(std::string, schema_version, "v3", "v1, v2, v3 or mixed (a version per file).");
ABSL_FLAG(std::string, summary_file, "", "Write the run's ground truth here as JSON at the end.");
ABSL_FLAG(std::string, start_time, "", "RFC 3339 start of a simulated clock: same seed + start => same bytes.");
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(), "Stop after this long (generator clock); 0 = no limit.");
ABSL_FLAG(absl::Duration, file_interval, absl::Seconds(10), "Close a file once its first row is this old (<= 20m).");
ABSL_FLAG(bool, manifests, true, "Write NAME.csv.manifest.json before each CSV.");
ABSL_FLAG(bool, quiet, false, "No progress lines.");
ABSL_FLAG(std::string, metrics_address, "", "Serve /metrics, /healthz and /readyz on HOST:PORT; empty = off.");
ABSL_FLAG(std::string, health_check, "", "Probe http://ADDRESS/readyz of a running generator; exit 0 if ready.");

namespace ecomstream::generator {

const char kUsage[] =
    "Writes realistic e-commerce events as CSV files, atomically, with manifests and exact ground truth.\n"
    "  ecomstream-generator --output_dir=DIR [--total_events=N] [--events_per_second=R] ...";

GeneratorConfig ConfigFromFlags() {
  GeneratorConfig config;
  config.output_dir = absl::GetFlag(FLAGS_output_dir);
  config.total_events = absl::GetFlag(FLAGS_total_events);
  config.events_per_file = absl::GetFlag(FLAGS_events_per_file);
  config.events_per_second = absl::GetFlag(FLAGS_events_per_second);
  config.anomaly_rate = absl::GetFlag(FLAGS_anomaly_rate);
  config.late_rate = absl::GetFlag(FLAGS_late_rate);
  config.anomaly_kinds = absl::GetFlag(FLAGS_anomaly_kinds);
  config.seed = absl::GetFlag(FLAGS_seed);
  config.schema_version = absl::GetFlag(FLAGS_schema_version);
  config.summary_file = absl::GetFlag(FLAGS_summary_file);
  config.start_time = absl::GetFlag(FLAGS_start_time);
  config.duration = absl::GetFlag(FLAGS_duration);
  config.file_interval = absl::GetFlag(FLAGS_file_interval);
  config.manifests = absl::GetFlag(FLAGS_manifests);
  config.background_io = true;
  config.quiet = absl::GetFlag(FLAGS_quiet);
  return config;
}

std::string MetricsAddressFromFlags() { return absl::GetFlag(FLAGS_metrics_address); }

std::string HealthCheckAddressFromFlags() { return absl::GetFlag(FLAGS_health_check); }

}  // namespace ecomstream::generator

#include "services/processor/processor_flags.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/domain.h"
#include "common/log.h"
#include "common/status.h"
#include "common/uuid.h"
#include "services/processor/writer_client.h"

ABSL_FLAG(std::string, input_dir, "",
          "The inbox: where *.csv files (and their manifests) are dropped (created if missing).");
ABSL_FLAG(std::string, archive_dir, "", "Where committed files go (default: 'archive' beside --input_dir).");
ABSL_FLAG(std::string, quarantine_dir, "",
          "Where unloadable files go with a .reason file (default: 'quarantine' beside --input_dir).");
ABSL_FLAG(std::string, writer_address, "127.0.0.1:50051", "The writer's gRPC address (host:port).");
ABSL_FLAG(bool, once, false, "Process the files present at start, wait for their commits, exit (0 = all committed).");
ABSL_FLAG(bool, delete_after_commit, false, "Delete committed files instead of archiving them.");
ABSL_FLAG(absl::Duration, rescan_interval, absl::Seconds(2), "Rescan the inbox this often (inotify does the rest).");
ABSL_FLAG(int64_t, batch_rows, 5000, "Rows per batch at most.");
ABSL_FLAG(int64_t, batch_bytes, 1 << 20, "Estimated bytes per batch at most (gRPC's limit is 4 MiB).");
ABSL_FLAG(absl::Duration, linger, absl::Milliseconds(200), "Send a batch once its first row is this old.");
ABSL_FLAG(int, max_in_flight, 8, "Unacknowledged batches at most (the window; reading waits when it is full).");
ABSL_FLAG(int64_t, max_row_bytes, 65536, "Longer records are dead letters (row_too_large).");
ABSL_FLAG(absl::Duration, late_after, absl::Hours(1),
          "Events older than the file's time minus this are kept and flagged late_arrival.");
ABSL_FLAG(absl::Duration, max_future, absl::Hours(1),
          "Events newer than the file's time plus this are dead letters (future_timestamp).");
ABSL_FLAG(absl::Duration, claim_lease, absl::Seconds(30),
          "Lease asked for in ClaimFile; a dead processor's file is resumed by another after it.");
ABSL_FLAG(std::string, instance_id, "", "This processor's claimant id (default: host:pid:random).");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA to verify the writer (enables TLS).");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate for mTLS (with --tls_key).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, metrics_address, "", "host:port for HTTP /metrics, /healthz and /readyz; empty = off.");
ABSL_FLAG(std::string, health_check, "",
          "Probe a running processor's /readyz at this host:port and exit 0 only if it is ready.");
ABSL_FLAG(absl::Duration, rpc_timeout, absl::Seconds(10), "Deadline of each ClaimFile call.");
ABSL_FLAG(absl::Duration, ack_timeout, absl::Seconds(60), "Reconnect when a batch waits this long for its ack.");
ABSL_FLAG(absl::Duration, file_retry_interval, absl::Seconds(5),
          "After the writer refuses a file (or reading it fails) retry it after about this, doubling each time up to 10m (jittered: between half and all of it); "
          "with --once a file refused 3 times is given up (exit 1).");
ABSL_FLAG(absl::Duration, archive_retention, absl::Hours(7 * 24),
          "Delete archived files this long after they were archived (checked every tenth of it, 1m..1h); "
          "0 keeps them forever. Never touches the inbox or the quarantine.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30), "On SIGTERM, wait this long for in-flight acks.");

ABSL_FLAG(std::string, rules_file, "",
          "Business rules (protobuf JSON of ecomstream.v1.Rules, docs/rules.md): categories, countries, synonyms, "
          "windows. Empty: the built-in rules. SIGHUP reloads it (a bad file keeps the rules in force).");
ABSL_FLAG(bool, redrive, false,
          "Redrive: re-validate stored dead letters with the current rules, load what passes now, exit.");
ABSL_FLAG(std::string, redrive_reason, "",
          "With --redrive: only dead letters with one of these reasons (comma-separated, e.g. unknown_category).");
ABSL_FLAG(std::string, redrive_file, "", "With --redrive: only dead letters of this file (base name).");
ABSL_FLAG(std::string, redrive_from, "", "With --redrive: only dead letters stored at or after this RFC 3339 time.");
ABSL_FLAG(std::string, redrive_to, "", "With --redrive: only dead letters stored before this RFC 3339 time.");
ABSL_FLAG(int64_t, redrive_limit, 0, "With --redrive: examine at most this many dead letters (0 = all).");
ABSL_FLAG(int, redrive_page_size, 500, "With --redrive: dead letters per List call and per Redrive transaction (1..1000).");
ABSL_FLAG(bool, dry_run, false, "With --redrive: report what would load and what would still fail; change nothing.");

namespace ecomstream::processor {
namespace {

absl::Status TimeFlag(const char* flag, const std::string& text, int64_t* us) {
  if (text.empty()) return absl::OkStatus();
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error) || t < absl::UnixEpoch()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=\"", text.substr(0, 64),
                                                   "\" is not an RFC 3339 time after 1970 (2024-05-01T12:00:00Z)"));
  }
  *us = absl::ToUnixMicros(t);
  return absl::OkStatus();
}

// "inbox" -> "archive" beside it: /data/inbox -> /data/archive.
std::string Sibling(const std::string& dir, const char* name) {
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const size_t slash = base.find_last_of('/');
  if (slash == std::string::npos) return name;
  return absl::StrCat(base.substr(0, slash + 1), name);
}

std::string DefaultInstanceId() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "localhost", ":", ::getpid(), ":", FormatUuid(NewUuidV4()).substr(0, 8));
}

}  // namespace

const char kUsage[] =
    "ecomstream-processor: tails an inbox of CSV files, cleans and validates every row, and streams\n"
    "batches to ecomstream-writer; a file moves to the archive only after its last batch is committed.\n"
    "  ecomstream-processor --input_dir=inbox --writer_address=127.0.0.1:50051\n"
    "  ecomstream-processor --input_dir=inbox --once          load what is there, exit when committed\n"
    "  ecomstream-processor --health_check=127.0.0.1:9102     exit 0 if that processor is ready\n"
    "  ecomstream-processor --redrive --rules_file=rules.json --redrive_reason=unknown_category [--dry_run]\n"
    "                                   load the dead letters the rules now accept, exit\n"
    "Every flag also reads ECOMSTREAM_<FLAG>. Exit codes: 0 ok, 1 runtime failure (with --once: a file\n"
    "could not be committed), 2 bad configuration. SIGTERM stops intake and drains in-flight batches.";

ProcessorConfig ConfigFromFlags() {
  ProcessorConfig config;
  config.input_dir = absl::GetFlag(FLAGS_input_dir);
  config.archive_dir = absl::GetFlag(FLAGS_archive_dir);
  if (config.archive_dir.empty() && !config.input_dir.empty()) {
    config.archive_dir = Sibling(config.input_dir, "archive");
  }
  config.quarantine_dir = absl::GetFlag(FLAGS_quarantine_dir);
  if (config.quarantine_dir.empty() && !config.input_dir.empty()) {
    config.quarantine_dir = Sibling(config.input_dir, "quarantine");
  }
  config.delete_after_commit = absl::GetFlag(FLAGS_delete_after_commit);
  config.archive_retention = absl::GetFlag(FLAGS_archive_retention);
  config.once = absl::GetFlag(FLAGS_once);
  config.instance_id = absl::GetFlag(FLAGS_instance_id);
  if (config.instance_id.empty()) config.instance_id = DefaultInstanceId();
  config.rescan_interval = absl::GetFlag(FLAGS_rescan_interval);
  config.claim_lease = absl::GetFlag(FLAGS_claim_lease);
  config.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  config.failed_file_retry = absl::GetFlag(FLAGS_file_retry_interval);
  config.job.csv.max_row_bytes = static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_max_row_bytes)));
  config.job.batch.max_rows = absl::GetFlag(FLAGS_batch_rows);
  config.job.batch.max_bytes = static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_batch_bytes)));
  config.job.batch.linger = absl::GetFlag(FLAGS_linger);
  config.job.late_after_us = absl::ToInt64Microseconds(absl::GetFlag(FLAGS_late_after));
  config.job.max_future_us = absl::ToInt64Microseconds(absl::GetFlag(FLAGS_max_future));
  config.writer.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  config.writer.rpc_timeout = absl::GetFlag(FLAGS_rpc_timeout);
  config.writer.ack_timeout = absl::GetFlag(FLAGS_ack_timeout);
  config.writer_address = absl::GetFlag(FLAGS_writer_address);
  config.tls = TlsFiles{absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key)};
  config.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  return config;
}

std::string HealthCheckAddressFromFlags() { return absl::GetFlag(FLAGS_health_check); }

std::string RulesFileFromFlags() { return absl::GetFlag(FLAGS_rules_file); }

RulesWindows RulesWindowsFromFlags() {
  return RulesWindows{absl::ToInt64Microseconds(absl::GetFlag(FLAGS_late_after)),
                      absl::ToInt64Microseconds(absl::GetFlag(FLAGS_max_future))};
}

absl::StatusOr<std::shared_ptr<const Rules>> RulesFromFlags() {
  const std::string path = RulesFileFromFlags();
  if (path.empty()) return Rules::Builtin(RulesWindowsFromFlags());
  return Rules::LoadFile(path, RulesWindowsFromFlags());
}

std::shared_ptr<RulesStore> RulesStoreFromFlags(Service& service, std::shared_ptr<const Rules> rules) {
  const std::string path = RulesFileFromFlags();
  LOG_INFO("Rules in force") << Kv("version", rules->version()) << Kv("file", path.empty() ? "(built-in)" : path);
  auto store = std::make_shared<RulesStore>(std::move(rules), &service.registry());
  service.OnSignal(SIGHUP, [store] { ReloadRulesFromFlags(*store); });
  return store;
}

void ReloadRulesFromFlags(RulesStore& store) {
  const std::string path = RulesFileFromFlags();
  if (path.empty()) {
    LOG_INFO("SIGHUP ignored: no --rules_file to reload");
  } else if (absl::Status status = store.Reload(path, RulesWindowsFromFlags()); !status.ok()) {
    LOG_WARNING("Rules file not reloaded; the rules in force stay")
        << Kv("version", store.Get()->version()) << Kv("error", status.message());
  } else {
    LOG_INFO("Rules reloaded") << Kv("file", path) << Kv("version", store.Get()->version());
  }
}

bool RedriveFromFlags() { return absl::GetFlag(FLAGS_redrive); }

absl::StatusOr<RedriveOptions> RedriveOptionsFromFlags() {
  RedriveOptions options;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_redrive_reason), ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    bool found = false;
    for (int r = 1; r < kNumRejectReasons && !found; ++r) {
      if (v1::RejectReason_IsValid(r) && domain::RejectReasonName(static_cast<RejectReason>(r)) == name) {
        options.filter.add_reasons(static_cast<RejectReason>(r));
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat("--redrive_reason: \"", name.substr(0, 64),
                                                     "\" is not a reason code (docs/rows.md lists them)"));
    }
  }
  options.filter.set_file_name(absl::GetFlag(FLAGS_redrive_file));
  int64_t from_us = 0, to_us = 0;
  RETURN_IF_ERROR(TimeFlag("redrive_from", absl::GetFlag(FLAGS_redrive_from), &from_us));
  RETURN_IF_ERROR(TimeFlag("redrive_to", absl::GetFlag(FLAGS_redrive_to), &to_us));
  options.filter.set_from_us(from_us);
  options.filter.set_to_us(to_us);
  options.limit = absl::GetFlag(FLAGS_redrive_limit);
  options.dry_run = absl::GetFlag(FLAGS_dry_run);
  options.page_size = absl::GetFlag(FLAGS_redrive_page_size);
  options.max_row_bytes = static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_max_row_bytes)));
  options.rpc_timeout = std::max(absl::GetFlag(FLAGS_rpc_timeout), absl::Seconds(30));
  RETURN_IF_ERROR(ValidateRedriveOptions(options));
  return options;
}

int RunRedriveFromFlags(Service& service, const ProcessorConfig& config, std::shared_ptr<const Rules> rules) {
  absl::StatusOr<RedriveOptions> redrive_options = RedriveOptionsFromFlags();
  if (!redrive_options.ok()) return service.ConfigError(redrive_options.status());
  auto channel = MakeWriterChannel(config.writer_address, config.tls);
  if (!channel.ok()) return service.ConfigError(channel.status());
  const bool dry_run = redrive_options->dry_run;
  Redriver redriver(*channel, std::move(rules), *std::move(redrive_options));
  absl::StatusOr<RedriveReport> report = redriver.Run([&service] { return service.stopping(); });
  if (!report.ok()) return service.Failed("Redrive stopped; what it committed stays, run it again to continue", report.status());
  std::printf("%s\n", RedriveSummary(*report, dry_run).c_str());
  return kExitOk;
}

}  // namespace ecomstream::processor

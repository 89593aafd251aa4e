// config: what one processor is told (its inbox, archive, claims, retries, the file job, the
// writer connection and the status server), and the checks that refuse a bad setting at start.
#ifndef ECOMSTREAM_SERVICES_PROCESSOR_CONFIG_H_
#define ECOMSTREAM_SERVICES_PROCESSOR_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/processor/file_job.h"
#include "services/processor/rules.h"
#include "services/processor/writer_client.h"

namespace ecomstream::processor {

struct ProcessorConfig {
  std::string input_dir;
  std::string archive_dir;     // required unless delete_after_commit
  std::string quarantine_dir;
  bool delete_after_commit = false;
  // Archived files older than this are deleted (archive_retention.h); zero keeps them all.
  absl::Duration archive_retention = absl::Hours(7 * 24);
  // Process the files present at start, wait for their commits, return.
  bool once = false;
  std::string instance_id;     // the claimant in ClaimFile
  absl::Duration rescan_interval = absl::Seconds(2);
  absl::Duration claim_lease = absl::Seconds(60);
  absl::Duration drain_timeout = absl::Seconds(30);     // Stop(): wait this long for acks
  // The first retry after a refusal; later ones double (jittered, retry.h), up to 10 minutes.
  absl::Duration failed_file_retry = absl::Seconds(5);
  int once_max_attempts = 3;  // with once: refusals of one file before giving it up
  bool watch = true;          // inotify (false: rescans only)
  FileJobOptions job;
  // The active rules, read as each file starts (job.rules is used when null). Must outlive the
  // processor.
  const RulesStore* rules = nullptr;
  WriterClientOptions writer;
  // Used by main to build the channel and the status server (the processor gets the channel).
  std::string writer_address = "127.0.0.1:50051";
  TlsFiles tls;
  std::string metrics_address;  // empty: no HTTP status server

  // The first invalid setting as kInvalidArgument with one clear sentence (flag names included).
  absl::Status Validate() const;
};

}  // namespace ecomstream::processor

#endif  // ECOMSTREAM_SERVICES_PROCESSOR_CONFIG_H_

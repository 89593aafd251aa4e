// The ecomstream-generator binary as users and containers run it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "ecomstream/v1/ingest.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/generator/testing/files.h"
#include "httplib.h"
#include "tests/otel/test_collector.h"
#include "tests/testing/ports.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ecomstream::generator {
namespace {

using ::ecomstream::testing::FreePort;
using testing::FreshPath;
using testing::ListDir;
using testing::ReadFile;

constexpr char kStart[] = "--start_time=2026-05-01T12:00:00Z";

std::string FreshDir(const std::string& name) {
  const std::string dir = FreshPath(absl::StrCat("bin_", name));
  EXPECT_TRUE(MakeDirs(dir).ok());
  return dir;
}

std::string Binary() { return ::ecomstream::testing::BinPath("ecomstream-generator"); }

// Starts the generator with `args`; its stderr (and stdout) go to `stderr_path`. `env` adds KEY=VALUE.
pid_t Start(const std::vector<std::string>& args, const std::string& stderr_path,
            const std::vector<std::string>& env = {}) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    for (const std::string& kv : env) putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> argv;
    const std::string binary = Binary();
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Exit code, or -signal; 999 on timeout (the child is killed).
int Wait(pid_t pid, int timeout_ms = 60'000) {
  for (int waited = 0;; waited += 5) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    if (waited > timeout_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return 999;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int RunBinary(const std::vector<std::string>& args, std::string* stderr_text, const std::vector<std::string>& env = {}) {
  const std::string path = absl::StrCat(::ecomstream::testing::ScratchDir(), "/genbin_stderr");
  const int code = Wait(Start(args, path, env));
  *stderr_text = ReadFile(path);
  return code;
}

v1::FileManifest ParseManifest(const std::string& path) {
  v1::FileManifest manifest;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(ReadFile(path), &manifest).ok()) << path;
  return manifest;
}

int64_t DataRows(const std::string& csv) { return std::count(csv.begin(), csv.end(), '\n') - 1; }

TEST(GeneratorBinaryTest, InotifyWatcherNeverSeesAPartialFileNorACsvBeforeItsManifest) {
  const std::string dir = FreshDir("inotify");
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_GE(inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO), 0);
  const pid_t pid = Start({"--output_dir=" + dir, "--total_events=40000", "--events_per_file=1000", "--seed=5",
                           kStart, "--schema_version=mixed", "--quiet"},
                          dir + ".stderr");
  std::set<std::string> manifests;
  int csvs = 0, exit_code = -1;
  std::vector<std::string> violations;
  alignas(inotify_event) char buffer[64 << 10];
  for (bool exited = false, drained = false; !drained;) {
    if (!exited) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, 20);
    if (ready <= 0) {
      drained = exited;
      continue;
    }
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buffer + off);
      off += sizeof(inotify_event) + e->len;
      const std::string name = e->len > 0 ? e->name : "";
      if (name.empty() || name[0] == '.') continue;  // readers ignore dot-files (.tmp/)
      if (e->mask & (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE)) {
        violations.push_back(absl::StrCat("written in place: ", name));
      } else if (absl::EndsWith(name, ".manifest.json")) {
        manifests.insert(name);
      } else if (absl::EndsWith(name, ".csv")) {
        ++csvs;
        if (!manifests.count(name + ".manifest.json")) violations.push_back(absl::StrCat("CSV before manifest: ", name));
        // Read it the moment it appears: it must already be complete.
        const std::string csv = ReadFile(dir + "/" + name);
        const v1::FileManifest m = ParseManifest(dir + "/" + name + ".manifest.json");
        if (Sha256Hex(csv) != m.sha256() || DataRows(csv) != m.rows()) {
          violations.push_back(absl::StrCat("partial or wrong file: ", name));
        }
      }
    }
  }
  close(fd);
  EXPECT_EQ(exit_code, 0) << ReadFile(dir + ".stderr");
  EXPECT_EQ(csvs, 40);
  EXPECT_EQ(manifests.size(), 40u);
  EXPECT_TRUE(violations.empty()) << violations.size() << " violations, first: " << violations[0];
}

TEST(GeneratorBinaryTest, SigtermFinishesTheCurrentFileAndExitsZero) {
  const std::string dir = FreshDir("sigterm");
  const pid_t pid = Start({"--output_dir=" + dir + "/inbox", "--events_per_second=5000", "--events_per_file=1000000",
                           "--summary_file=" + dir + "/summary.json", "--quiet"},
                          dir + "/stderr");
  // Wait until rows are being written into the temp file, then stop.
  for (int i = 0; i < 2000 && ListDir(dir + "/inbox/.tmp").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  ASSERT_EQ(Wait(pid, 10'000), 0) << ReadFile(dir + "/stderr");
  std::vector<std::string> names = ListDir(dir + "/inbox");
  ASSERT_EQ(names.size(), 3u) << ".tmp, one CSV, its manifest";
  const std::string csv = ReadFile(dir + "/inbox/" + names[1]);
  const v1::FileManifest m = ParseManifest(dir + "/inbox/" + names[2]);
  EXPECT_EQ(m.file_name(), names[1]);
  EXPECT_GT(m.rows(), 100);
  EXPECT_EQ(DataRows(csv), m.rows());
  EXPECT_EQ(Sha256Hex(csv), m.sha256());
  EXPECT_TRUE(ListDir(dir + "/inbox/.tmp").empty());
  EXPECT_NE(ReadFile(dir + "/summary.json").find(absl::StrCat("\"events_written\": ", m.rows(), ",")), std::string::npos);
}

TEST(GeneratorBinaryTest, BadFlagsExitTwoWithOneClearLine) {
  const std::string dir = FreshDir("badflags");
  const std::string out = "--output_dir=" + dir;
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{}, {}, "--output_dir is required"},
      {{out, "--events_per_file=0"}, {}, "--events_per_file=0 must be in [1, 10000000]"},
      {{out, "--schema_version=v9"}, {}, "--schema_version='v9' is not one of v1, v2, v3, mixed"},
      {{out, "--anomaly_kinds=bad_price,bogus"}, {}, "unknown kind 'bogus'"},
      {{out, "--start_time=yesterday"}, {}, "--start_time='yesterday' is not an RFC 3339 time"},
      {{out, "--anomaly_rate=2"}, {}, "--anomaly_rate=2 must be in [0, 1]"},
      {{out, "--file_interval=1h"}, {}, "--file_interval=1h must be in (0, 20m]"},
      {{out, "--metrics_address=nonsense"}, {}, "nonsense"},
      {{out}, {"ECOMSTREAM_EVENTS_PER_FILE=abc"}, "ECOMSTREAM_EVENTS_PER_FILE='abc'"},
      {{out}, {"ECOMSTREAM_SCHEMA_VERSION=v0"}, "--schema_version='v0'"},
      {{out, "--total_events=10"},
       {"OTEL_SDK_DISABLED=false", "OTEL_EXPORTER_OTLP_ENDPOINT=ftp://collector:4317"},
       "OTEL_EXPORTER_OTLP_ENDPOINT"},
  };
  for (const Case& c : cases) {
    std::string err;
    EXPECT_EQ(RunBinary(c.args, &err, c.env), 2) << c.needle << ": " << err;
    EXPECT_NE(err.find(c.needle), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  EXPECT_EQ(ListDir(dir), std::vector<std::string>{}) << "nothing written";
  // A malformed number is absl's own flag error: non-zero, naming the flag.
  std::string err;
  EXPECT_NE(RunBinary({out, "--events_per_file=many"}, &err), 0);
  EXPECT_NE(err.find("events_per_file"), std::string::npos) << err;
}

TEST(GeneratorBinaryTest, HelpListsTheFlagsOfTheCommandLineContract) {
  std::string out;
  RunBinary({"--help"}, &out);
  for (const char* flag : {"--output_dir", "--total_events", "--events_per_file", "--events_per_second",
                           "--anomaly_rate", "--anomaly_kinds", "--late_rate", "--seed", "--schema_version",
                           "--summary_file", "--start_time", "--duration", "--file_interval", "--manifests",
                           "--quiet", "--metrics_address", "--health_check"}) {
    EXPECT_NE(out.find(absl::StrCat(flag, " (")), std::string::npos) << flag << " missing from:\n" << out;
  }
}

TEST(GeneratorBinaryTest, UnwritableOutputIsOneErrorLineAndExitOne) {
  const std::string dir = FreshDir("unwritable");
  std::ofstream(dir + "/file") << "x";
  std::string err;
  EXPECT_EQ(RunBinary({"--output_dir=" + dir + "/file", "--total_events=10", "--quiet"}, &err), 1);
  EXPECT_NE(err.find("Generator failed"), std::string::npos) << err;
  EXPECT_NE(err.find("is not a directory"), std::string::npos) << err;
}

// A real full filesystem: a 1 MiB tmpfs mounted in a private user+mount namespace. Every run
// exits 1 with one clear error and leaves only whole files, each with its manifest. How many files
// land before the disk fills depends on the timing of the writer and publisher threads (a file
// that meets the full disk at its manifest lands none of the files of its group), so the run is
// repeated until one has landed a file, up to five times, and the whole-file checks ran on it.
TEST(GeneratorBinaryTest, DiskFullOnASmallTmpfsIsAClearErrorAndLeavesNoPartialFile) {
  if (system("unshare -rm true >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "user+mount namespaces unavailable (unshare -rm): cannot mount a small tmpfs here";
  }
  int most_csvs = 0;
  for (int attempt = 0; attempt < 5 && most_csvs == 0; ++attempt) {
    const std::string dir = FreshDir(absl::StrCat("tmpfs", attempt));
    ASSERT_TRUE(MakeDirs(dir + "/mnt").ok());
    const std::string script = absl::StrCat(
        "mount -t tmpfs -o size=1m tmpfs ", dir, "/mnt && OTEL_SDK_DISABLED=true ", Binary(), " --output_dir=", dir,
        "/mnt/inbox --total_events=200000 --events_per_file=1000 --seed=9 --quiet ", kStart, " 2>", dir,
        "/stderr; echo $? >", dir, "/rc; cp -a ", dir, "/mnt/inbox ", dir, "/copy");
    ASSERT_EQ(system(absl::StrCat("unshare -rm sh -c '", script, "'").c_str()), 0);
    const std::string err = ReadFile(dir + "/stderr");
    EXPECT_EQ(ReadFile(dir + "/rc"), "1\n") << err;
    EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 2) << "a start line and one error line: " << err;
    int csvs = 0;
    for (const std::string& name : ListDir(dir + "/copy")) {
      if (!absl::EndsWith(name, ".csv")) continue;
      ++csvs;
      const std::string csv = ReadFile(dir + "/copy/" + name);
      const v1::FileManifest m = ParseManifest(dir + "/copy/" + name + ".manifest.json");
      EXPECT_EQ(Sha256Hex(csv), m.sha256()) << name;
      EXPECT_EQ(DataRows(csv), 1000) << name;
    }
    EXPECT_EQ(ListDir(dir + "/copy/.tmp"), std::vector<std::string>{});
    int manifests = 0;
    for (const std::string& name : ListDir(dir + "/copy")) manifests += absl::EndsWith(name, ".manifest.json");
    EXPECT_EQ(manifests, csvs) << "no manifest without its CSV";
    most_csvs = std::max(most_csvs, csvs);
  }
  EXPECT_GE(most_csvs, 1) << "no run landed a file before the disk filled";
}

TEST(GeneratorBinaryTest, ServesMetricsAndAnswersHealthChecksWhileRunning) {
  const std::string dir = FreshDir("metrics");
  const std::string address = absl::StrCat("127.0.0.1:", FreePort());
  const pid_t pid = Start({"--output_dir=" + dir + "/inbox", "--events_per_second=2000", "--events_per_file=200",
                           "--metrics_address=" + address, "--quiet"},
                          dir + "/stderr");
  std::string err;
  int health = 1;
  for (int i = 0; i < 200 && health != 0; ++i) {
    health = RunBinary({"--health_check=" + address}, &err);
    if (health != 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(health, 0) << err;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few files
  httplib::Client client("127.0.0.1", std::stoi(address.substr(address.find(':') + 1)));
  const auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  for (const char* series : {"ecomstream_generator_events_total ", "ecomstream_generator_files_total ",
                             "ecomstream_generator_anomalies_total{kind=\"bad_price\"} ",
                             "ecomstream_generator_expected_rows_total{outcome=\"dead_letter\"} ",
                             "ecomstream_generator_file_commit_seconds_bucket{le=\"+Inf\"} ",
                             "ecomstream_spans_exported_total ", "ecomstream_spans_dropped_total{reason=\"queue_full\"} ",
                             "ecomstream_build_info{"}) {
    EXPECT_NE(response->body.find(series), std::string::npos) << series;
  }
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(Wait(pid, 10'000), 0) << ReadFile(dir + "/stderr");
  EXPECT_EQ(RunBinary({"--health_check=" + address}, &err), 1) << "nothing answers after the exit";
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

// With a collector configured, each committed file is one file.write span from service
// ecomstream-generator whose context is the manifest's traceparent. The schedule delay is longer
// than the test, so the spans can only have arrived through the flush at exit.
TEST(GeneratorBinaryTest, ExportsOneFileWriteSpanPerFileAndFlushesThemBeforeExiting) {
  auto collector = ecomstream::testing::TestCollector::Start();
  ASSERT_TRUE(collector.ok()) << collector.status();
  const std::string dir = FreshDir("spans");
  std::string err;
  ASSERT_EQ(RunBinary({"--output_dir=" + dir, "--total_events=3000", "--events_per_file=1000", "--seed=5", "--quiet"},
                      &err,
                      {"OTEL_SDK_DISABLED=false", "OTEL_EXPORTER_OTLP_ENDPOINT=" + (*collector)->endpoint(),
                       "OTEL_BSP_SCHEDULE_DELAY=600000", "OTEL_SERVICE_NAME=", "OTEL_TRACES_SAMPLER="}),
            0)
      << err;
  EXPECT_EQ((*collector)->span_count(), 3u) << "exported before the process exited";
  std::set<std::string> manifest_contexts, span_contexts;
  for (const std::string& name : ListDir(dir)) {
    if (absl::EndsWith(name, ".csv")) manifest_contexts.insert(ParseManifest(dir + "/" + name + ".manifest.json").traceparent());
  }
  for (const ecomstream::testing::CollectedSpan& span : (*collector)->Spans()) {
    EXPECT_EQ(span.span.name(), "file.write");
    EXPECT_EQ(span.ResourceAttribute("service.name"), "ecomstream-generator");
    span_contexts.insert(absl::StrCat("00-", span.trace_id_hex(), "-", span.span_id_hex(), "-01"));
  }
  EXPECT_EQ(manifest_contexts.size(), 3u);
  EXPECT_EQ(span_contexts, manifest_contexts);
}

}  // namespace
}  // namespace ecomstream::generator

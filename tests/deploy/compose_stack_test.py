"""The docker compose stack, for real, under podman's Docker API with docker-compose.

Builds the ecomstream image from deploy/docker/Dockerfile (its `binaries` stage fed with the
binaries already built in ECOMSTREAM_BIN_DIR, so nothing is compiled twice) on a Debian base made
with mmdebstrap and cached between runs, builds the test-only stand-ins for postgres:15 and
Prometheus (tests/deploy/standins/), brings up deploy/compose/docker-compose.yml with the
`monitoring` profile and tests/deploy/compose.test.yml, and checks:

  - every service turns healthy (podman has no systemd timers here, so this test runs
    `podman healthcheck run` for each container every few seconds);
  - Prometheus reports its three scrape targets up (HTTP API);
  - events land and every committed file balances in the ledger;
  - a SIGKILL of the writer's process and a restart of the postgres container mid-stream lose
    and duplicate nothing: after a catch-up, the database equals the generator's ground truth;
  - `docker-compose stop` drains every service: each exits 0 (a service still running when its
    stop_grace_period ends is killed and exits 137).

Needs root (rootful podman; rootless would need /etc/subuid entries) and the Debian packages of
scripts/lib.sh. Everything it starts runs in a storage of its own (cached under
$ECOMSTREAM_CONTAINER_CACHE, default $XDG_CACHE_HOME/ecomstream/containers, one run at a time)
and is removed at the end, failed or not: containers, networks, volumes, the API service.
Run by ctest with the label `containers` (scripts/test -L containers).
"""

import ctypes
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SOURCE_DIR = os.path.abspath(os.environ.get("ECOMSTREAM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("ECOMSTREAM_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
COMPOSE_FILE = os.path.join(SOURCE_DIR, "deploy", "compose", "docker-compose.yml")
OVERRIDE_FILE = os.path.join(SOURCE_DIR, "tests", "deploy", "compose.test.yml")
DOCKERFILE = os.path.join(SOURCE_DIR, "deploy", "docker", "Dockerfile")
STANDINS = os.path.join(SOURCE_DIR, "tests", "deploy", "standins")
SERVICES = ("generator", "processor", "writer")
HEALTHCHECKED = ("postgres", "writer", "processor", "generator")
SKIP = 77  # ctest's SKIP_RETURN_CODE for this test

# The base image: Debian bookworm minbase from the Debian mirror, trimmed like the official
# debian:bookworm-slim image (no manuals, docs or translations are unpacked; no service starts
# during a package's installation). Rebuilt when these inputs, the mmdebstrap version or the ISO
# week change, so it follows the security updates.
MIRRORS = ["deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian bookworm-updates main",
           "deb http://deb.debian.org/debian-security bookworm-security main"]
MMDEBSTRAP_ARGS = ["--variant=minbase", "--quiet",
                   "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/info/*",
                   "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
                   "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                   "--customize-hook=printf '#!/bin/sh\\nexit 101\\n' > \"$1/usr/sbin/policy-rc.d\"",
                   "--customize-hook=chmod 0755 \"$1/usr/sbin/policy-rc.d\"",
                   "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin",
                   "bookworm"]

# Bounded waits: generous for a loaded 2-core machine, never endless.
START_TIMEOUT = 300
STEP_TIMEOUT = 180


class Failure(Exception):
    pass


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(argv, *, env=None, timeout=600, check=True, capture=True, input_text=None):
    try:
        out = subprocess.run(argv, env=env, timeout=timeout, text=True, input=input_text,
                             stdout=subprocess.PIPE if capture else None,
                             stderr=subprocess.STDOUT if capture else None)
    except subprocess.TimeoutExpired as e:
        partial = e.output.decode(errors="replace") if isinstance(e.output, bytes) else (e.output or "")
        raise Failure(f"{' '.join(argv)} did not finish in {timeout}s:\n{partial[-4000:]}") from None
    if check and out.returncode != 0:
        raise Failure(f"{' '.join(argv)} exited {out.returncode}:\n{(out.stdout or '')[-4000:]}")
    return out


def wait_for(what, predicate, timeout, interval=2.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Failure as e:
            last = e
        time.sleep(interval)
    raise Failure(f"timed out after {timeout}s waiting for {what} (last: {last})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """In the child before exec: SIGTERM when this test dies, however it dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cache_dir():
    explicit = os.environ.get("ECOMSTREAM_CONTAINER_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ecomstream", "containers")


class Podman:
    """podman and docker-compose bound to a private storage and API socket."""

    def __init__(self, work, cache):
        self.work = work
        self.cache = cache
        conf = os.path.join(work, "containers.conf")
        with open(conf, "w", encoding="utf-8") as f:
            # runc: crun refuses hybrid cgroup hierarchies; no raised NOFILE limit (not permitted
            # in every sandbox); cgroupfs and a file event log: there is no systemd.
            f.write(f"""[containers]
default_ulimits = []
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{cache}/tmp"
[network]
network_backend = "cni"
network_config_dir = "{cache}/cni"
""")
        storage = os.path.join(work, "storage.conf")
        with open(storage, "w", encoding="utf-8") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{cache}/storage"\nrunroot = "{cache}/run"\n')
        self.socket = os.path.join(work, "podman.sock")
        self.env = dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage,
                        DOCKER_HOST=f"unix://{self.socket}", COMPOSE_DOCKER_CLI_BUILD="0")
        self.service = None

    def __call__(self, *args, **kwargs):
        return run(["podman", *args], env=self.env, **kwargs)

    def start_api(self):
        self.service_log = open(os.path.join(self.work, "podman-service.log"), "w", encoding="utf-8")
        self.service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                                        env=self.env, stdout=self.service_log, stderr=subprocess.STDOUT,
                                        preexec_fn=die_with_parent)
        wait_for("podman's API socket", lambda: self.service.poll() is None and os.path.exists(self.socket)
                 and run(["curl", "-sf", "--unix-socket", self.socket, "http://d/_ping"], check=False).returncode == 0,
                 60, 0.2)

    def stop_api(self):
        if self.service and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
        if self.service:
            self.service_log.close()

    def remove_everything(self):
        """Containers, pods, volumes and networks of this private storage (the images stay)."""
        for argv in (["rm", "--all", "--force", "--time", "5"], ["volume", "prune", "--force"],
                     ["network", "prune", "--force"], ["image", "prune", "--force"]):
            out = self(*argv, check=False, timeout=180)
            if out.returncode != 0:
                log(f"podman {' '.join(argv)}: {out.stdout.strip()}")


def base_image(podman):
    """Tags debian:bookworm and debian:bookworm-slim as the cached mmdebstrap base; builds it first
    when the cache has none for the current key."""
    version = run(["mmdebstrap", "--version"]).stdout.strip()
    year, week, _ = datetime.date.today().isocalendar()
    key = hashlib.sha256(json.dumps([version, MIRRORS, MMDEBSTRAP_ARGS, year, week]).encode()).hexdigest()[:16]
    tag = f"localhost/ecomstream-base:{key}"
    if podman("image", "exists", tag, check=False).returncode != 0:
        log(f"Building the Debian base image {tag} with mmdebstrap (cache miss)")
        tarball = os.path.join(podman.work, "base.tar")
        started = time.monotonic()
        run(["mmdebstrap", *MMDEBSTRAP_ARGS, tarball, *MIRRORS], timeout=900)
        podman("import", "--change", 'CMD ["bash"]', tarball, tag, timeout=300)
        os.unlink(tarball)
        log(f"Base image built in {time.monotonic() - started:.0f}s")
        stale = podman("images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/ecomstream-base").stdout.split()
        for old in stale:
            if old != tag:
                podman("rmi", old, check=False)
    else:
        log(f"Debian base image {tag} from the cache")
    podman("tag", tag, "localhost/debian:bookworm", "localhost/debian:bookworm-slim")


def build_images(podman, images):
    binaries = os.path.join(podman.work, "binaries")
    os.mkdir(binaries)
    for name in SERVICES:
        path = os.path.join(BIN_DIR, f"ecomstream-{name}")
        if not os.access(path, os.X_OK):
            raise Failure(f"{path} is not built (scripts/build)")
        shutil.copy2(path, binaries)
    run(["strip", *[os.path.join(binaries, f"ecomstream-{name}") for name in SERVICES]])
    started = time.monotonic()
    # --network=host: the RUN steps' apt-get reaches the Debian mirror without a CNI network.
    # The three builds run at once: on a cold cache they mostly wait for downloads.
    builds = {
        "ecomstream": ["--build-context", f"binaries={binaries}", "-f", DOCKERFILE, SOURCE_DIR],
        "postgres": [os.path.join(STANDINS, "postgres")],
        "prometheus": [os.path.join(STANDINS, "prometheus")],
    }
    running = {}
    for name, args in builds.items():
        out = open(os.path.join(podman.work, f"build-{name}.log"), "w+", encoding="utf-8")
        running[name] = (subprocess.Popen(["podman", "build", "--network=host", "-t", images[name], *args],
                                          env=podman.env, stdout=out, stderr=subprocess.STDOUT), out)
    failed = []
    for name, (process, out) in running.items():
        try:
            code = process.wait(900)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        out.seek(0)
        if code != 0:
            failed.append(f"podman build of {images[name]} exited {code}:\n{out.read()[-4000:]}")
        out.close()
    if failed:
        raise Failure("\n".join(failed))
    log(f"Images built in {time.monotonic() - started:.0f}s")


class Stack:
    def __init__(self, podman, project, env):
        self.podman = podman
        self.project = project
        self.env = dict(podman.env, **env)
        self.stop_healthchecks = threading.Event()
        self.healthchecker = None

    def compose(self, *args, timeout=600, check=True):
        return run(["docker-compose", "-p", self.project, "-f", COMPOSE_FILE, "-f", OVERRIDE_FILE,
                    "--profile", "monitoring", *args], env=self.env, timeout=timeout, check=check)

    def container(self, service):
        return f"{self.project}_{service}_1"

    def inspect(self, service, fmt):
        return self.podman("inspect", "--format", fmt, self.container(service)).stdout.strip()

    def health(self, service):
        return self.inspect(service, "{{.State.Health.Status}}")

    def start_healthchecks(self):
        """What systemd timers do for podman elsewhere: run each container's healthcheck every 5 s
        (the compose file's interval)."""
        def loop():
            while not self.stop_healthchecks.wait(5):
                try:
                    names = self.podman("ps", "--format", "{{.Names}}", "--filter",
                                        f"label=com.docker.compose.project={self.project}",
                                        check=False, timeout=60).stdout.split()
                    for name in names:
                        if any(name == self.container(s) for s in HEALTHCHECKED):
                            self.podman("healthcheck", "run", name, check=False, timeout=60)
                except Failure as e:  # a slow podman call: try again next round
                    log(f"Healthcheck round: {e}")
        self.healthchecker = threading.Thread(target=loop, daemon=True)
        self.healthchecker.start()

    def wait_healthy(self, services, timeout=STEP_TIMEOUT):
        for service in services:
            wait_for(f"{service} to be healthy", lambda: self.health(service) == "healthy", timeout)

    def sql(self, query):
        out = self.podman("exec", self.container("postgres"), "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-U", "ecomstream", "-d", "ecomstream", "-c", query, check=False, timeout=60)
        if out.returncode != 0:
            raise Failure(f"psql: {out.stdout.strip()}")
        return out.stdout.strip()

    def sql_int(self, query):
        return int(self.sql(query))

    def committed_files(self):
        return self.sql_int("SELECT count(*) FROM ecomstream.ingest_files WHERE state = 'committed'")

    def inbox_path(self):
        return self.podman("volume", "inspect", "--format", "{{.Mountpoint}}", f"{self.project}_inbox").stdout.strip()

    def dump_logs(self):
        log("---- podman ps -a ----")
        print(self.podman("ps", "-a", check=False).stdout, file=sys.stderr)
        for service in ("postgres", "writer", "processor", "generator", "prometheus"):
            log(f"---- logs of {service} (last 80 lines) ----")
            print(self.podman("logs", "--tail", "80", self.container(service), check=False).stdout, file=sys.stderr)
            if service in HEALTHCHECKED:
                print(self.podman("inspect", "--format", "{{json .State.Health}}", self.container(service),
                                  check=False).stdout[-2000:], file=sys.stderr)


def check_prometheus_targets(port):
    def all_up():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets?state=active", timeout=10) as r:
            targets = json.load(r)["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health if health == {f"ecomstream-{s}": "up" for s in SERVICES} else None
    health = wait_for("Prometheus to scrape the three services", all_up, STEP_TIMEOUT, 3)
    log(f"Prometheus targets: {health}")


def wait_for_progress(stack, what, more):
    start = stack.committed_files()
    wait_for(f"{more} more committed files {what}", lambda: stack.committed_files() >= start + more, STEP_TIMEOUT)


def kill_writer(stack):
    pid = int(stack.inspect("writer", "{{.State.Pid}}"))
    restarts = int(stack.inspect("writer", "{{.RestartCount}}"))
    log(f"SIGKILL to the writer (pid {pid} on the host)")
    os.kill(pid, signal.SIGKILL)
    # restart: unless-stopped brings it back; the processor backs off and resumes.
    wait_for("the writer to be restarted", lambda: int(stack.inspect("writer", "{{.RestartCount}}")) > restarts,
             STEP_TIMEOUT)
    stack.wait_healthy(["writer", "processor"])


def restart_postgres(stack):
    log("Restarting the postgres container")
    stack.compose("restart", "postgres", timeout=STEP_TIMEOUT)
    stack.wait_healthy(["postgres", "writer", "processor"])


def stop_and_check_drain(stack):
    exit_codes = {}
    started = time.monotonic()
    stack.compose("stop", timeout=STEP_TIMEOUT)
    log(f"docker-compose stop took {time.monotonic() - started:.1f}s")
    problems = []
    for service in ("generator", "processor", "writer", "postgres", "prometheus"):
        state = json.loads(stack.inspect(service, "{{json .State}}"))
        exit_codes[service] = state.get("ExitCode")
        if state.get("Running") or state.get("ExitCode") != 0 or state.get("OOMKilled"):
            problems.append(f"{service}: running={state.get('Running')} exit={state.get('ExitCode')}")
    log(f"Exit codes after docker-compose stop: {exit_codes}")
    if problems:
        raise Failure("not drained within the grace period: " + "; ".join(problems))


def catch_up(stack):
    """Everything the generator wrote before it stopped gets committed."""
    stack.compose("start", "postgres", "writer", "processor", timeout=STEP_TIMEOUT)
    stack.wait_healthy(["postgres", "writer", "processor"])
    inbox = os.path.join(stack.inbox_path(), "inbox")
    wait_for("the inbox to be empty",
             lambda: not [n for n in os.listdir(inbox) if n.endswith(".csv")], STEP_TIMEOUT)
    # The last file is archived only after its commit: the ledger now holds every file.


def reconcile(stack):
    with open(os.path.join(stack.inbox_path(), "summary.json"), encoding="utf-8") as f:
        truth = json.load(f)
    checks = {
        "events": ("SELECT count(*) FROM ecomstream.events", truth["valid_distinct_events"]),
        "dead letters": ("SELECT count(*) FROM ecomstream.dead_letter_events", truth["expected_dead_letters"]),
        "late events": ("SELECT count(*) FROM ecomstream.events WHERE late_arrival", truth["late_events"]),
        "committed files": ("SELECT count(*) FROM ecomstream.ingest_files WHERE state = 'committed'", truth["files"]),
        "files not committed or unbalanced (rows <> inserted+updated+unchanged+duplicates+dead_lettered)": (
            "SELECT count(*) FROM ecomstream.ingest_files WHERE state <> 'committed' "
            "OR rows <> inserted + updated + unchanged + duplicates + dead_lettered", 0),
        "rows per the file ledger": ("SELECT coalesce(sum(rows), 0) FROM ecomstream.ingest_files", truth["events_written"]),
        "duplicates per the file ledger": ("SELECT coalesce(sum(duplicates), 0) FROM ecomstream.ingest_files",
                                           truth["exact_duplicates"]),
        "rows per the batch ledger (a batch committed twice?)": (
            "SELECT coalesce(sum(rows), 0) FROM ecomstream.ingest_batches", truth["events_written"]),
        "events inserted per the batch ledger (an event inserted twice?)": (
            "SELECT coalesce(sum(inserted), 0) FROM ecomstream.ingest_batches", truth["valid_distinct_events"]),
        "events updated per the batch ledger": ("SELECT coalesce(sum(updated), 0) FROM ecomstream.ingest_batches", 0),
        "hourly aggregates that differ from a fresh GROUP BY": ("""
            WITH fresh AS (
              SELECT date_trunc('hour', event_time, 'UTC') AS hour, event_type, category, count(*) AS events,
                     coalesce(sum(quantity), 0) AS quantity,
                     coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
              FROM ecomstream.events GROUP BY 1, 2, 3),
            stored AS (SELECT hour, event_type, category, events, quantity, revenue
                       FROM ecomstream.event_stats_hourly WHERE events <> 0)
            SELECT (SELECT count(*) FROM (SELECT * FROM fresh EXCEPT SELECT * FROM stored) a)
                 + (SELECT count(*) FROM (SELECT * FROM stored EXCEPT SELECT * FROM fresh) b)""", 0),
    }
    log(f"Generator ground truth: {truth['events_written']} rows in {truth['files']} files, "
        f"{truth['valid_distinct_events']} events, {truth['expected_dead_letters']} dead letters, "
        f"{truth['exact_duplicates']} exact duplicates")
    # One psql call for every figure (a `podman exec` each is slow on a loaded machine).
    names = list(checks)
    got = stack.sql("SELECT " + ", ".join(f"({checks[n][0]})" for n in names)).split("|")
    if len(got) != len(names):
        raise Failure(f"expected {len(names)} figures from psql, got {got}")
    wrong = [f"{n}: database {g}, expected {checks[n][1]}" for n, g in zip(names, got) if int(g) != checks[n][1]]
    if truth["files"] < 6:
        wrong.append(f"only {truth['files']} files were written: the faults did not happen mid-stream")
    if wrong:
        raise Failure("the database does not match the generator's ground truth:\n  " + "\n  ".join(wrong))
    log("Database reconciled with the generator's ground truth")


def main():
    if os.geteuid() != 0:
        print("SKIPPED: needs root (rootful podman; rootless podman needs /etc/subuid entries)", file=sys.stderr)
        return SKIP
    missing = [tool for tool in ("podman", "runc", "docker-compose", "mmdebstrap", "curl", "strip")
               if not shutil.which(tool)]
    if not os.path.exists("/usr/lib/cni/dnsname"):
        missing.append("dnsname CNI plugin (golang-github-containernetworking-plugin-dnsname)")
    if missing:
        raise Failure(f"missing {', '.join(missing)}: scripts/test installs the packages of scripts/lib.sh")

    cache = cache_dir()
    os.makedirs(cache, exist_ok=True)
    lock = open(os.path.join(cache, "lock"), "w")
    log(f"Waiting for the container cache lock {cache}/lock")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one run at a time per cache (the ctest timeout bounds it)

    work = tempfile.mkdtemp(prefix="ecomstream-compose.")
    podman = Podman(work, cache)
    project = f"ecomstreamtest{os.getpid()}"
    stack = None
    started = time.monotonic()
    ok = False
    try:
        podman.remove_everything()  # what a killed earlier run may have left
        podman.start_api()
        base_image(podman)
        images = {"ecomstream": "localhost/ecomstream:compose-test",
                  "postgres": "localhost/ecomstream-test-postgres:15",
                  "prometheus": "localhost/ecomstream-test-prometheus:latest"}
        build_images(podman, images)

        password_file = os.path.join(work, "pg_password")
        with open(password_file, "w", encoding="utf-8") as f:
            f.write(os.urandom(16).hex() + "\n")
        os.chmod(password_file, 0o644)
        prometheus_port = free_port()
        stack = Stack(podman, project, {
            "ECOMSTREAM_IMAGE": images["ecomstream"],
            "ECOMSTREAM_TEST_POSTGRES_IMAGE": images["postgres"],
            "ECOMSTREAM_TEST_PROMETHEUS_IMAGE": images["prometheus"],
            "ECOMSTREAM_TEST_PG_PASSWORD_FILE": password_file,
            "ECOMSTREAM_PROMETHEUS_PORT": str(prometheus_port),
            "ECOMSTREAM_EVENTS_PER_SECOND": "1000",
        })
        stack.start_healthchecks()
        up = time.monotonic()
        # docker-compose waits for each depends_on condition (service_healthy) itself.
        stack.compose("up", "-d", "--no-build", timeout=START_TIMEOUT)
        stack.wait_healthy(HEALTHCHECKED)
        log(f"All services healthy {time.monotonic() - up:.0f}s after `up`")

        wait_for_progress(stack, "before the faults", 3)
        check_prometheus_targets(prometheus_port)
        kill_writer(stack)
        wait_for_progress(stack, "after the writer's SIGKILL", 3)
        restart_postgres(stack)
        wait_for_progress(stack, "after the postgres restart", 3)
        stop_and_check_drain(stack)
        catch_up(stack)
        reconcile(stack)
        ok = True
    except Exception as e:  # noqa: BLE001 - every failure gets the logs below
        log(f"FAILED: {e}")
        if stack:
            stack.dump_logs()
        service_log = os.path.join(work, "podman-service.log")
        if os.path.exists(service_log):
            with open(service_log, encoding="utf-8", errors="replace") as f:
                log(f"---- podman API service log (end) ----\n{f.read()[-3000:]}")
    finally:
        if stack:
            stack.stop_healthchecks.set()
            stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=STEP_TIMEOUT, check=False)
        podman.remove_everything()
        podman.stop_api()
        # The host-local IPAM plugin keeps a state folder per network outside podman's storage.
        shutil.rmtree(f"/var/lib/cni/networks/{project}_default", ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        log(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - started:.0f}s")
    return 0 if ok else 1


def terminated(signum, _frame):
    raise SystemExit(f"terminated by signal {signum}")  # runs the cleanup in main's finally


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    try:
        sys.exit(main())
    except Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)

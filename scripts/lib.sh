# shellcheck shell=bash
# Shared functions for scripts/build, scripts/test and scripts/demo. Source it; do not run it.
#
#   install_deps      Debian packages the build, the tests and the demo need (idempotent).
#   build TARGET...   configure (Ninja, RelWithDebInfo) into build/ if needed, then build.
#   start_pg DIR      a private PostgreSQL cluster for DIR on a free port (port in DIR/port).
#   stop_pg DIR       stops it.
#
# Environment: ECOMSTREAM_BUILD_DIR (default <repo>/build), ECOMSTREAM_JOBS (default nproc),
# ECOMSTREAM_SKIP_INSTALL=1 (trust that the packages are there).

ECOMSTREAM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ECOMSTREAM_BUILD_DIR="${ECOMSTREAM_BUILD_DIR:-$ECOMSTREAM_ROOT/build}"

# Everything a fresh Debian bookworm machine needs for build + test + demo + bench.
ECOMSTREAM_PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config make
  # libraries (CMakeLists.txt: Protobuf, gRPC, absl, OpenSSL, libpqxx, cpp-httplib, GTest, benchmark)
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libpqxx-dev libpq-dev libabsl-dev libcpp-httplib-dev libssl-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # tests, demo and benchmarks: a real PostgreSQL, promtool, pgloader; checks of deploy/ (PyYAML,
  # `docker-compose config`) and of scripts/ (shellcheck)
  postgresql-15 postgresql-client-15 prometheus pgloader
  python3 python3-yaml curl util-linux procps docker-compose shellcheck time
  # the compose stack under test (tests/deploy/compose_stack_test.py): podman's Docker API with
  # runc, service names through the dnsname CNI plugin, a Debian base image from mmdebstrap
  podman runc golang-github-containernetworking-plugin-dnsname mmdebstrap
)

log() { printf '[ecomstream] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if (( EUID == 0 )); then "$@"; else sudo "$@"; fi
}

install_deps() {
  if [[ "${ECOMSTREAM_SKIP_INSTALL:-0}" == 1 ]]; then return 0; fi
  if ! command -v dpkg-query >/dev/null 2>&1; then
    log "Not a Debian system (no dpkg-query): install the packages listed in scripts/lib.sh yourself."
    return 0
  fi
  local missing=() pkg
  for pkg in "${ECOMSTREAM_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]]; then
      missing+=("$pkg")
    fi
  done
  if (( ${#missing[@]} == 0 )); then return 0; fi
  log "Installing ${#missing[@]} Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# build TARGET...: e.g. `build all`, or only the three services.
build() {
  local jobs="${ECOMSTREAM_JOBS:-$(nproc)}" targets=()
  if (( $# > 0 )); then targets=(--target "$@"); fi
  if [[ -f "$ECOMSTREAM_BUILD_DIR/CMakeCache.txt" ]]; then
    # Re-configure (cheap) so new tests/<folder>/ and bench/<folder>/ are picked up.
    cmake -S "$ECOMSTREAM_ROOT" -B "$ECOMSTREAM_BUILD_DIR" >/dev/null
  else
    cmake -S "$ECOMSTREAM_ROOT" -B "$ECOMSTREAM_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  cmake --build "$ECOMSTREAM_BUILD_DIR" -j "$jobs" "${targets[@]}"
}

# A free TCP port on 127.0.0.1 (bound and released).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_bindir() {
  local version
  for version in 15 16 17 14 13; do
    if [[ -x "/usr/lib/postgresql/$version/bin/initdb" ]]; then
      echo "/usr/lib/postgresql/$version/bin"
      return 0
    fi
  done
  die "PostgreSQL server binaries not found (install postgresql-15)"
}

# Runs a command as the cluster's owner: `postgres` when we are root (initdb refuses root).
as_pg_owner() {
  if (( EUID == 0 )); then runuser -u postgres -- "$@"; else "$@"; fi
}

# Where DIR's cluster lives: DIR/pg, or a /tmp directory when `postgres` cannot reach DIR/pg
# (a checkout under a private home directory). Recorded in DIR/pg_location.
pg_location() {
  local dir="$1" location
  if [[ -f "$dir/pg_location" ]]; then
    location="$(<"$dir/pg_location")"
    if [[ -d "$location" ]]; then echo "$location"; return 0; fi
  fi
  location="$dir/pg"
  mkdir -p "$location"
  if (( EUID == 0 )); then
    chown postgres:postgres "$location"
    if ! runuser -u postgres -- test -w "$location" 2>/dev/null; then
      rmdir "$location"
      location="$(mktemp -d /tmp/ecomstream-pg.XXXXXX)"
      chown postgres:postgres "$location"
    fi
  fi
  chmod 0700 "$location"
  echo "$location" >"$dir/pg_location"
  echo "$location"
}

pg_is_running() {
  local dir="$1" location
  [[ -f "$dir/pg_location" ]] || return 1
  location="$(<"$dir/pg_location")"
  [[ -f "$location/data/PG_VERSION" ]] || return 1
  as_pg_owner "$(pg_bindir)/pg_ctl" -D "$location/data" status >/dev/null 2>&1
}

# Starts (or finds running) a private cluster for DIR: superuser `postgres`, trust auth on
# 127.0.0.1 only, no Unix socket. The port goes to DIR/port.
start_pg() {
  local dir="$1" bindir location port
  mkdir -p "$dir"
  bindir="$(pg_bindir)"
  if pg_is_running "$dir" && [[ -f "$dir/port" ]]; then
    return 0
  fi
  location="$(pg_location "$dir")"
  if [[ ! -f "$location/data/PG_VERSION" ]]; then
    log "Creating a PostgreSQL cluster in $location/data"
    as_pg_owner "$bindir/initdb" -D "$location/data" -A trust -U postgres -E UTF8 --locale=C \
      >"$location/initdb.log" 2>&1 || { cat "$location/initdb.log" >&2; die "initdb failed"; }
    as_pg_owner tee -a "$location/data/postgresql.conf" >/dev/null <<'EOF'
# ecomstream: a private cluster on loopback only
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
EOF
  fi
  port="$(free_port)"
  as_pg_owner "$bindir/pg_ctl" -D "$location/data" -l "$location/server.log" -w -t 60 \
    -o "-p $port" start >/dev/null || { tail -n 20 "$location/server.log" >&2; die "PostgreSQL did not start"; }
  echo "$port" >"$dir/port"
  log "PostgreSQL is running on 127.0.0.1:$port (data in $location/data)"
}

stop_pg() {
  local dir="$1" location
  if ! pg_is_running "$dir"; then return 0; fi
  location="$(<"$dir/pg_location")"
  as_pg_owner "$(pg_bindir)/pg_ctl" -D "$location/data" -m fast -w stop >/dev/null
  rm -f "$dir/port"
  log "PostgreSQL stopped (data kept in $location/data)"
}

#!/usr/bin/env bash
# Checks of scripts/: usage and argument errors, and the private PostgreSQL that scripts/demo
# starts (start_pg / stop_pg from scripts/lib.sh); and of the whole tree: no file cites a document
# outside the repository or an issue number (docs/design.md and the proto are what code cites).
# Usage: scripts_test.sh usage|postgres|citations
set -euo pipefail
ROOT="${ECOMSTREAM_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }

case "$1" in
  usage)
    dir="$(mktemp -d "${TMPDIR:-/tmp}/scripts-test.XXXXXX")"
    trap 'rm -rf "$dir"' EXIT
    for script in build test demo; do
      "$ROOT/scripts/$script" --help >"$dir/help" || fail "scripts/$script --help exited $?"
      grep -q "Usage: scripts/$script" "$dir/help" || fail "scripts/$script --help has no usage line"
    done
    "$ROOT/scripts/test" --help >"$dir/help"
    for label in unit pg e2e deploy containers "scripts/test -L pg"; do
      grep -qF -- "$label" "$dir/help" || fail "scripts/test --help does not mention $label"
    done
    for topic in "--seconds" "--rate" "stop" "psql" ".run/" "/tap"; do
      "$ROOT/scripts/demo" --help | grep -qF -- "$topic" || fail "scripts/demo --help does not mention $topic"
    done
    if "$ROOT/scripts/demo" --bogus >/dev/null 2>&1; then fail "scripts/demo accepted --bogus"; fi
    if "$ROOT/scripts/demo" --seconds 0 >/dev/null 2>&1; then fail "scripts/demo accepted --seconds 0"; fi
    if "$ROOT/scripts/demo" --rate abc >/dev/null 2>&1; then fail "scripts/demo accepted --rate abc"; fi
    echo "usage: ok"
    ;;
  postgres)
    # shellcheck source=scripts/lib.sh
    source "$ROOT/scripts/lib.sh"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/scripts-test.XXXXXX")"
    trap 'stop_pg "$dir" || true; rm -rf "$(cat "$dir/pg_location" 2>/dev/null)" "$dir"' EXIT
    start_pg "$dir"
    port="$(<"$dir/port")"
    [[ "$port" =~ ^[0-9]+$ ]] || fail "no port recorded: $port"
    [[ "$(psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 41 + 1')" == 42 ]] ||
      fail "the cluster does not answer on 127.0.0.1:$port"
    start_pg "$dir"
    [[ "$(<"$dir/port")" == "$port" ]] || fail "a second start_pg did not reuse the running cluster"
    stop_pg "$dir"
    if psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
      fail "the cluster still answers after stop_pg"
    fi
    start_pg "$dir"
    [[ "$(psql -X -At -h 127.0.0.1 -p "$(<"$dir/port")" -U postgres -d postgres -c 'SELECT 1')" == 1 ]] ||
      fail "the cluster did not start again on its data"
    echo "postgres: ok"
    ;;
  citations)
    # The pattern is spelled so that this line does not match it.
    pattern='DESIGN[.]md|STYLE[.]md|[Ii]ssue #?[0-9]'
    if found="$(grep -rInE --exclude-dir=.git --exclude-dir='build*' --exclude-dir=.run \
                  --exclude-dir=node_modules -- "$pattern" "$ROOT")"; then
      echo "${found//"$ROOT/"/}" >&2
      fail "these lines cite a document outside the repository or an issue number: cite docs/design.md or the proto, or say the fact"
    fi
    echo "citations: ok"
    ;;
  *) fail "unknown check: $1" ;;
esac

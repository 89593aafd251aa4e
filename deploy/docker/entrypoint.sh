#!/bin/sh
# Reads the PostgreSQL password from a mounted secret file into libpq's PGPASSWORD (secrets come
# from files, never from the image or the repository), then runs the given command.
set -eu
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  PGPASSWORD="$(cat "$PGPASSWORD_FILE")"
  export PGPASSWORD
fi
exec "$@"

#!/usr/bin/env bash
# Builds everything (UI, then the one `updraft` binary) and runs `updraft serve` on the
# embedded SQLite database in $UPDRAFT_HOME (default ~/updraft) with the example DAGs.
# Extra arguments go to `updraft serve`, e.g. `scripts/run.sh --port 9090`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh ui
scripts/build-ui.sh
cargo build --release --locked -p updraft
export UPDRAFT__CORE__DAGS_FOLDER="${UPDRAFT__CORE__DAGS_FOLDER:-$PWD/examples/dags}"
# As `airflow standalone` does: a random admin password on first run, kept in the home (0600).
# Production sets UPDRAFT__AUTH__ADMIN_PASSWORD(_FILE) or uses `updraft users create`.
home="${UPDRAFT_HOME:-$HOME/updraft}"
if [ -z "${UPDRAFT__AUTH__ADMIN_PASSWORD:-}${UPDRAFT__AUTH__ADMIN_PASSWORD_FILE:-}" ]; then
  mkdir -p "$home"
  pw_file="$home/admin_password.txt"
  if [ ! -s "$pw_file" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$pw_file")
  fi
  export UPDRAFT__AUTH__ADMIN_PASSWORD_FILE="$pw_file"
  echo "API and UI login: admin / the password in $pw_file" >&2
fi
exec "${CARGO_TARGET_DIR:-target}/release/updraft" serve "$@"

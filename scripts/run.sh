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
exec "${CARGO_TARGET_DIR:-target}/release/updraft" serve "$@"

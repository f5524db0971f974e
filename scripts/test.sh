#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what is missing, builds the UI,
# checks formatting and lints, starts a throwaway PostgreSQL server, and runs every test
# (unit, integration on SQLite and PostgreSQL, headless Chromium). Extra arguments go to
# the test runner, e.g. `scripts/test.sh config_errors`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "set-up (installs only what is missing)"
scripts/setup.sh

step "web UI (Trunk, offline; warnings are errors)"
RUSTFLAGS="-D warnings" scripts/build-ui.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy -p updraft-frontend --target wasm32-unknown-unknown --locked -- -D warnings

step "PostgreSQL test server"
eval "$(scripts/pg-test-server.sh start)"
trap 'scripts/pg-test-server.sh stop "$UPDRAFT_TEST_PG_DIR"' EXIT
echo "listening on ${UPDRAFT_TEST_PG_URL##*@}" >&2

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast "$@"
else
  cargo test --locked --no-fail-fast -- "$@"
fi

#!/usr/bin/env bash
# Idempotent set-up: installs what building and testing Updraft needs and is missing.
# Safe to run again and again; each step checks first. Versions are pinned because newer
# ones do not build with this machine's rustc (see docs/development.md).
#
#   scripts/setup.sh          everything (UI toolchain + test servers + browser + contract venv)
#   scripts/setup.sh ui       only what building the UI needs (run command)
set -euo pipefail

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130   # must equal wasm-bindgen in Cargo.lock
BINARYEN_VERSION=132.0.0       # npm binaryen: wasm-opt 132 (Debian's 108 breaks the output)
TOOLS_DIR="${UPDRAFT_TOOLS_DIR:-$HOME/.cache/updraft-tools}"
CONTRACT_VENV="$TOOLS_DIR/contract-venv"   # tests/contract: the Airflow client, schemathesis, ...
CONTRACT_REQS="$(cd "$(dirname "$0")/.." && pwd)/tests/contract/requirements.txt"
what="${1:-all}"

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_missing=()
need_apt() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$1"); }

if [ "$what" = all ]; then
  need_apt postgresql
  need_apt chromium
  need_apt chromium-driver
  need_apt iproute2   # `ip netns`, veth pairs: the network-cut test (tests/integration/scale_out/netcut.rs)
  python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt python3-venv
fi
if [ "${#apt_missing[@]}" -gt 0 ]; then
  log "apt: installing ${apt_missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup: adding wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if ! "$cargo_bin/trunk" --version 2>/dev/null | grep -q " $TRUNK_VERSION"; then
  log "cargo: installing trunk $TRUNK_VERSION (a few minutes, once)"
  cargo install trunk --version "$TRUNK_VERSION" --locked --quiet
fi
if ! "$cargo_bin/wasm-bindgen" --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
  log "cargo: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # --locked fails here: its lockfile wants a webpki-roots the registry does not serve.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --quiet
fi
if ! "$TOOLS_DIR/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  log "npm: installing binaryen $BINARYEN_VERSION into $TOOLS_DIR"
  mkdir -p "$TOOLS_DIR"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR" "binaryen@$BINARYEN_VERSION" >/dev/null 2>&1
fi

if [ "$what" = all ] && ! command -v cargo-nextest >/dev/null 2>&1; then
  log "cargo: installing cargo-nextest"
  cargo install cargo-nextest --locked --quiet
fi
if [ "$what" = all ]; then
  reqs_hash="$(sha256sum "$CONTRACT_REQS" | cut -d' ' -f1)"
  if ! "$CONTRACT_VENV/bin/python" -c '' 2>/dev/null; then
    log "python: creating the contract-test venv $CONTRACT_VENV"
    rm -rf "$CONTRACT_VENV"
    python3 -m venv "$CONTRACT_VENV"
  fi
  if [ "$(cat "$CONTRACT_VENV/.requirements.sha256" 2>/dev/null)" != "$reqs_hash" ]; then
    log "pip: installing tests/contract/requirements.txt into $CONTRACT_VENV"
    "$CONTRACT_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$CONTRACT_REQS"
    echo "$reqs_hash" > "$CONTRACT_VENV/.requirements.sha256"
  fi
fi
log "ok"

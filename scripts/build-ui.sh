#!/usr/bin/env bash
# Builds the web UI into frontend/dist (embedded by the next `cargo build` of `updraft`).
# Offline: uses only tools that scripts/setup.sh installed.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${UPDRAFT_TOOLS_DIR:-$HOME/.cache/updraft-tools}"
export PATH="$TOOLS_DIR/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
for tool in trunk wasm-bindgen wasm-opt; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing: run scripts/setup.sh ui" >&2; exit 2; }
done
# Trunk's own default target dir would be inside the clone; share the workspace's.
trunk build --release "$@"

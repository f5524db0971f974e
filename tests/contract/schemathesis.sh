#!/usr/bin/env bash
# Fuzzes a running server from the committed openapi.yaml. Requirement: zero 5xx responses.
#
#   tests/contract/schemathesis.sh URL TOKEN                  not_a_server_error only (must pass)
#   tests/contract/schemathesis.sh URL TOKEN --conformance    response schema/status/content-type
#                                                             conformance (the softer run)
# URL is the server root (the spec's paths start with /api/v2). Bounded examples and a fixed
# seed keep a run to about a minute and reproducible. Exits non-zero on any failing check.
set -euo pipefail
usage="usage: $0 URL TOKEN [--conformance]"
url="${1:?$usage}"
token="${2:?$usage}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${UPDRAFT_CONTRACT_PYTHON:-$HOME/.cache/updraft-tools/contract-venv/bin/python}"

checks=not_a_server_error
if [ "${3:-}" = --conformance ]; then
  checks=response_schema_conformance,status_code_conformance,content_type_conformance
fi

tmp="$(mktemp -d)"  # schemathesis and hypothesis leave caches in the working directory
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
"$(dirname "$py")/schemathesis" run "$root/openapi.yaml" \
  --url "$url" \
  --header "Authorization: Bearer $token" \
  --checks "$checks" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --seed 20261121 \
  --generation-database none \
  --request-timeout 10 \
  --suppress-health-check all \
  --no-color

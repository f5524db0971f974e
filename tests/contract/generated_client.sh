#!/usr/bin/env bash
# Generates a Python client from the committed openapi.yaml with openapi-python-client and calls
# get_version and get_dags (list DAGs) through it against a running server.
#
#   tests/contract/generated_client.sh URL TOKEN
set -euo pipefail
usage="usage: $0 URL TOKEN"
url="${1:?$usage}"
token="${2:?$usage}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${UPDRAFT_CONTRACT_PYTHON:-$HOME/.cache/updraft-tools/contract-venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

printf 'package_name_override: updraft_client\npost_hooks: []\n' > "$tmp/config.yaml"  # no ruff
"$(dirname "$py")/openapi-python-client" generate --path "$root/openapi.yaml" \
  --config "$tmp/config.yaml" --meta none --output-path "$tmp/updraft_client"
echo "ok generate"

PYTHONPATH="$tmp" "$py" - "$url" "$token" <<'PY'
import importlib, pkgutil, sys
import updraft_client.api
from updraft_client import AuthenticatedClient

url, token = sys.argv[1:]
# Modules sit under api/<tag>/<operationId>.py; find them whatever the tag is called.
ops = {m.name.rsplit(".", 1)[-1]: m.name
       for m in pkgutil.walk_packages(updraft_client.api.__path__, "updraft_client.api.")}
client = AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=False)

def call(op_id, check, **kwargs):
    if op_id not in ops:
        sys.exit(f"FAIL {op_id}: no such operationId in openapi.yaml")
    r = importlib.import_module(ops[op_id]).sync_detailed(client=client, **kwargs)
    if r.status_code != 200 or not check(r.parsed):
        sys.exit(f"FAIL {op_id}: HTTP {r.status_code} parsed={r.parsed!r}\n{r.content[:2000]!r}")
    print(f"ok {op_id}")

call("get_version", lambda v: bool(v.version))
call("get_dags", lambda page: page.total_entries >= len(page.dags), limit=10)
PY

#!/usr/bin/env bash
# Fuzz the HTTP API with schemathesis: a chachaml server over a seeded SQLite store, every
# operation of /api/openapi.json, failing on any 5xx or any response that does not match
# the document. Bounded: FUZZ_EXAMPLES examples per operation, FUZZ_SECONDS in all.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
ST="$(cd "$(dirname "$(command -v "$PYTHON")")" && pwd)/st"
work="$(mktemp -d)"
token="fuzz-token-$RANDOM$RANDOM"
port="$("$PYTHON" -c 'from tests.mcp_seed import free_port; print(free_port())')"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

store="$("$PYTHON" -c 'import sys, anyio, pathlib
from tests.mcp_seed import seeded_store
print(anyio.run(seeded_store, pathlib.Path(sys.argv[1])))' "$work")"
CHACHAML_TOKENS="fuzzer:$token" "$PYTHON" -m chachaml.cli serve --store "$store" \
  --artifacts "$work/artifacts" --port "$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 600); do
  if "$PYTHON" -c 'import sys, httpx; httpx.get(sys.argv[1], timeout=1).raise_for_status()' \
    "http://127.0.0.1:$port/health" 2>/dev/null; then break; fi
  kill -0 "$server" || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done

status=0
cd "$work"  # schemathesis keeps its replay files in the working directory
"$ST" run "http://127.0.0.1:$port/api/openapi.json" \
  --checks not_a_server_error,response_schema_conformance \
  --header "Authorization: Bearer $token" \
  --max-examples "${FUZZ_EXAMPLES:-30}" --max-time "${FUZZ_SECONDS:-300}" \
  --seed "${FUZZ_SEED:-8}" --no-color --warnings off || status=$?
if [ "$status" -ne 0 ]; then tail -n 50 "$work/server.log"; fi
exit "$status"

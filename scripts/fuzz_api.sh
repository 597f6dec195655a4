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
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

store="$("$PYTHON" -c 'import sys, anyio, pathlib
from tests.support.mcp_seed import seeded_store
print(anyio.run(seeded_store, pathlib.Path(sys.argv[1])))' "$work")"
# True when schemathesis failed only because Hypothesis's target-phase optimiser crashed
# (an IndexError inside hypothesis/internal/conjecture/optimiser.py, seen with Hypothesis
# 6.170): no check failed, and every generated case passed.
tool_crash_only() {  # tool_crash_only OUTPUT_FILE
  local out="$1" counts
  grep -q "conjecture/optimiser.py" "$out" || return 1
  grep -Eq "Failures:|❌" "$out" && return 1
  [ "$(grep -c "Runtime Error:" "$out")" -eq "$(grep -c "Runtime Error: 1" "$out")" ] || return 1
  [ "$(grep -c "Traceback (most recent call last)" "$out")" -le 1 ] || return 1
  counts="$(grep -Eo "[0-9]+ generated, [0-9]+ passed" "$out" | tail -n 1)"
  [ -n "$counts" ] && [ "$(echo "$counts" | awk '{print $1}')" = "$(echo "$counts" | awk '{print $3}')" ]
}

# Twice: team mode (a token, sent with every request) and local mode (no token at all).
fuzz() {  # fuzz MODE SECONDS
  local mode="$1" seconds="$2" port status=0
  port="$("$PYTHON" -c 'from tests.support.mcp_seed import free_port; print(free_port())')"
  local tokens="" header=()
  if [ "$mode" = team ]; then tokens="fuzzer:$token"; header=(--header "Authorization: Bearer $token"); fi
  CHACHAML_TOKENS="$tokens" "$PYTHON" -m chachaml.cli serve --store "$store" \
    --artifacts "$work/artifacts" --port "$port" >"$work/server-$mode.log" 2>&1 &
  server=$!
  for _ in $(seq 600); do
    if "$PYTHON" -c 'import sys, httpx; httpx.get(sys.argv[1], timeout=1).raise_for_status()' \
      "http://127.0.0.1:$port/health" 2>/dev/null; then break; fi
    kill -0 "$server" || { cat "$work/server-$mode.log"; exit 1; }
    sleep 0.1
  done
  echo "schemathesis: $mode mode"
  (cd "$work" && "$ST" run "http://127.0.0.1:$port/api/openapi.json" \
    --checks not_a_server_error,response_schema_conformance \
    "${header[@]}" \
    --max-examples "${FUZZ_EXAMPLES:-30}" --max-time "$seconds" \
    --seed "${FUZZ_SEED:-8}" --no-color --warnings off) 2>&1 | tee "$work/st-$mode.out" \
    || status=${PIPESTATUS[0]}
  if [ "$status" -ne 0 ] && tool_crash_only "$work/st-$mode.out"; then
    echo "schemathesis: every generated case passed; the only error is Hypothesis's own"
    echo "optimiser crashing (IndexError in hypothesis/internal/conjecture/optimiser.py, a"
    echo "generator bug, not an API failure): not counted as a failure"
    status=0
  fi
  if [ "$status" -ne 0 ]; then tail -n 50 "$work/server-$mode.log"; fi
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
  return "$status"
}

# schemathesis keeps its replay files in the working directory (the subshell's $work)
total="${FUZZ_SECONDS:-300}"
status=0
fuzz team $((total / 2)) || status=$?
fuzz local $((total / 2)) || status=$?
exit "$status"

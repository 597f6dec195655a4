#!/usr/bin/env bash
# The first hour, scripted: what a new user does on a fresh machine, checked end to end.
#
# A fresh virtualenv, `pip install .`, `chachaml demo`, then the configuration that
# `chachaml mcp config --client claude-desktop` prints, used as it is by a client nobody here
# wrote (the MCP Inspector CLI, started from another folder as a desktop client would):
# its command must exist and be executable, `tools/list` must give the 16 tools, and
# `get_run` must answer the 12-character id that `chachaml runs` prints.
#
# Usage: scripts/newcomer_check.sh [inspector-binary]   (CI runs it after the tests)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
inspector="$(realpath "${1:-$root/.ci/node/node_modules/.bin/mcp-inspector}")"  # it cds away
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$root"
cd "$work"
"$work/venv/bin/chachaml" demo >/dev/null

"$work/venv/bin/chachaml" mcp config --client claude-desktop >"$work/claude_desktop_config.json" 2>/dev/null
command="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mcpServers"]["chachaml"]["command"])' "$work/claude_desktop_config.json")"
[ -x "$command" ] || { echo "newcomer check: configured command $command is not executable" >&2; exit 1; }
case "$command" in /*) ;; *) echo "newcomer check: $command is not an absolute path" >&2; exit 1 ;; esac

short_id="$("$work/venv/bin/chachaml" runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"][:12])')"

cd /  # a desktop client starts the server from its own folder, not from the project's
inspect() {
  env -i PATH="/usr/bin:/bin" HOME="$HOME" "$inspector" --cli --config "$work/claude_desktop_config.json" \
    --server chachaml --method "$@"
}
tools="$(inspect tools/list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tools"]))')"
[ "$tools" = 16 ] || { echo "newcomer check: tools/list gave $tools tools, not 16" >&2; exit 1; }
answer="$(inspect tools/call --tool-name get_run --tool-arg "run_id=$short_id")"
python3 - "$answer" "$short_id" <<'EOF'
import json, sys
result = json.loads(sys.argv[1])
assert not result.get("isError"), result
run = result["structuredContent"]
assert run["id"].startswith(sys.argv[2]) and len(run["id"]) == 32, run["id"]
EOF
echo "newcomer check: pip install ., demo, mcp config, Inspector: 16 tools, get_run $short_id answered"

"""MCP over streamable HTTP through the access layer: ``python bench/bench_mcp_http.py``.

Seeds a SQLite store (the MCP benchmark's seeder, ``--runs`` runs), starts a real
``chachaml serve`` on 127.0.0.1 twice — local mode (no token) and team mode (a token sent
with every call, checked by the access layer) — and prints the p50/p99 round trip of raw
JSON-RPC ``tools/call`` requests (``get_run``, ``best_run``, ``list_runs``) over one
keep-alive connection, plus the team/local ratio: the access layer's cost per MCP call.
Target: team mode's p50 within 5% of local mode's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import server
from bench_mcp import seed

TOKEN = "bench-mcp-http-token"
TARGET = 1.05
CASES: list[tuple[str, dict[str, Any]]] = [
    ("get_run", {"run_id": f"{7:032x}"}),
    ("best_run", {"metric": "acc"}),
    ("list_runs", {"limit": 20}),
]


def time_calls(url: str, headers: dict[str, str], calls: int) -> dict[str, list[float]]:
    """Seconds per ``tools/call`` round trip, per case, calls interleaved across cases."""
    times: dict[str, list[float]] = {name: [] for name, _ in CASES}
    base = {"Accept": "application/json, text/event-stream", **headers}
    with httpx.Client(base_url=url, headers=base, timeout=30) as http:
        for i in range(calls + 50):
            for name, arguments in CASES:
                body = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                        "params": {"name": name, "arguments": arguments}}  # fmt: skip
                start = time.perf_counter()
                answer = http.post("/mcp", json=body)
                elapsed = time.perf_counter() - start
                result = answer.json().get("result", {})
                if answer.status_code != 200 or result.get("isError"):
                    raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:200]}")
                if i >= 50:  # warm-up calls are not counted
                    times[name].append(elapsed)
    return times


def p(samples: list[float], q: float) -> float:
    """The ``q`` quantile in milliseconds."""
    return statistics.quantiles(samples, n=100)[int(q * 100) - 1] * 1000


def main() -> None:
    """Seed once, then local mode and team mode, alternating rounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store")
    parser.add_argument("--calls", type=int, default=500, help="timed calls per tool and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating local/team rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seed(root / "bench.db", args.runs)
        store_url = f"sqlite:///{root / 'bench.db'}"
        modes = {
            "local": ("", {}),
            "team": (f"bench:{TOKEN}", {"Authorization": f"Bearer {TOKEN}"}),
        }
        times: dict[str, dict[str, list[float]]] = {m: {n: [] for n, _ in CASES} for m in modes}
        for _ in range(args.rounds):
            for mode, (tokens, headers) in modes.items():
                with server(root, store_url, tokens) as url:
                    for name, samples in time_calls(url, headers, args.calls).items():
                        times[mode][name].extend(samples)
    print(f"MCP tools/call over streamable HTTP, {args.runs:,} runs, load {os.getloadavg()[0]:.1f}")
    print(f"{'tool':<12}{'local p50':>11}{'p99':>8}{'team p50':>11}{'p99':>8}{'team/local':>12}")
    worst = 0.0
    for name, _ in CASES:
        local, team = times["local"][name], times["team"][name]
        ratio = statistics.median(team) / statistics.median(local)
        worst = max(worst, ratio)
        print(f"{name:<12}{p(local, 0.5):>11.2f}{p(local, 0.99):>8.2f}"
              f"{p(team, 0.5):>11.2f}{p(team, 0.99):>8.2f}{ratio:>11.3f}x")  # fmt: skip
    print(f"(target: team mode's p50 within {TARGET:.2f}x of local mode's; worst {worst:.3f}x)")


if __name__ == "__main__":
    main()

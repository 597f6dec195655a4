"""MCP over streamable HTTP through the access layer: ``python -m bench.mcp_http``.

Over a seeded store, starts a real ``chachaml serve`` on 127.0.0.1 in local mode (no token)
and in team mode (a token sent with every call, checked by the access layer), alternating
rounds, and times raw JSON-RPC ``tools/call`` requests (``get_run``, ``best_run``,
``list_runs``) over one keep-alive connection. The team/local ratio of the p50 is the access
layer's cost per MCP call.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.figures import Figure
from bench.processes import chachaml_serve
from bench.runner import Benchmark, Context, main_one
from bench.seed import run_id
from bench.targets import TARGETS
from bench.timing import step, warm_up

NAME = "mcp_http"
TOKEN = "bench-mcp-http-token"
WARM_UP = 50  # calls not counted (fewer when few calls are timed)
CASES: list[tuple[str, dict[str, Any]]] = [
    ("get_run", {"run_id": run_id(7)}),
    ("best_run", {"metric": "accuracy"}),
    ("list_runs", {"limit": 20}),
]
MODES = {"local": ("", {}), "team": (f"bench:{TOKEN}", {"Authorization": f"Bearer {TOKEN}"})}


@dataclass(frozen=True)
class Size:
    """Runs in the store, timed calls per tool and round, alternating local/team rounds."""

    runs: int
    calls: int
    rounds: int


SIZES = {
    "quick": Size(runs=1_000, calls=50, rounds=1),
    "default": Size(runs=10_000, calls=500, rounds=2),
    "full": Size(runs=10_000, calls=500, rounds=2),
}


def time_calls(url: str, headers: dict[str, str], calls: int) -> dict[str, list[float]]:
    """Seconds per ``tools/call`` round trip, per case, calls interleaved across cases."""
    times: dict[str, list[float]] = {name: [] for name, _ in CASES}
    base = {"Accept": "application/json, text/event-stream", **headers}
    with httpx.Client(base_url=url, headers=base, timeout=30) as http:
        for i in range(calls + warm_up(calls, WARM_UP)):
            for name, arguments in CASES:
                body = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                        "params": {"name": name, "arguments": arguments}}  # fmt: skip
                start = time.perf_counter()
                answer = http.post("/mcp", json=body)
                elapsed = time.perf_counter() - start
                result = answer.json().get("result", {})
                if answer.status_code != 200 or result.get("isError"):
                    raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:200]}")
                if i >= warm_up(calls, WARM_UP):
                    times[name].append(elapsed)
    return times


def measure(size: Size, context: Context) -> list[Figure]:
    """Seed (or copy) once, then local and team mode in alternating rounds."""
    db = context.workdir / "mcp-http.db"
    context.catalogue.copy(size.runs, db)
    times: dict[str, dict[str, list[float]]] = {m: {n: [] for n, _ in CASES} for m in MODES}

    def rounds() -> None:
        for _ in range(size.rounds):
            for mode, (tokens, headers) in MODES.items():
                with chachaml_serve(context.workdir, f"sqlite:///{db}", tokens) as url:
                    for name, samples in time_calls(url, headers, size.calls).items():
                        times[mode][name].extend(samples)

    step(f"{size.rounds} rounds of local and team mode, {size.calls} calls per tool", rounds)
    figures = []
    for name, _ in CASES:
        local = statistics.median(times["local"][name]) * 1e3
        team = statistics.median(times["team"][name]) * 1e3
        figures += [
            Figure(NAME, f"{name} p50, local mode, {size.runs:,} runs", local, "ms", "lower"),
            Figure(NAME, f"{name} p50, team mode, {size.runs:,} runs", team, "ms", "lower",
                   TARGETS["MCP over HTTP, team mode"], local, "local"),
        ]  # fmt: skip
    return figures


BENCHMARK = Benchmark(NAME, "MCP tools/call over HTTP, team mode beside local mode", SIZES, measure)

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))

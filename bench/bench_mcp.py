"""The MCP benchmark: ``python bench/bench_mcp.py [--runs N] [--calls N] [--db PATH]``.

Seeds a SQLite store with N runs (100,000 by default) straight through SQL, launches the
chachaml MCP server over stdio (the same wire and server as ``chachaml mcp``) with one extra
no-op tool (the SDK's floor), and prints the
p50/p99 ``tools/call`` round trip of ``list_runs``, ``best_run`` and ``noop`` over
``--calls`` calls each, plus the time from launching ``chachaml mcp`` to its ``initialize``
answer.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import anyio
import anyio.streams.buffered
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult

from chachaml.server.mcp.runs import RunList  # in the module: the SDK resolves annotations here
from chachaml.server.mcp.stdio import EarlyStdio

EXPERIMENTS = 20
STATUSES = ("completed", "completed", "completed", "failed")
TARGET_RATIO = 2.0
TARGET_START_SECONDS = 1.0


async def _create_schema(url: str) -> None:
    from chachaml.store import open_store

    store = await open_store(url)
    await store.close()


def seed(path: Path, runs: int) -> None:
    """Fill a fresh store with ``runs`` ended runs, each with 2 params and 3 metrics."""
    anyio.run(_create_schema, f"sqlite:///{path}")
    rng = random.Random(42)
    now = time.time()
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO experiments (name, created_at) VALUES (?, ?)",
            [(f"exp-{i}", now - 400 * 86400) for i in range(EXPERIMENTS)],
        )
        run_rows, params, summaries = [], [], []
        for i in range(runs):
            rid = f"{i:032x}"
            started = now - (runs - i) * 300.0
            run_rows.append(
                (
                    rid,
                    1 + i % EXPERIMENTS,
                    f"run-{i}",
                    STATUSES[(i // EXPERIMENTS) % 4],  # every experiment has every status
                    "bench",
                    started,
                    started + 240,
                    started + 240,
                    30.0,
                )
            )
            params += [(rid, "lr", str(rng.choice([0.1, 0.01, 0.001]))), (rid, "depth", str(i % 9))]
            for key, value in (
                ("acc", rng.random()),
                ("loss", rng.random() * 3),
                ("f1", rng.random()),
            ):
                summaries.append((rid, key, value, 99, started + 240, value, value, 100))
        db.executemany(
            "INSERT INTO runs (id, experiment_id, name, status, created_by, started_at, ended_at,"
            " heartbeat_at, heartbeat_timeout) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_rows,
        )
        db.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)", params)
        db.executemany(
            "INSERT INTO metric_summary (run_id, key, last_value, last_step, last_time,"
            " min_value, max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            summaries,
        )
    db.execute("ANALYZE")
    db.close()


async def serve(wire: EarlyStdio, url: str) -> None:
    """The chachaml MCP server on the stdio wire of ``chachaml mcp``, plus two tools only the
    benchmark registers: ``noop`` (the SDK's floor) and ``canned_listing`` (what the SDK alone
    spends on returning a result the size of a 20-run listing)."""
    from chachaml.server.mcp.runs import run_tools
    from chachaml.server.mcp.server import build_mcp
    from chachaml.store import open_store

    store = await open_store(url)
    try:
        server = build_mcp(store)
        list_runs = next(fn for fn in run_tools(store) if fn.__name__ == "list_runs")
        canned = await list_runs()

        async def noop() -> str:
            """Do nothing (the benchmark's floor)."""
            return "ok"

        async def canned_listing() -> Annotated[CallToolResult, RunList]:
            """The answer of list_runs(), computed once."""
            return canned

        server.add_tool(noop)
        server.add_tool(canned_listing)
        await wire.serve(server)
    finally:
        await store.close()


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of the samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def time_calls(client: Client, tool: str, args: dict[str, object], calls: int) -> list[float]:
    """Seconds per ``tools/call`` round trip, after a short warm-up."""
    for _ in range(20):
        await client.call_tool(tool, args)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await client.call_tool(tool, args)
        samples.append(time.perf_counter() - start)
        assert not result.is_error, result.content
    return samples


async def start_to_initialize(command: list[str]) -> float:
    """Seconds from launching a stdio server to its ``initialize`` answer."""
    start = time.perf_counter()
    async with Client(StdioServerParameters(command=command[0], args=command[1:]), mode="legacy"):
        return time.perf_counter() - start


async def time_raw_calls(
    url: str, cases: list[tuple[str, dict[str, object]]], calls: int
) -> list[list[float]]:
    """Round trips of plain JSON-RPC lines to the same stdio server, one case at a time.

    This is the server's own latency: no client library validating results against the
    tools' output schemas (the Python SDK client spends more on that than the server does
    answering a listing of 20 runs).
    """
    proc = await anyio.open_process([sys.executable, __file__, "--serve", url])
    assert proc.stdin is not None and proc.stdout is not None
    lines = anyio.streams.buffered.BufferedByteReceiveStream(proc.stdout)

    async def call(message: dict[str, object]) -> None:
        await proc.stdin.send((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
        if "id" in message:
            await lines.receive_until(b"\n", 1 << 26)

    await call(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
    )
    await call({"jsonrpc": "2.0", "method": "notifications/initialized"})
    results = []
    next_id = 1
    for tool, args in cases:
        samples = []
        for _ in range(calls + 20):  # the first 20 warm up
            start = time.perf_counter()
            await call(
                {
                    "jsonrpc": "2.0",
                    "id": next_id,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": args},
                }
            )
            samples.append(time.perf_counter() - start)
            next_id += 1
        results.append(samples[20:])
    await proc.aclose()
    return results


def print_table(
    title: str, cases: list[tuple[str, dict[str, object]]], timings: list[list[float]]
) -> None:
    """p50/p99 per case and the ratio to the first case (the no-op floor)."""
    print(f"\n{title:<62} {'p50 ms':>8} {'p99 ms':>8} {'p50/floor':>10}")
    floor = percentile(timings[0], 50)
    for (tool, args), samples in zip(cases, timings, strict=True):
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        label = f"{tool}({', '.join(f'{k}={v}' for k, v in args.items())})"
        print(f"{label:<62} {p50 * 1000:8.2f} {p99 * 1000:8.2f} {p50 / floor:9.2f}x")


async def measure(url: str, calls: int) -> None:
    chachaml = str(Path(sys.executable).with_name("chachaml"))
    starts = [await start_to_initialize([chachaml, "mcp", "--store", url]) for _ in range(5)]
    print(
        "chachaml mcp: start to initialize answered, median of 5:"
        f" {statistics.median(starts):.3f} s"
        f" (target <= {TARGET_START_SECONDS} s)"
    )
    cases: list[tuple[str, dict[str, object]]] = [
        ("noop", {}),
        ("canned_listing", {}),
        ("list_runs", {}),
        ("list_runs", {"experiment": "exp-3", "status": "completed"}),
        ("best_run", {"metric": "acc"}),
        ("best_run", {"metric": "loss", "direction": "min", "experiment": "exp-7"}),
    ]
    print_table(
        "tools/call over stdio, raw JSON-RPC", cases, await time_raw_calls(url, cases, calls)
    )
    params = StdioServerParameters(command=sys.executable, args=[__file__, "--serve", url])
    async with Client(params, mode="legacy") as client:
        timings = [await time_calls(client, tool, args, calls) for tool, args in cases]
    print_table("tools/call over stdio, mcp SDK client (validates results)", cases, timings)
    print(f"(target: p50 within {TARGET_RATIO}x of the noop floor, judged on raw JSON-RPC)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the store")
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per tool")
    parser.add_argument("--db", type=Path, help="reuse (or create) this SQLite file")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        anyio.run(serve, EarlyStdio(version=""), args.serve)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            start = time.perf_counter()
            seed(path, args.runs)
            print(f"seeded {args.runs:,} runs in {time.perf_counter() - start:.1f} s")
        anyio.run(measure, f"sqlite:///{path}", args.calls)


if __name__ == "__main__":
    main()

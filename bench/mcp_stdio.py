"""The MCP benchmark: ``python -m bench.mcp_stdio [--quick|--full] [--runs N] [--calls N]``.

Over a seeded store, launches the chachaml MCP server over stdio (the wire of ``chachaml
mcp``) with two tools only the benchmark registers: ``noop`` (the SDK's floor) and
``canned_listing`` (list_runs' default listing computed once: what the SDK alone spends on
a result that size). Figures: the time from launching ``chachaml mcp`` to its ``initialize`` answer,
and the p50 ``tools/call`` round trip of each tool beside the floor, over raw JSON-RPC (the
server's own latency: the target is judged here) and through the SDK client (which also
validates every result against the tool's output schema).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Annotated

import anyio
import anyio.streams.buffered
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult

from bench.figures import Figure
from bench.processes import child_env, module_command
from bench.runner import Benchmark, Context, main_one
from bench.targets import TARGETS
from bench.timing import percentile, step, warm_up
from chachaml.server.mcp.runs import RunList  # in the module: the SDK resolves annotations here
from chachaml.server.mcp.stdio import EarlyStdio

NAME = "mcp_stdio"
WARM_UP = 20  # calls not counted (fewer when few calls are timed)
CASES: list[tuple[str, dict[str, object]]] = [
    ("noop", {}),
    ("canned_listing", {}),
    ("list_runs", {}),
    ("list_runs", {"experiment": "exp-3", "status": "completed"}),
    ("best_run", {"metric": "accuracy"}),
    ("best_run", {"metric": "loss", "direction": "min", "experiment": "exp-7"}),
]


@dataclass(frozen=True)
class Size:
    """Runs in the store, timed calls per tool, launches of ``chachaml mcp``."""

    runs: int
    calls: int
    starts: int


SIZES = {
    "quick": Size(runs=1_000, calls=100, starts=2),
    "default": Size(runs=10_000, calls=500, starts=5),
    "full": Size(runs=100_000, calls=1_000, starts=5),
}


async def serve(wire: EarlyStdio, url: str) -> None:
    """The chachaml MCP server on ``wire`` plus ``noop`` and ``canned_listing``."""
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


def server_params(url: str) -> StdioServerParameters:
    """This module's ``--serve`` mode as a stdio server (the SDK passes no PYTHONPATH itself)."""
    command = module_command("bench.mcp_stdio", "--serve", url)
    return StdioServerParameters(command=command[0], args=command[1:], env=child_env())


async def start_to_initialize(url: str) -> float:
    """Seconds from launching ``chachaml mcp`` to its ``initialize`` answer."""
    command = module_command("chachaml.cli", "mcp", "--store", url)
    params = StdioServerParameters(command=command[0], args=command[1:], env=child_env())
    start = time.perf_counter()
    async with Client(params, mode="legacy"):
        return time.perf_counter() - start


async def raw_calls(url: str, calls: int) -> list[list[float]]:
    """Seconds per round trip of plain JSON-RPC lines to the stdio server, per case."""
    proc = await anyio.open_process(module_command("bench.mcp_stdio", "--serve", url),
                                    env=child_env())  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    stdin, lines = proc.stdin, anyio.streams.buffered.BufferedByteReceiveStream(proc.stdout)

    async def call(message: dict[str, object]) -> None:
        await stdin.send((json.dumps(message) + "\n").encode())
        if "id" in message:
            answer = json.loads(await lines.receive_until(b"\n", 1 << 26))
            if "error" in answer or answer.get("result", {}).get("isError"):
                raise RuntimeError(f"{message}: {str(answer)[:300]}")

    await call({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}})  # fmt: skip
    await call({"jsonrpc": "2.0", "method": "notifications/initialized"})
    results = []
    next_id = 1
    for tool, args in CASES:
        samples = []
        for _ in range(calls + warm_up(calls, WARM_UP)):
            message = {"jsonrpc": "2.0", "id": next_id, "method": "tools/call",
                       "params": {"name": tool, "arguments": args}}  # fmt: skip
            start = time.perf_counter()
            await call(message)
            samples.append(time.perf_counter() - start)
            next_id += 1
        results.append(samples[warm_up(calls, WARM_UP) :])
    await proc.aclose()
    return results


async def sdk_calls(url: str, calls: int) -> list[list[float]]:
    """Seconds per ``tools/call`` through the SDK client, per case."""
    results = []
    async with Client(server_params(url), mode="legacy") as client:
        for tool, args in CASES:
            samples = []
            for i in range(calls + warm_up(calls, WARM_UP)):
                start = time.perf_counter()
                result = await client.call_tool(tool, args)
                if i >= warm_up(calls, WARM_UP):
                    samples.append(time.perf_counter() - start)
                if result.is_error:
                    raise RuntimeError(f"{tool}: {result.content}")
            results.append(samples)
    return results


def label(tool: str, args: dict[str, object]) -> str:
    """``best_run(metric=accuracy)``."""
    return f"{tool}({', '.join(f'{k}={v}' for k, v in args.items())})"


def measure(size: Size, context: Context) -> list[Figure]:
    """Seed (or copy) the store, then the start time and both tables of round trips."""
    db = context.workdir / "mcp.db"
    context.catalogue.copy(size.runs, db)
    url = f"sqlite:///{db}"

    async def starts() -> list[float]:
        return [await start_to_initialize(url) for _ in range(size.starts)]

    start = statistics.median(
        step(f"chachaml mcp start x {size.starts}", lambda: anyio.run(starts))
    )
    figures = [Figure(NAME, "chachaml mcp, start to initialize", start, "s", "lower",
                      TARGETS["MCP start"])]  # fmt: skip
    for how, fn, target in (
        ("raw JSON-RPC", raw_calls, TARGETS["MCP tools/call"]),
        ("SDK client", sdk_calls, None),
    ):
        timings = step(f"tools/call x {size.calls} per tool, {how}",
                       partial(anyio.run, fn, url, size.calls))  # fmt: skip
        floor = percentile(timings[0], 50) * 1e3
        for (tool, args), samples in zip(CASES, timings, strict=True):
            name = f"{how}: {label(tool, args)} p50, {size.runs:,} runs"
            p50 = percentile(samples, 50) * 1e3
            if tool == "noop":
                figures.append(Figure(NAME, name, p50, "ms", "lower"))
                continue
            judged = target if tool in ("list_runs", "best_run") else None  # issue 3's tools
            figures.append(Figure(NAME, name, p50, "ms", "lower", judged, floor, "floor"))
    return figures


BENCHMARK = Benchmark(NAME, "chachaml mcp start; tools/call over stdio beside a no-op floor",
                      SIZES, measure)  # fmt: skip

if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        anyio.run(serve, EarlyStdio(version=""), sys.argv[2])
    else:
        sys.exit(main_one(BENCHMARK))

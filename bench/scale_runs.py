"""Issue 22's million runs, the ``runs`` part of ``python -m bench scale``.

A store of ``runs`` runs (5 params, 3 metrics, 3 tags each, over
50 experiments) is seeded through the store's own bulk path (``Tx.insert_rows``: COPY on
PostgreSQL; the metrics through ``log_metrics``, whatever the chunk format), then timed on
SQLite and on PostgreSQL:

- ``best_run`` and a ``search_runs`` threshold query, in process (<= 25 ms p50);
- the Runs page, server time through the ASGI app: by start, by a metric, one experiment
  (<= 150 ms p50);
- MCP ``list_runs`` and ``best_run`` over stdio raw JSON-RPC beside the SDK's no-op floor,
  served as ``bench.mcp_stdio --serve`` serves them (<= 1.5x the floor), and beside
  ``canned_listing`` (list_runs' answer computed once: the SDK's own share of a listing).

Seeding a million runs took 23 min (SQLite) and 21 min (PostgreSQL) at load 7-12 on 2 cores;
the SQLite store is kept in the catalogue's folder (``--seeds``) as ``scale-runs-<n>.db`` and
reused. The PostgreSQL schema is made, VACUUM ANALYZEd and dropped. ``--full`` is the issue's
million; ``--runs 20000`` skips seeding a million on a laptop.

Each MCP tool is judged by its ratio to the floor, beside the issue's ratio from before (at
100,000 runs: ``list_runs`` 1.9x, ``best_run`` 1.3x).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.streams.buffered
import asyncpg
import httpx

from bench import postgres
from bench.figures import Figure
from bench.processes import child_env, module_command
from bench.runner import Context
from bench.seed import STATUSES, point, run_id, run_values
from bench.targets import TARGETS
from bench.timing import percentile, step, time_async, warm_up
from chachaml.server.app import create_app
from chachaml.store import Store, open_store
from chachaml.store.sql.database import Tx
from chachaml.store.sql.rows import encode_param
from chachaml.tools import runs as run_ops

NAME = "scale"
EXPERIMENTS = 50
BLOCK = 20_000  # runs per bulk transaction
THRESHOLD = 0.99  # search_runs accuracy > THRESHOLD: about 1% of the runs
SEARCH_LIMIT = 100
TEAMS = ("vision", "nlp", "speech", "tabular")
WARM_UP = 20
PAGES = {
    "Runs page by start": "/runs",
    "Runs page by a metric": "/runs?sort=accuracy&dir=max",
    "Runs page, one experiment": "/runs?experiment=exp-7",
}
MCP_CASES: list[tuple[str, dict[str, object]]] = [
    ("noop", {}),
    ("canned_listing", {}),  # list_runs' answer computed once: what the SDK alone spends on it
    ("list_runs", {}),
    ("best_run", {"metric": "accuracy"}),
]
BEFORE = {"list_runs": 1.9, "best_run": 1.3}  # issue 22: p50 / floor at 100,000 runs, before


def tags_of(i: int) -> dict[str, str]:
    """Seeded run ``i``'s 3 tags."""
    return {"team": TEAMS[i % len(TEAMS)], "seed": str(i % 10), "dataset": f"ds-{i % 7}"}


async def seed_bulk(store: Store, count: int, anchor: float) -> None:
    """Write ``count`` finished runs with the store's bulk path, :data:`BLOCK` per write.

    Run ``i`` is :mod:`bench.seed`'s run ``i`` (id, params, metrics, status, times) in
    experiment ``exp-{i % 50}``, plus :func:`tags_of`. No events are written: a bulk load is
    not a stream of state changes (as :mod:`chachaml.store.transfer` copies).
    """
    sql = store.database  # type: ignore[attr-defined]
    ids = {}
    for e in range(EXPERIMENTS):
        ids[e] = (await store.create_experiment(f"exp-{e}")).id
    for first in range(0, count, BLOCK):
        block = range(first, min(first + BLOCK, count))
        values = {i: run_values(random.Random(i)) for i in block}
        runs, params, tags = [], [], []
        for i in block:
            started = anchor - 30.0 * (i + 1)
            status = STATUSES[(i // EXPERIMENTS) % len(STATUSES)]
            runs.append((run_id(i), ids[i % EXPERIMENTS], f"run-{i}", status, "bench", started,
                         started + 20.0, started + 20.0, 32.0, "{}"))  # fmt: skip
            params += [(run_id(i), k, encode_param(v)) for k, v in values[i].params.items()]
            tags += [(run_id(i), k, v, "bench", started) for k, v in tags_of(i).items()]

        async def body(db: Tx, runs: list[Any] = runs, params: list[Any] = params,
                       tags: list[Any] = tags) -> None:  # fmt: skip
            await db.insert_rows("runs", ("id", "experiment_id", "name", "status", "created_by",
                                          "started_at", "ended_at", "heartbeat_at",
                                          "heartbeat_timeout", "environment"), runs)  # fmt: skip
            await db.insert_rows("params", ("run_id", "key", "value"), params)
            await db.insert_rows("tags", ("run_id", "key", "value", "set_by", "set_at"), tags)

        await sql.transact(body)
        await store.log_metrics(
            [
                point(run_id(i), key, value, anchor - 30.0 * (i + 1) + 19.0)
                for i in block
                for key, value in values[i].metrics.items()
            ]
        )


def best_accuracy(count: int) -> tuple[str, list[str]]:
    """The best seeded run by accuracy, and the ids above :data:`THRESHOLD`, best first."""
    accuracy = {run_id(i): run_values(random.Random(i)).metrics["accuracy"] for i in range(count)}
    above = sorted((r for r, a in accuracy.items() if a > THRESHOLD), key=accuracy.__getitem__,
                   reverse=True)  # fmt: skip
    return max(accuracy, key=accuracy.__getitem__), above[:SEARCH_LIMIT]


def seed_url(url: str, count: int) -> float:
    """Seed ``count`` runs into the (empty) store at ``url``; seconds taken."""

    async def body() -> None:
        store = await open_store(url)
        try:
            await seed_bulk(store, count, time.time() - 86_400)
        finally:
            await store.close()

    started = time.perf_counter()
    anyio.run(body)
    return time.perf_counter() - started


def sqlite_store(root: Path, count: int) -> tuple[Path, float]:
    """A seeded SQLite file of ``count`` runs in ``root`` (kept, reused); seconds seeding."""
    db = root / f"scale-runs-{count}.db"
    if db.exists():
        return db, 0.0
    partial = root / f"scale-runs-{count}.partial.db"
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    seconds = seed_url(f"sqlite:///{partial}", count)
    partial.rename(db)  # the store was closed: its WAL is checkpointed
    return db, seconds


async def time_in_process(url: str, count: int, calls: int) -> dict[str, list[float]]:
    """``best_run``, a ``search_runs`` threshold query and the Runs pages, checked, then timed."""
    best, above = best_accuracy(count)
    store = await open_store(url)
    try:
        found = await run_ops.best_run(store, "accuracy")
        if found is None or found.run.id != best:
            raise RuntimeError(f"best_run found {found and found.run.id}, the best is {best}")

        async def search() -> list[str]:
            runs = await run_ops.search_runs(
                store, metric_key="accuracy", op=">", metric_value=THRESHOLD, limit=SEARCH_LIMIT
            )
            return [r.id for r in runs]

        if await search() != above:
            raise RuntimeError("search_runs did not return the best runs above the threshold")
        timings = {
            "best_run": await time_async(lambda: run_ops.best_run(store, "accuracy"), calls),
            "search_runs threshold": await time_async(search, calls),
        }
        transport = httpx.ASGITransport(app=create_app(store, user="bench"))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for label, path in PAGES.items():

                async def get(path: str = path) -> None:
                    answer = await client.get(path)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{path} answered {answer.status_code}")

                timings[label] = await time_async(get, calls)
        return timings
    finally:
        await store.close()


async def time_mcp(url: str, calls: int) -> dict[str, list[float]]:
    """Milliseconds per raw JSON-RPC ``tools/call`` over stdio to ``bench.mcp_stdio``'s server
    (the chachaml tools plus ``noop``, the SDK's floor), per tool, calls interleaved."""
    proc = await anyio.open_process(module_command("bench.mcp_stdio", "--serve", url),
                                    env=child_env())  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    stdin, lines = proc.stdin, anyio.streams.buffered.BufferedByteReceiveStream(proc.stdout)
    ids = iter(range(1, 1 << 30))

    async def call(method: str, params: dict[str, Any], answer: bool = True) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if answer:
            message["id"] = next(ids)
        await stdin.send((json.dumps(message) + "\n").encode())
        if answer:
            reply = json.loads(await lines.receive_until(b"\n", 1 << 26))
            if "error" in reply or reply.get("result", {}).get("isError"):
                raise RuntimeError(f"{message}: {str(reply)[:300]}")

    try:
        await call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "bench", "version": "1"}})  # fmt: skip
        await call("notifications/initialized", {}, answer=False)
        times: dict[str, list[float]] = {tool: [] for tool, _ in MCP_CASES}
        for i in range(calls + warm_up(calls, WARM_UP)):
            for tool, args in MCP_CASES:
                start = time.perf_counter()
                await call("tools/call", {"name": tool, "arguments": args})
                if i >= warm_up(calls, WARM_UP):
                    times[tool].append((time.perf_counter() - start) * 1e3)
        return times
    finally:
        await proc.aclose()


async def vacuum(schema: str) -> None:
    """VACUUM ANALYZE the schema's tables: what autovacuum does after a bulk load (this
    machine's server runs with autovacuum off), so index-only scans skip the heap."""
    conn = await asyncpg.connect(postgres.POSTGRES)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        for row in tables:
            await conn.execute(f'VACUUM (ANALYZE) {schema}."{row[0]}"')
    finally:
        await conn.close()


@contextmanager
def seeded(backend: str, runs: int, context: Context) -> Iterator[str]:
    """A store URL holding ``runs`` seeded runs on ``backend``."""
    if backend == "sqlite":
        root = context.catalogue.root
        db, seconds = step(f"SQLite store of {runs:,} runs",
                           lambda: sqlite_store(root, runs))  # fmt: skip
        context.notes.append(
            f"{NAME} runs: seeded {runs:,} runs into SQLite in {seconds:.0f} s"
            if seconds
            else f"{NAME} runs: the SQLite store of {runs:,} runs was seeded before (--seeds)"
        )
        yield f"sqlite:///{db}"
        return
    with postgres.postgres_schema() as (url, schema):
        seconds = step(f"PostgreSQL schema of {runs:,} runs", lambda: seed_url(url, runs))
        step("VACUUM ANALYZE", lambda: anyio.run(vacuum, schema))
        context.notes.append(
            f"{NAME} runs: seeded {runs:,} runs into PostgreSQL in {seconds:.0f} s"
        )
        yield url


def figures_of(backend: str, runs: int, timings: dict[str, list[float]]) -> list[Figure]:
    """The p50 of each timing beside its target; each MCP tool's ratio to the no-op floor
    judged beside the issue's ratio from before."""
    at = f"{runs:,} runs, {'SQLite' if backend == 'sqlite' else 'PostgreSQL'}"
    floor = percentile(timings["MCP noop"], 50)
    out = []
    for label, samples in timings.items():
        p50 = percentile(samples, 50)
        if label in ("best_run", "search_runs threshold"):
            out.append(Figure(NAME, f"{label} p50, {at}", p50, "ms", "lower",
                              TARGETS["query, 1M runs"]))  # fmt: skip
        elif label in PAGES:
            out.append(Figure(NAME, f"{label} p50, {at}", p50, "ms", "lower",
                              TARGETS["Runs page, 1M runs"]))  # fmt: skip
        elif label == "MCP noop":
            out.append(Figure(NAME, f"MCP noop (the floor) p50, {at}", p50, "ms", "lower"))
        else:
            out.append(Figure(NAME, f"{label} p50, {at}", p50, "ms", "lower", None, floor,
                              "floor"))  # fmt: skip
            tool = label.removeprefix("MCP ")
            if tool in BEFORE:
                out.append(Figure(NAME, f"{label} / floor, {at}", p50 / floor, "x floor",
                                  "lower", TARGETS["MCP tools/call, 1M runs"], BEFORE[tool],
                                  "before"))  # fmt: skip
    return out


def measure(runs: int, calls: int, backends: Sequence[str], context: Context) -> list[Figure]:
    """On each backend: seed (or reuse) the store, then time the queries, pages and MCP tools."""
    figures: list[Figure] = []
    for backend in backends:
        if backend == "postgresql" and (reason := postgres.unavailable()) is not None:
            context.notes.append(f"{NAME} runs: PostgreSQL not measured ({reason})")
            continue
        with seeded(backend, runs, context) as url:
            timings = step(
                f"{backend}: queries and Runs pages x {calls}",
                lambda: anyio.run(time_in_process, url, runs, calls),
            )
            mcp = step(f"{backend}: MCP tools/call x {calls}",
                       lambda: anyio.run(time_mcp, url, calls))  # fmt: skip
        timings |= {f"MCP {tool}": samples for tool, samples in mcp.items()}
        figures += figures_of(backend, runs, timings)
    return figures

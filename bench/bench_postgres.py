"""The PostgreSQL column: ``python bench/bench_postgres.py [--quick]``.

Ingest (points/s from the first ``log_metric`` until ``flush()`` returns) and ``best_run`` /
``search_runs`` latency at 10,000 and 100,000 runs, on PostgreSQL and on SQLite in the same
run, with the ratio. Targets: ingest >= 500,000 points/s on PostgreSQL; queries within 2x of
SQLite. Needs the PostgreSQL server at ``CHACHAML_BENCH_POSTGRES`` (default: the machine's
``postgresql://postgres@127.0.0.1:5432/test``); each run uses a fresh schema, dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from bench_tracking import (
    EXPERIMENT,
    HEARTBEAT_TIMEOUT,
    Leaderboard,
    log_points,
    run_values,
    time_queries,
)

from chachaml.client.client import Client
from chachaml.settings import Settings
from chachaml.store.codec import make_chunk
from chachaml.store.rows import encode_param
from chachaml.store.sql_driver import Tx
from chachaml.store.sql_store import SQLStore

POSTGRES = os.environ.get("CHACHAML_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A store URL on a fresh schema of the benchmark database, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    anyio.run(admin, f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}search_path={schema}"
    finally:
        anyio.run(admin, f"DROP SCHEMA {schema} CASCADE")


def seed(client: Client, count: int, rng: random.Random, board: Leaderboard) -> None:
    """Add ``count`` completed runs to the query experiment through the store's own driver.

    The same rows API-made runs leave (runs, params, one packed chunk and one summary per
    metric), bulk-inserted in one transaction (COPY on PostgreSQL).
    """
    runtime = client.runtime
    store = runtime.store
    assert isinstance(store, SQLStore)
    now = time.time()
    runs: list[tuple[Any, ...]] = []
    params: list[tuple[Any, ...]] = []
    chunks: list[tuple[Any, ...]] = []
    summaries: list[tuple[Any, ...]] = []
    for i in range(count):
        run_id = uuid.uuid4().hex
        started = now - 86_400 - 30.0 * (count - i)
        ended = started + 20.0
        values = run_values(rng)
        runs.append((run_id, f"seeded-{i}", started, ended, ended))
        params += [(run_id, k, encode_param(v)) for k, v in values.params.items()]
        for key, value in values.metrics.items():
            c = make_chunk(run_id, key, [(0, value, ended - 1.0)])
            chunks.append((run_id, key, c.count, c.steps, c.values, c.timestamps))
            summaries.append(
                (run_id, key, c.last_value, 0, c.last_time, c.min_value, c.max_value, 1)
            )
        board.add(run_id, values.metrics["accuracy"])

    async def body(db: Tx) -> None:
        ((exp_id,),) = await db.fetchall("SELECT id FROM experiments WHERE name = ?", (EXPERIMENT,))
        await db.insert_rows(
            "runs",
            [
                "id",
                "experiment_id",
                "name",
                "status",
                "created_by",
                "started_at",
                "ended_at",
                "heartbeat_at",
                "heartbeat_timeout",
                "environment",
                "archived",
            ],
            [
                (
                    r[0],
                    exp_id,
                    r[1],
                    "completed",
                    "bench",
                    r[2],
                    r[3],
                    r[4],
                    HEARTBEAT_TIMEOUT,
                    "{}",
                    0,
                )
                for r in runs
            ],
        )
        await db.insert_rows("params", ("run_id", "key", "value"), params)
        await db.insert_rows(
            "metric_chunks", ("run_id", "key", "count", "steps", "vals", "times"), chunks
        )
        await db.insert_rows(
            "metric_summary",
            [
                "run_id",
                "key",
                "last_value",
                "last_step",
                "last_time",
                "min_value",
                "max_value",
                "count",
            ],
            summaries,
        )

    runtime.call(store._transact, body)
    runtime.call(store._transact, _analyze)  # what autovacuum does for a table that grew


async def _analyze(db: Tx) -> None:
    await db.execute("ANALYZE")


def measure(url: str, points: int, sizes: list[int], repeats: int) -> dict[str, Any]:
    """Ingest and query figures for the store at ``url``."""
    with tempfile.TemporaryDirectory(prefix="chachaml-bench-") as tmp:
        client = Client(url, tmp, settings=Settings(user="bench"))
        try:
            logging = log_points(client, points)
            rng = random.Random(3)
            board = Leaderboard()
            client.create_experiment(EXPERIMENT)
            queries = []
            for size in sizes:
                seed(client, size - len(board), rng, board)
                q = time_queries(client, board, repeats)
                queries.append(
                    {
                        "runs": q.runs,
                        "best_run_ms": q.best_run_ms,
                        "search_runs_ms": q.search_runs_ms,
                    }
                )
        finally:
            client.close()
    return {"points_per_s": logging.points_per_s, "queries": queries}


def main(argv: list[str] | None = None) -> int:
    """Measure both stores and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 30 s)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    points, sizes, repeats = (
        (100_000, [2_000, 10_000], 10) if args.quick else (1_000_000, [10_000, 100_000], 30)
    )
    with tempfile.TemporaryDirectory(prefix="chachaml-sqlite-") as tmp:
        sqlite = measure(f"sqlite:///{Path(tmp) / 'bench.db'}", points, sizes, repeats)
    with postgres_schema() as url:
        postgres = measure(url, points, sizes, repeats)
    rows = [("ingest points/s", sqlite["points_per_s"], postgres["points_per_s"], ">= 500,000/s")]
    for s, p in zip(sqlite["queries"], postgres["queries"], strict=True):
        for key in ("best_run_ms", "search_runs_ms"):
            rows.append((f"{key[:-3]} ms ({s['runs']:,} runs)", s[key], p[key], "<= 2x SQLite"))
    print(f"{'figure':<34}{'SQLite':>14}{'PostgreSQL':>14}{'PG/SQLite':>11}  target        result")
    for figure, lite, pg, target in rows:
        ratio = pg / lite
        ingest = figure.startswith("ingest")
        verdict = "pass" if (pg >= 500_000 if ingest else ratio <= 2.0) else "FAIL"
        digits = 0 if ingest else 2
        print(
            f"{figure:<34}{lite:>14,.{digits}f}{pg:>14,.{digits}f}{ratio:>10.2f}x"
            f"  {target:<12}  {verdict}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"sqlite": sqlite, "postgresql": postgres}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

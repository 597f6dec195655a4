"""The PostgreSQL column: ``python -m bench.postgres [--quick|--full] [--query-sizes N ...]``.

Ingest (points/s from the first ``log_metric`` until ``flush()`` returns) and ``best_run`` /
``search_runs`` latency on PostgreSQL beside SQLite in the same run, the same seeded runs in
both. Needs the PostgreSQL server at ``CHACHAML_BENCH_POSTGRES`` (default: the machine's
``postgresql://postgres@127.0.0.1:5432/test``); each run uses a fresh schema, dropped after.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import anyio
import asyncpg

from bench.figures import Figure
from bench.runner import Benchmark, Context, main_one
from bench.seed import Leaderboard, seed
from bench.targets import TARGETS
from bench.timing import step
from bench.tracking import QueryResult, log_points, make_client, opened, time_queries

NAME = "postgres"
POSTGRES = os.environ.get("CHACHAML_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Size:
    """Points logged, store sizes queried, timed repeats per query."""

    points: int
    query_sizes: tuple[int, ...]
    repeats: int


SIZES = {
    "quick": Size(points=100_000, query_sizes=(1_000,), repeats=10),
    "default": Size(points=1_000_000, query_sizes=(10_000,), repeats=30),
    "full": Size(points=1_000_000, query_sizes=(10_000, 100_000), repeats=30),
}


async def _admin(sql: str) -> list[str]:
    conn = await asyncpg.connect(POSTGRES)
    try:
        return [str(r[0]) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def unavailable() -> str | None:
    """Why PostgreSQL cannot be measured here, or ``None``."""
    try:
        anyio.run(_admin, "SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        return f"no PostgreSQL at {POSTGRES}: {exc}"
    return None


@contextmanager
def postgres_schema() -> Iterator[tuple[str, str]]:
    """A store URL on a fresh schema of the benchmark database, and the schema; dropped after."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    anyio.run(_admin, f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}search_path={schema}", schema
    finally:
        anyio.run(_admin, f"DROP SCHEMA {schema} CASCADE")


def analyze(schema: str) -> None:
    """ANALYZE the schema's tables: what autovacuum does soon after a table grows."""
    tables = anyio.run(_admin, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'")
    for table in tables:
        anyio.run(_admin, f'ANALYZE {schema}."{table}"')


def measure(size: Size, context: Context) -> list[Figure]:
    """SQLite (copies of the seeded store) and PostgreSQL (seeded the same way), side by side."""
    lite: list[QueryResult] = []
    pg: list[QueryResult] = []
    with opened(context.workdir / "ingest.db") as client:
        lite_ingest = step(
            f"SQLite: {size.points:,} points", lambda: log_points(client, size.points)
        )
    for n in size.query_sizes:
        db = context.workdir / f"queries-{n}.db"
        board = context.catalogue.copy(n, db)
        with opened(db) as client:
            lite.append(step(f"SQLite: queries at {n:,} runs",
                             partial(time_queries, client, board, size.repeats)))  # fmt: skip
    with postgres_schema() as (url, schema):
        client = make_client(url, context.workdir / "pg-artifacts")
        try:
            pg_ingest = step(f"PostgreSQL: {size.points:,} points",
                             lambda: log_points(client, size.points))  # fmt: skip
            board = Leaderboard()
            for n in size.query_sizes:
                grown = step(f"PostgreSQL: seeding to {n:,} runs",
                             partial(seed, url, n - len(board), len(board)))  # fmt: skip
                board.accuracy.update(grown.accuracy)
                analyze(schema)
                pg.append(step(f"PostgreSQL: queries at {n:,} runs",
                               lambda: time_queries(client, board, size.repeats)))  # fmt: skip
        finally:
            client.close()
    figures = [
        Figure(NAME, f"ingest of {size.points:,} points to flush", pg_ingest.points_per_s,
               "points/s", "higher", TARGETS["PostgreSQL ingest"], lite_ingest.points_per_s,
               "SQLite"),
    ]  # fmt: skip
    for q_lite, q_pg in zip(lite, pg, strict=True):
        for name, ours, theirs in (
            ("best_run", q_pg.best_run_ms, q_lite.best_run_ms),
            ("search_runs", q_pg.search_runs_ms, q_lite.search_runs_ms),
        ):
            figures.append(Figure(NAME, f"{name}, {q_pg.runs:,} runs", ours, "ms", "lower",
                                  TARGETS["PostgreSQL query"], theirs, "SQLite"))  # fmt: skip
    return figures


BENCHMARK = Benchmark(NAME, "ingest and queries on PostgreSQL beside SQLite", SIZES, measure,
                      unavailable)  # fmt: skip

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))

"""Issue 22's storage part of ``python -m bench scale``: metric points on disk, ingest, history.

On SQLite and on PostgreSQL: what a point adds on disk (the SQLite file's growth, its WAL
checkpointed; ``pg_total_relation_size`` of ``metric_chunks`` on PostgreSQL, its index and
TOAST included, over an empty store's), ingest from the first ``log_metric`` to ``flush()``,
and ``metric_history`` of every point (with ``to_numpy()``, its columnar result). Three
series: the tracking benchmark's (a constant, steps and times of a tight loop), a float32
loss (what ``loss.item()`` gives: a noisy decay stored as float64) and float64 noise (no
compressor's friend).
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import anyio
import asyncpg

from bench.figures import Figure
from bench.postgres import POSTGRES, postgres_schema
from bench.postgres import unavailable as no_postgres
from bench.runner import Context
from bench.targets import TARGETS
from bench.timing import step
from bench.tracking import make_client
from chachaml.client.client import Client

NAME = "scale"
KEY = "series"


BEFORE = {  # issue 22's figures, measured before chunks were compressed
    "bytes": 28.3,  # SQLite, the tracking benchmark's series
    "ingest": 1_140_000.0,  # SQLite, points/s to flush
    "history": 285.0,  # ms, a 1,000,000-point metric_history on SQLite
}


def constant(n: int) -> list[float]:
    """The tracking benchmark's series: ``log_metric("loss", 0.5)`` in a loop."""
    return [0.5] * n


def float32_loss(n: int) -> list[float]:
    """A decaying, noisy loss rounded to float32, as a framework's ``loss.item()`` gives it."""
    rng = random.Random(22)
    single = struct.Struct("f")
    return [single.unpack(single.pack(2.0 / (1 + i / 5e3) + rng.gauss(0, 0.02)))[0]
            for i in range(n)]  # fmt: skip


def float64_noise(n: int) -> list[float]:
    """Full-precision noise: every mantissa bit random."""
    rng = random.Random(22)
    return [rng.random() for _ in range(n)]


SERIES: dict[str, Callable[[int], list[float]]] = {
    "constant": constant,
    "float32 loss": float32_loss,
    "float64 noise": float64_noise,
}


@dataclass(frozen=True)
class Stored:
    """One series logged into one store: its ingest rate, size and read times."""

    series: str
    points_per_s: float
    bytes_per_point: float
    history_ms: float  # metric_history + to_numpy()
    lists_ms: float  # then building its three lists


def log_series(client: Client, values: list[float]) -> tuple[str, float]:
    """Log ``values`` as one metric as a training loop would; the run id and points/s."""
    ml = SimpleNamespace(log_metric=client.log_metric)
    with client.run(experiment="bench-scale", name=f"{len(values)}-points") as run:
        start = time.perf_counter()
        for v in values:
            ml.log_metric(KEY, v)
        client.flush()
        rate = len(values) / (time.perf_counter() - start)
    stored = client.get_run(run.id).metric_summaries[KEY].count
    if stored != len(values):
        raise RuntimeError(f"logged {len(values)} points but the store holds {stored}")
    return run.id, rate


def time_history(client: Client, run_id: str, points: int, repeats: int) -> tuple[float, float]:
    """Median ms of ``metric_history`` + ``to_numpy()``, and of reading its lists after."""
    reads, lists = [], []
    for _ in range(repeats + 1):  # the first warms up
        start = time.perf_counter()
        series = client.metric_history(run_id, KEY)
        columns = series.to_numpy()
        read = time.perf_counter()
        length = len(series.steps) + len(series.values) + len(series.timestamps)
        reads.append(read - start)
        lists.append(time.perf_counter() - read)
        if len(columns["value"]) != points or length != 3 * points:
            raise RuntimeError(f"read {len(columns['value'])} points of {points}")
    return statistics.median(reads[1:]) * 1e3, statistics.median(lists[1:]) * 1e3


def sqlite_bytes(db: Path) -> int:
    """The file's size once its WAL is checkpointed into it (no VACUUM: as it is kept)."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db.stat().st_size


async def _pg_bytes(url: str, schema: str) -> int:
    conn = await asyncpg.connect(POSTGRES)
    try:
        size: int = await conn.fetchval(f"SELECT pg_total_relation_size('{schema}.metric_chunks')")
        return size
    finally:
        await conn.close()


@contextmanager
def sqlite_store(workdir: Path, name: str) -> Iterator[tuple[Client, Callable[[], int]]]:
    """A client on a fresh SQLite file and the file's bytes (measured after it closes)."""
    db = (workdir / f"{name}.db").resolve()
    client = make_client(f"sqlite:///{db}", workdir / f"{name}-artifacts")
    try:
        yield client, lambda: sqlite_bytes(db)
    finally:
        client.close()


@contextmanager
def pg_store(workdir: Path, name: str) -> Iterator[tuple[Client, Callable[[], int]]]:
    """A client on a fresh PostgreSQL schema and ``metric_chunks``' total bytes."""
    with postgres_schema() as (url, schema):
        client = make_client(url, workdir / f"{name}-artifacts")
        try:
            yield client, lambda: anyio.run(_pg_bytes, url, schema)
        finally:
            client.close()


Opener = Callable[[Path, str], AbstractContextManager[tuple[Client, Callable[[], int]]]]


def measure_store(
    opener: Opener, workdir: Path, label: str, points: int, repeats: int
) -> list[Stored]:
    """Each series logged into its own fresh store of one backend."""
    results = []
    for series, make in SERIES.items():
        values = make(points)
        name = f"{label}-{series}".replace(" ", "-").lower()
        with opener(workdir, name) as (client, size_of):
            client.experiments()  # the store opened, migrated: what it takes without points
            empty = size_of()
            run_id, rate = step(f"{label}: log {points:,} points ({series})",
                                partial(log_series, client, values))  # fmt: skip
            history, lists = step(
                f"{label}: metric_history x{repeats + 1}",
                partial(time_history, client, run_id, points, repeats),
            )
            if opener is pg_store:  # before its schema is dropped
                on_disk = size_of()
        if opener is sqlite_store:  # once the client has closed the file
            on_disk = size_of()
        results.append(Stored(series, rate, (on_disk - empty) / points, history, lists))
    return results


def measure(points: int, repeats: int, backends: Sequence[str], context: Context) -> list[Figure]:
    """The storage part on each backend asked for (PostgreSQL when it answers)."""
    chosen: list[tuple[str, Opener]] = []
    if "sqlite" in backends:
        chosen.append(("SQLite", sqlite_store))
    if "postgresql" in backends:
        reason = no_postgres()
        if reason is None:
            chosen.append(("PostgreSQL", pg_store))
        else:
            context.notes.append(f"{NAME} storage: PostgreSQL not measured ({reason})")
    figures = []
    for label, opener in chosen:
        lite = label == "SQLite"
        for r in measure_store(opener, context.workdir, label, points, repeats):
            first = r.series == "constant"
            figures += [
                Figure(NAME, f"{label}: bytes/point, {r.series}", r.bytes_per_point, "B/point",
                       "lower", TARGETS["metric storage"],
                       BEFORE["bytes"] if lite and first else None, "before"),
                Figure(NAME, f"{label}: ingest {points:,} points, {r.series}",
                       r.points_per_s, "points/s", "higher", TARGETS["scale ingest"],
                       BEFORE["ingest"] if lite and first else None, "before"),
                Figure(NAME, f"{label}: metric_history {points:,} points, {r.series}",
                       r.history_ms, "ms", "lower",
                       TARGETS["history read"] if points >= 1_000_000 else None,
                       BEFORE["history"] if lite and first else None, "before"),
                Figure(NAME, f"{label}: then its lists, {r.series}", r.lists_ms, "ms",
                       "lower"),
            ]  # fmt: skip
    context.notes.append(
        f"{NAME} storage: metric_history is timed with to_numpy(), its lists (built on first"
        " use) apart"
    )
    return figures

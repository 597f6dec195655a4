"""The one seeder: finished runs put in a store through its public operations.

Every run is written as a client writes one: ``create_run``, ``log_params``, ``log_metrics``
(packed chunks, one transaction for a whole block of runs) and ``end_run``, on any backend
``open_store`` opens. No schema is copied and no private method is called, so the seeder
follows the store wherever its SQL moves. The price is three transactions per run: about
300-600 runs/s on this 2-core machine (the old private bulk insert wrote 100,000 runs in a
few seconds); :class:`Catalogue` therefore seeds each size once and copies the file.

A seeded run is a function of its index ``i``: id ``f"{i:032x}"``, experiment ``exp-{i % 20}``,
a status (three completed to one failed, every experiment holding both), 5 params and 3
metrics drawn from ``random.Random(i)``, started ``30 * (i + 1)`` s before the anchor.
"""

from __future__ import annotations

import heapq
import os
import random
import shutil
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from chachaml.records.runs import EndStatus, MetricChunk, NewRun
from chachaml.store import Store, open_store

EXPERIMENTS = 20
STATUSES: tuple[EndStatus, ...] = ("completed", "completed", "completed", "failed")
HEARTBEAT_TIMEOUT = 32.0  # what a client with the default 10 s heartbeat records
BLOCK = 1000  # runs whose metrics go in one log_metrics transaction
CONCURRENCY = 16  # writes in flight (a PostgreSQL pool uses them; SQLite queues them)


@dataclass(frozen=True)
class RunValues:
    """What one benchmark run logs: 5 params and 3 metrics."""

    params: dict[str, Any]
    metrics: dict[str, float]


def run_values(rng: random.Random) -> RunValues:
    """Plausible hyper-parameters and final metrics of one training run."""
    return RunValues(
        params={
            "lr": round(rng.uniform(1e-4, 1e-1), 6),
            "batch_size": rng.choice([16, 32, 64, 128, 256]),
            "optimizer": rng.choice(["adam", "adamw", "sgd"]),
            "epochs": rng.randint(1, 50),
            "dropout": round(rng.uniform(0.0, 0.5), 3),
        },
        metrics={
            "accuracy": rng.uniform(0.5, 1.0),
            "loss": rng.uniform(0.01, 2.0),
            "f1": rng.uniform(0.4, 1.0),
        },
    )


def run_id(i: int) -> str:
    """The id of seeded run ``i``."""
    return f"{i:032x}"


def status(i: int) -> EndStatus:
    """Seeded run ``i``'s final status: every experiment gets every status."""
    return STATUSES[(i // EXPERIMENTS) % len(STATUSES)]


class Leaderboard:
    """Runs by their final accuracy, to check query answers against."""

    def __init__(self, accuracy: dict[str, float] | None = None) -> None:
        self.accuracy: dict[str, float] = dict(accuracy or {})

    def add(self, run_id: str, accuracy: float) -> None:
        """Record one run's final accuracy."""
        self.accuracy[run_id] = accuracy

    def top(self, n: int) -> list[str]:
        """Ids of the ``n`` runs with the highest accuracy, best first."""
        return heapq.nlargest(n, self.accuracy, key=self.accuracy.__getitem__)

    def copy(self) -> Leaderboard:
        """An independent copy."""
        return Leaderboard(self.accuracy)

    def __len__(self) -> int:
        return len(self.accuracy)


def point(run: str, key: str, value: float, at: float) -> MetricChunk:
    """A one-point chunk (step 0), packed as the store ingests it."""
    return MetricChunk(
        run_id=run,
        key=key,
        count=1,
        steps=struct.pack("<q", 0),
        values=struct.pack("<d", value),
        timestamps=struct.pack("<d", at),
        last_value=value,
        last_step=0,
        last_time=at,
        min_value=value,
        max_value=value,
    )


async def _each(items: Sequence[int], limit: int, fn: Callable[[int], Awaitable[None]]) -> None:
    """``await fn(item)`` for every item, at most ``limit`` at once."""
    semaphore = anyio.Semaphore(limit)

    async def one(item: int) -> None:
        async with semaphore:
            await fn(item)

    async with anyio.create_task_group() as tg:
        for item in items:
            tg.start_soon(one, item)


async def seed_store(
    store: Store, start: int, count: int, anchor: float, board: Leaderboard
) -> None:
    """Write seeded runs ``start`` .. ``start + count - 1`` into ``store`` and ``board``."""
    for first in range(start, start + count, BLOCK):
        block = range(first, min(first + BLOCK, start + count))
        values = {i: run_values(random.Random(i)) for i in block}

        async def create(i: int, values: dict[int, RunValues] = values) -> None:
            await store.create_run(
                NewRun(
                    id=run_id(i),
                    experiment=f"exp-{i % EXPERIMENTS}",
                    name=f"run-{i}",
                    created_by="bench",
                    started_at=anchor - 30.0 * (i + 1),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                )
            )
            await store.log_params(run_id(i), values[i].params)

        async def end(i: int) -> None:
            await store.end_run(run_id(i), status(i), None, anchor - 30.0 * (i + 1) + 20.0)

        await _each(block, CONCURRENCY, create)
        await store.log_metrics(
            [
                point(run_id(i), key, value, anchor - 30.0 * (i + 1) + 19.0)
                for i in block
                for key, value in values[i].metrics.items()
            ]
        )
        await _each(block, CONCURRENCY, end)
        for i in block:
            board.add(run_id(i), values[i].metrics["accuracy"])


def seed(url: str, count: int, start: int = 0, anchor: float | None = None) -> Leaderboard:
    """Open the store at ``url``, seed ``count`` runs from index ``start``, close it.

    ``anchor`` defaults to a day ago: seeded runs are older than anything made afterwards.
    """
    board = Leaderboard()

    async def body() -> None:
        store = await open_store(url)
        try:
            await seed_store(store, start, count, anchor or time.time() - 86_400, board)
        finally:
            await store.close()

    anyio.run(body)
    return board


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a closed SQLite database file (and its WAL, should one be left)."""
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


class Catalogue:
    """Seeded SQLite stores by size: each size seeded once (growing the largest smaller
    one), then copied for every benchmark that asks, so a suite run seeds once.

    Stores already in ``root`` (``seeded-<runs>.db``, left by an earlier run given the same
    folder) are used as they are: a seeded run is a function of its index, so their
    leaderboards are computed, not read. A size is renamed into place only once complete.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seconds = 0.0  # spent seeding
        self.seeded = 0  # runs seeded
        self._boards: dict[int, Leaderboard] = {}
        self._anchor = time.time() - 86_400
        for kept in root.glob("seeded-*.db"):
            runs = int(kept.stem.removeprefix("seeded-"))
            self._boards[runs] = Leaderboard(
                {run_id(i): run_values(random.Random(i)).metrics["accuracy"] for i in range(runs)}
            )

    def _template(self, runs: int) -> Path:
        return self.root / f"seeded-{runs}.db"

    def copy(self, runs: int, target: Path) -> Leaderboard:
        """A SQLite file at ``target`` holding ``runs`` seeded runs; their leaderboard."""
        if runs not in self._boards:
            base = max((n for n in self._boards if n < runs), default=0)
            board = self._boards[base].copy() if base else Leaderboard()
            partial = self.root / f"partial-{runs}.db"
            for leftover in (partial, Path(f"{partial}-wal")):
                leftover.unlink(missing_ok=True)
            if base:
                copy_sqlite(self._template(base), partial)
            started = time.perf_counter()
            grown = seed(f"sqlite:///{partial}", runs - base, base, self._anchor)
            self.seconds += time.perf_counter() - started
            self.seeded += runs - base
            for suffix in ("", "-wal"):  # complete: into place
                if Path(f"{partial}{suffix}").exists():
                    os.replace(f"{partial}{suffix}", f"{self._template(runs)}{suffix}")
            board.accuracy.update(grown.accuracy)
            self._boards[runs] = board
        copy_sqlite(self._template(runs), target)
        return self._boards[runs].copy()

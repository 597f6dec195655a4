"""Migration 15 on each backend: chunks stored before step spans existed get theirs, so a
database from an earlier version reads step ranges like a new one."""

from __future__ import annotations

import time
from array import array

import pytest

from chachaml.store.migrations.metric_chunks import BATCH
from chachaml.store.migrations.runner import migrate
from chachaml.store.sql.database import Database, Tx
from chachaml.store.sql.store import SQLStore

pytestmark = pytest.mark.anyio
RUN = "b" * 32
CHUNKS = 2 * BATCH + 50  # the backfill reads in batches: cross two of their edges


def chunk_steps(i: int) -> list[int]:
    """Chunk ``i``'s steps: four in order, or (every seventh chunk) the same four shuffled."""
    steps = [4 * i + k for k in range(4)]
    return [steps[2], steps[0], steps[3], steps[1]] if i % 7 == 3 else steps


async def store_before_spans(db: Tx) -> None:
    """A run, its chunks and their summary as version 14 stored them (no span columns).

    Written as SQL, not through the store: today's store also writes tables (events) that
    version 14 did not have."""
    now = time.time()
    await db.execute("INSERT INTO experiments (name, created_at) VALUES (?, ?)", ("e", now))
    await db.execute(
        "INSERT INTO runs (id, experiment_id, name, status, created_by, started_at,"
        " heartbeat_at, heartbeat_timeout)"
        " SELECT ?, id, ?, 'running', ?, ?, ?, ? FROM experiments WHERE name = ?",
        (RUN, "old", "ana", now, now, 60.0, "e"),
    )
    rows = []
    for i in range(CHUNKS):
        steps = chunk_steps(i)
        values = array("d", [float(s) for s in steps]).tobytes()
        times = array("d", [1.0] * 4).tobytes()
        rows.append((RUN, "loss", 4, array("q", steps).tobytes(), values, times))
    await db.insert_rows("metric_chunks", ("run_id", "key", "count", "steps", "vals", "times"),
                         rows)  # fmt: skip
    await db.execute(
        "INSERT INTO metric_summary (run_id, key, last_value, last_step, last_time, min_value,"
        " max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (RUN, "loss", 4.0 * CHUNKS - 1, 4 * CHUNKS - 1, 1.0, 0.0, 4.0 * CHUNKS - 1, 4 * CHUNKS),
    )


async def test_chunks_stored_before_step_spans_get_them_when_migrated(database: Database) -> None:
    await database.transact(lambda db: migrate(db, database.dialect, up_to=14))
    await database.transact(store_before_spans)
    await database.transact(lambda db: migrate(db, database.dialect))
    rows = await database.query(lambda db: db.fetchall(
        "SELECT min_step, max_step, in_order FROM metric_chunks ORDER BY id"))  # fmt: skip
    expected = [(4 * i, 4 * i + 3, int(i % 7 != 3)) for i in range(CHUNKS)]
    assert [tuple(r) for r in rows] == expected
    store = SQLStore(database)
    part = await store.metric_history(RUN, "loss", min_step=10, max_step=17)
    assert part.steps == list(range(10, 18)) and part.values == [float(s) for s in part.steps]
    whole = await store.metric_points(RUN, "loss")
    assert list(whole.steps) == list(range(4 * CHUNKS))
    assert (whole.total, whole.first_step, whole.last_step) == (4 * CHUNKS, 0, 4 * CHUNKS - 1)

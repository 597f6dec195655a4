"""Migrations 15, 21 and 22 on each backend: chunks stored before step spans existed get
theirs, chunks stored before compression read as they are (and compress on demand), and chunks
stored before outlines are read whole by a chart, so a database from an earlier version reads
like a new one."""

from __future__ import annotations

import math
import time
from array import array

import pytest

from chachaml.store.codec import chunk_from_columns, pack_arrays
from chachaml.store.compression import RAW, SHUFFLED_ZSTD, encode
from chachaml.store.migrations.metric_chunks import BATCH, compress_stored_chunks
from chachaml.store.migrations.runner import migrate
from chachaml.store.outline import make_outline
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


async def store_before_compression(db: Tx) -> None:
    """A run with two chunks as version 20 stored them: the old encoder's packed arrays
    (little-endian, uncompressed), with their step spans and no format column."""
    now = time.time()
    await db.execute("INSERT INTO experiments (name, created_at) VALUES (?, ?)", ("e", now))
    await db.execute(
        "INSERT INTO runs (id, experiment_id, name, status, created_by, started_at,"
        " heartbeat_at, heartbeat_timeout)"
        " SELECT ?, id, ?, 'running', ?, ?, ?, ? FROM experiments WHERE name = ?",
        (RUN, "old", "ana", now, now, 60.0, "e"),
    )
    rows = []
    for steps in (list(range(0, 1000)), [1500, 1000, 1200]):
        values = [math.nan if s == 7 else -0.0 if s == 8 else s / 3 for s in steps]
        packed = pack_arrays(array("q", steps), array("d", values), array("d", [1.0] * len(steps)))
        span = (min(steps), max(steps), int(steps == sorted(steps)))
        rows.append((RUN, "loss", len(steps), *packed, *span))
    await db.insert_rows("metric_chunks", ("run_id", "key", "count", "steps", "vals", "times",
                                           "min_step", "max_step", "in_order"), rows)  # fmt: skip
    await db.execute(
        "INSERT INTO metric_summary (run_id, key, last_value, last_step, last_time, min_value,"
        " max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (RUN, "loss", 500.0, 1500, 1.0, 0.0, 500.0, 1003),
    )


async def test_chunks_of_the_previous_format_read_as_they_are_and_compress_on_demand(
    database: Database,
) -> None:
    await database.transact(lambda db: migrate(db, database.dialect, up_to=20))
    await database.transact(store_before_compression)
    await database.transact(lambda db: migrate(db, database.dialect))
    store = SQLStore(database)
    new = chunk_from_columns(RUN, "loss", range(2000, 3000), [2.5] * 1000, [2.0] * 1000)
    await store.log_metrics([new])

    async def formats() -> list[int]:
        rows = await database.query(lambda db: db.fetchall(
            "SELECT format FROM metric_chunks ORDER BY id"))  # fmt: skip
        return [r["format"] for r in rows]

    async def read() -> tuple[list[int], bytes, bytes]:
        whole = await store.metric_points(RUN, "loss")
        part = await store.metric_points(RUN, "loss", min_step=998, max_step=1200)
        assert part.steps.tolist() == [998, 999, 1000, 1200]
        return whole.steps.tolist(), whole.values.tobytes(), whole.timestamps.tobytes()

    assert await formats() == [RAW, RAW, SHUFFLED_ZSTD]
    before = await read()
    expected = [*range(1000), 1000, 1200, 1500, *range(2000, 3000)]
    assert before[0] == expected
    history = await store.metric_history(RUN, "loss", max_step=9)
    negative_zero = history.values[8]
    assert history.values[7] is None and negative_zero == 0.0
    assert math.copysign(1.0, negative_zero) == -1.0

    report = await compress_stored_chunks(database)
    assert (report.chunks, report.bytes_before) == (1, 24_000), "3 points stay raw"
    assert 0 < report.bytes_after < 24_000 / 4
    assert await formats() == [SHUFFLED_ZSTD, RAW, SHUFFLED_ZSTD]
    assert await read() == before, "the same points, bit for bit"
    assert (await compress_stored_chunks(database)).chunks == 0


async def test_compressing_on_demand_writes_the_outlines_of_the_chunks_it_rewrites(
    database: Database,
) -> None:
    await database.transact(lambda db: migrate(db, database.dialect, up_to=20))
    await database.transact(store_before_compression)
    steps, values = list(range(5000, 6000)), [math.sin(s / 17) for s in range(1000)]
    raw = pack_arrays(array("q", steps), array("d", values), array("d", [1.0] * 1000))
    await database.transact(lambda db: db.insert_rows(
        "metric_chunks", ("run_id", "key", "count", "steps", "vals", "times", "min_step",
                          "max_step", "in_order"),
        [(RUN, "acc", 1000, *raw, 5000, 5999, 1)]))  # fmt: skip
    await database.transact(lambda db: db.execute(
        "INSERT INTO metric_summary (run_id, key, last_value, last_step, last_time, min_value,"
        " max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (RUN, "acc", values[-1], 5999, 1.0, min(values), max(values), 1000)))  # fmt: skip
    await database.transact(lambda db: migrate(db, database.dialect))
    store = SQLStore(database)
    before = await store.metric_outline(RUN, "acc", points=4)
    assert before.positions is None, "no outline yet: every point"

    async def outlines() -> dict[tuple[str, int], bytes | None]:
        rows = await database.query(lambda db: db.fetchall(
            "SELECT key, count, outline FROM metric_chunks"))  # fmt: skip
        return {(r["key"], r["count"]): r["outline"] for r in rows}

    assert set((await outlines()).values()) == {None}
    assert (await compress_stored_chunks(database)).chunks == 2
    got = await outlines()
    assert bytes(got["acc", 1000] or b"") == make_outline(*raw)
    assert got["loss", 1000] is None, "a NaN among its values: read whole, as before"
    assert got["loss", 3] is None, "stays raw (does not shrink), fewer points than a block"
    after = await store.metric_outline(RUN, "acc", points=4)
    assert after.positions is not None and after.in_range == 1000
    assert list(after.steps) == [steps[p] for p in after.positions]


async def store_before_outlines(db: Tx) -> None:
    """A run with three compressed 1,000-point chunks as version 21 stored them (no outline)."""
    now = time.time()
    await db.execute("INSERT INTO experiments (name, created_at) VALUES (?, ?)", ("e", now))
    await db.execute(
        "INSERT INTO runs (id, experiment_id, name, status, created_by, started_at,"
        " heartbeat_at, heartbeat_timeout)"
        " SELECT ?, id, ?, 'running', ?, ?, ?, ? FROM experiments WHERE name = ?",
        (RUN, "old", "ana", now, now, 60.0, "e"),
    )
    rows = []
    for start in (0, 1000, 2000):
        steps = range(start, start + 1000)
        values = [math.sin(s / 37) * (1 + s % 11) for s in steps]
        packed = pack_arrays(array("q", steps), array("d", values), array("d", [1.0] * 1000))
        rows.append((RUN, "loss", 1000, *encode(1000, *packed), start, start + 999, 1))
    columns = ("run_id", "key", "count", "format", "steps", "vals", "times", "min_step",
               "max_step", "in_order")  # fmt: skip
    await db.insert_rows("metric_chunks", columns, rows)
    await db.execute(
        "INSERT INTO metric_summary (run_id, key, last_value, last_step, last_time, min_value,"
        " max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (RUN, "loss", 0.0, 2999, 1.0, -11.0, 11.0, 3000),
    )


async def test_chunks_stored_before_outlines_are_read_whole_beside_outlined_ones(
    database: Database,
) -> None:
    await database.transact(lambda db: migrate(db, database.dialect, up_to=21))
    await database.transact(store_before_outlines)
    await database.transact(lambda db: migrate(db, database.dialect))
    store = SQLStore(database)
    steps = range(3000, 6000)
    values = [math.cos(s / 29) * (s % 13) for s in steps]
    await store.log_metrics([chunk_from_columns(RUN, "loss", steps, values, [2.0] * 3000)])
    rows = await database.query(lambda db: db.fetchall(
        "SELECT outline IS NULL AS bare FROM metric_chunks ORDER BY id"))  # fmt: skip
    assert [bool(r["bare"]) for r in rows] == [True, True, True, False]
    exact = await store.metric_points(RUN, "loss", min_step=500)
    found = await store.metric_outline(RUN, "loss", min_step=500, points=4)
    assert found.positions is not None and found.in_range == 5500
    where = found.positions.tolist()
    assert where[:2500] == list(range(2500)), "the chunks without outline: every point"
    assert found.values.tolist() == [exact.values[p] for p in where]
    assert found.steps.tolist() == [exact.steps[p] for p in where]
    assert (min(found.values), max(found.values)) == (min(exact.values), max(exact.values))
    assert len(where) < 2500 + 3000 // 10

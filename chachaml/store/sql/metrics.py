"""Metrics: packed chunks of points, and a summary row per (run, key) kept in step with them.

A chunk holds many points of one metric as packed arrays (:mod:`chachaml.store.codec`),
compressed in its row's ``format`` (:mod:`chachaml.store.compression`), so a point costs a
few bytes and ingest one row per chunk; the summary (latest value, range, count) is upserted
in the same transaction, so listings and ``best_run`` never scan points. Each chunk row also
holds its step span (lowest and highest step, whether its steps are in order), indexed, so a
read of a step range fetches only the chunks that overlap it, and, with its outline
(:mod:`chachaml.store.outline`), a chart of a large range need not decode the chunks it
covers whole.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from typing import TypeVar

import anyio.to_thread

from chachaml.errors import NotFound, StoreUnavailable
from chachaml.records.events import LatestPoint, MetricsLogged
from chachaml.records.metrics import MetricOutline
from chachaml.records.runs import (
    MetricChunk,
    MetricPoints,
    MetricSeries,
    MetricSummary,
    to_datetime,
)
from chachaml.store.codec import StoredChunk, join_chunks, series_of, step_span
from chachaml.store.compression import CorruptChunk, encode
from chachaml.store.outline import (
    ChunkSpan,
    Part,
    Plan,
    join_outlined,
    make_outline,
    outlined,
    plan,
)
from chachaml.store.sql.database import Database, Row, Tx
from chachaml.store.sql.events import emit
from chachaml.store.sql.rows import in_batches, marks, require_run

SUMMARY_SELECT = (
    "SELECT key, last_value, last_step, last_time, min_value, max_value, count FROM metric_summary"
)
UPSERT_SUMMARY = """INSERT INTO metric_summary AS s
   (run_id, key, last_value, last_step, last_time, min_value, max_value, count)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT (run_id, key) DO UPDATE SET
     last_value = CASE WHEN excluded.last_step >= s.last_step
                  THEN excluded.last_value ELSE s.last_value END,
     last_time = CASE WHEN excluded.last_step >= s.last_step
                 THEN excluded.last_time ELSE s.last_time END,
     last_step = CASE WHEN excluded.last_step >= s.last_step
                 THEN excluded.last_step ELSE s.last_step END,
     min_value = CASE WHEN s.min_value IS NULL OR excluded.min_value < s.min_value
                 THEN excluded.min_value ELSE s.min_value END,
     max_value = CASE WHEN s.max_value IS NULL OR excluded.max_value > s.max_value
                 THEN excluded.max_value ELSE s.max_value END,
     count = s.count + excluded.count"""


def summary_from_row(row: Row) -> MetricSummary:
    """A summary from a row of ``SUMMARY_SELECT``."""
    return MetricSummary(
        key=row["key"],
        last=row["last_value"],
        step=row["last_step"],
        timestamp=to_datetime(row["last_time"]),
        min=row["min_value"],
        max=row["max_value"],
        count=row["count"],
    )


async def latest_metrics(db: Tx, run_ids: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Each run's latest metric values by key (an empty map for a run without metrics)."""
    metrics: dict[str, dict[str, float | None]] = {rid: {} for rid in run_ids}
    for batch in in_batches(run_ids):
        for rid, key, value in await db.fetchall(
            f"SELECT run_id, key, last_value FROM metric_summary WHERE run_id IN ({marks(batch)})"
            " ORDER BY run_id, key",
            batch,
        ):
            metrics[rid][key] = value
    return metrics


def logged(chunks: Sequence[MetricChunk]) -> list[MetricsLogged]:
    """One ``run.metrics`` event per run of ``chunks``: latest point and count per key."""
    latest: dict[str, dict[str, LatestPoint]] = {}
    counts: dict[str, dict[str, int]] = {}
    for c in chunks:
        points = latest.setdefault(c.run_id, {})
        seen = points.get(c.key)
        if seen is None or c.last_step >= seen.step:
            points[c.key] = LatestPoint(value=c.last_value, step=c.last_step)
        by_key = counts.setdefault(c.run_id, {})
        by_key[c.key] = by_key.get(c.key, 0) + c.count
    return [MetricsLogged(run_id=r, metrics=latest[r], counts=counts[r]) for r in latest]


def _span(chunk: MetricChunk) -> tuple[int, int, int]:
    """A chunk's ``min_step``, ``max_step`` and ``in_order`` columns (worked out if absent)."""
    if chunk.min_step is not None and chunk.in_order is not None:
        return chunk.min_step, chunk.last_step, int(chunk.in_order)
    low, high, in_order = step_span(chunk.steps)
    return low, high, int(in_order)


CHUNK_COLUMNS = (
    "run_id", "key", "count", "format", "steps", "vals", "times", "min_step", "max_step",
    "in_order", "outline",
)  # fmt: skip
OFF_LOOP = 100_000  # points beyond which encoding or decoding leaves the event loop (~2 ms)
T = TypeVar("T")


async def _off_loop(points: int, fn: Callable[[], T]) -> T:
    """``fn()``, in a worker thread when ``points`` make it long enough to stall the loop."""
    return fn() if points <= OFF_LOOP else await anyio.to_thread.run_sync(fn)


def _stored(chunk: MetricChunk, span: tuple[int, int, int]) -> tuple[object, ...]:
    """A chunk's row of ``CHUNK_COLUMNS``, its arrays compressed, with its outline if it has one.

    The outline (:mod:`chachaml.store.outline`) is made from the packed arrays here, where
    they are at hand, off the loop with the compression when the chunk is large.
    """
    fmt, steps, values, times = encode(chunk.count, chunk.steps, chunk.values, chunk.timestamps)
    outline = (
        make_outline(chunk.steps, chunk.values, chunk.timestamps)
        if outlined(chunk.count, bool(span[2]), chunk.values)
        else None
    )
    return (chunk.run_id, chunk.key, chunk.count, fmt, steps, values, times, *span, outline)


CHUNK_SELECT = (
    "SELECT id, count, format, steps, vals, times, min_step, max_step, in_order FROM metric_chunks"
)


def _bounds(min_step: int | None, max_step: int | None) -> str:
    """The SQL that keeps the chunks overlapping a step range (one ``?`` per bound given)."""
    return ("" if min_step is None else " AND max_step >= ?") + (
        "" if max_step is None else " AND min_step <= ?"
    )


async def _extent(db: Tx, run_id: str, key: str) -> Row:
    """The whole series' count and step span; ``NotFound`` naming the run's metrics if none."""
    await require_run(db, run_id)
    whole = await db.fetchall(
        "SELECT count, last_step, (SELECT min(min_step) FROM metric_chunks"
        " WHERE run_id = ? AND key = ?) AS first_step"
        " FROM metric_summary WHERE run_id = ? AND key = ?",
        (run_id, key, run_id, key),
    )
    if not whole:
        keys = await db.fetchall(
            "SELECT key FROM metric_summary WHERE run_id = ? ORDER BY key", (run_id,)
        )
        logged = ", ".join(k["key"] for k in keys) or "none"
        raise NotFound(f"run {run_id!r} has no metric {key!r} (logged metrics: {logged})")
    return whole[0]


def _chunks(rows: Sequence[Row]) -> list[StoredChunk]:
    """Rows of ``CHUNK_SELECT`` as stored chunks."""
    return [
        StoredChunk(r["steps"], r["vals"], r["times"], r["min_step"], r["max_step"],
                    bool(r["in_order"]), r["format"], r["count"])
        for r in rows
    ]  # fmt: skip


async def _decoded(
    run_id: str, key: str, rows: Sequence[Row], min_step: int | None, max_step: int | None
) -> tuple[array[int], array[float], array[float]]:
    """The points of chunk rows (in id order) in a step range, by step."""
    try:
        return await _off_loop(
            sum(r["count"] for r in rows), lambda: join_chunks(_chunks(rows), min_step, max_step)
        )
    except CorruptChunk as exc:
        raise StoreUnavailable(f"metric {key!r} of run {run_id!r}: {exc}") from exc


class Metrics:
    """Metric chunks and summaries."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def log_metrics(self, chunks: Sequence[MetricChunk]) -> None:
        """Insert chunks and upsert each (run, key) summary in one transaction.

        Chunks carrying a ``batch`` id are skipped when their run already holds that batch:
        the id is recorded in the same transaction as the points, so a batch sent again
        after a lost reply or a crash is stored once (the primary key settles races).
        """
        if not chunks:
            return

        async def body(db: Tx) -> None:
            for run_id in {c.run_id for c in chunks}:
                await require_run(db, run_id)
            stored: set[tuple[str, str]] = set()
            for run_id, batch in {(c.run_id, c.batch) for c in chunks if c.batch is not None}:
                if not await db.execute(
                    "INSERT INTO metric_batches (run_id, batch) VALUES (?, ?)"
                    " ON CONFLICT (run_id, batch) DO NOTHING",
                    (run_id, batch),
                ):
                    stored.add((run_id, batch))
            fresh = [(c, row) for c, row in zip(chunks, rows, strict=True)
                     if (c.run_id, c.batch) not in stored]  # fmt: skip
            if not fresh:
                return
            await db.insert_rows("metric_chunks", CHUNK_COLUMNS, [row for _, row in fresh])
            await db.executemany(
                UPSERT_SUMMARY,
                [
                    (
                        c.run_id,
                        c.key,
                        c.last_value,
                        c.last_step,
                        c.last_time,
                        c.min_value,
                        c.max_value,
                        c.count,
                    )
                    for c, _ in fresh
                ],
            )
            await emit(db, *logged([c for c, _ in fresh]))

        # compressed outside the write transaction (and off the event loop when large)
        rows = await _off_loop(
            sum(c.count for c in chunks), lambda: [_stored(c, _span(c)) for c in chunks]
        )
        await self._db.transact(body)

    @staticmethod
    async def summaries_in(db: Tx, run_id: str) -> dict[str, MetricSummary]:
        """Each metric's summary for one run, inside a read."""
        found = await db.fetchall(SUMMARY_SELECT + " WHERE run_id = ? ORDER BY key", (run_id,))
        return {r["key"]: summary_from_row(r) for r in found}

    async def summaries_of(self, run_ids: Sequence[str]) -> dict[str, dict[str, MetricSummary]]:
        """Each metric's summary for each of these runs (a run without metrics: empty)."""

        async def body(db: Tx) -> dict[str, dict[str, MetricSummary]]:
            out: dict[str, dict[str, MetricSummary]] = {rid: {} for rid in run_ids}
            for batch in in_batches(list(out)):
                found = await db.fetchall(
                    SUMMARY_SELECT.replace("SELECT ", "SELECT run_id, ", 1)
                    + f" WHERE run_id IN ({marks(batch)}) ORDER BY run_id, key",
                    batch,
                )
                for row in found:
                    out[row["run_id"]][row["key"]] = summary_from_row(row)
            return out

        return await self._db.query(body)

    async def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        """Each metric's summary for one run."""

        async def body(db: Tx) -> dict[str, MetricSummary]:
            await require_run(db, run_id)
            return await self.summaries_in(db, run_id)

        return await self._db.query(body)

    async def metric_points(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricPoints:
        """The points of one metric with ``min_step <= step <= max_step``, packed, by step."""

        async def body(db: Tx) -> tuple[Row, list[Row]]:
            extent = await _extent(db, run_id, key)
            sql = CHUNK_SELECT + " WHERE run_id = ? AND key = ?" + _bounds(min_step, max_step)
            params = [run_id, key, *(b for b in (min_step, max_step) if b is not None)]
            return extent, await db.fetchall(sql, params)

        extent, rows = await self._db.query(body)
        rows.sort(key=lambda r: r["id"])  # here, not in SQL: a sort there copies the arrays
        steps, values, times = await _decoded(run_id, key, rows, min_step, max_step)
        return MetricPoints(
            run_id=run_id, key=key, steps=steps, values=values, timestamps=times,
            total=extent["count"], first_step=extent["first_step"],
            last_step=extent["last_step"],
        )  # fmt: skip

    async def metric_outline(
        self, run_id: str, key: str, *, min_step: int | None = None,
        max_step: int | None = None, points: int,
    ) -> MetricOutline:  # fmt: skip
        """A step range of one metric for a chart of ``points`` points (see ``MetricOutline``).

        The chunks' spans and outlines are read first (no arrays), then the columns that
        :func:`~chachaml.store.outline.plan` chooses: a chunk the range covers whole gives
        its outline alone.
        """
        buckets = max(1, points // 2)

        async def body(db: Tx) -> tuple[Row, Plan, list[ChunkSpan], list[Row], dict[int, bytes]]:
            extent = await _extent(db, run_id, key)
            sql = (  # on SQLite from one covering index, without the rows' arrays
                "SELECT id, count, min_step, max_step, in_order, outline FROM metric_chunks"
                " WHERE run_id = ? AND key = ?" + _bounds(min_step, max_step)
            )
            params = [run_id, key, *(b for b in (min_step, max_step) if b is not None)]
            found = await db.fetchall(sql, params)
            spans = [
                ChunkSpan(r["id"], r["count"], r["min_step"], r["max_step"],
                          bool(r["in_order"]), r["outline"] is not None)
                for r in found
            ]  # fmt: skip
            chosen = plan(spans, min_step, max_step, buckets)
            outlines = {r["id"]: r["outline"] for r in found if r["id"] in chosen.outlines}
            rows = []
            for batch in in_batches(sorted(chosen.columns)):
                rows += await db.fetchall(CHUNK_SELECT + f" WHERE id IN ({marks(batch)})", batch)
            return extent, chosen, spans, rows, outlines

        extent, chosen, spans, rows, outlines = await self._db.query(body)
        rows.sort(key=lambda r: r["id"])
        if outlines:
            decoded = dict(zip((r["id"] for r in rows), _chunks(rows), strict=True))
            sizes = {s.id: s.points for s in spans}
            parts = [Part(sizes[i], decoded.get(i), outlines.get(i)) for i in chosen.order]
            try:
                joined = await _off_loop(
                    sum(r["count"] for r in rows),
                    lambda: join_outlined(parts, min_step, max_step, blocks=chosen.blocks),
                )
            except CorruptChunk as exc:
                raise StoreUnavailable(f"metric {key!r} of run {run_id!r}: {exc}") from exc
            steps, values, times, where, in_range, blocks = joined
            positions = where if chosen.blocks else None  # else every point of the range
        else:
            steps, values, times = await _decoded(run_id, key, rows, min_step, max_step)
            positions, in_range, blocks = None, len(steps), array("q")
        return MetricOutline(
            run_id=run_id, key=key, steps=steps, values=values, timestamps=times,
            total=extent["count"], first_step=extent["first_step"],
            last_step=extent["last_step"], positions=positions, in_range=in_range,
            outlined=blocks,
        )  # fmt: skip

    async def metric_history(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricSeries:
        """The points of one metric with ``min_step <= step <= max_step``, by step."""
        points = await self.metric_points(run_id, key, min_step=min_step, max_step=max_step)
        return series_of(points)

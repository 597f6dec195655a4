"""Metric points: store batches of packed chunks, and pack loose points into chunks.

The tracking client buffers and packs points itself (``log_metric`` costs about a
microsecond) and only its flush calls :func:`log_metrics`; the HTTP write API packs what it
receives with :func:`pack_points` and stores it with :func:`log_run_metrics`, which also
evaluates the run's alert rules. Per-point work never happens in an operation call per point.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.metrics import MetricOutline
from chachaml.records.runs import MetricChunk, MetricPoints, MetricSeries, MetricSummary
from chachaml.store.codec import chunk_from_columns, make_chunk
from chachaml.store.protocol import Store
from chachaml.tools.runs import evaluate_alerts, resolve_run_id
from chachaml.tools.webhooks import Delivery


class Point(Protocol):
    """One loose metric point: a key, a value (``None`` for NaN), optional step and time."""

    @property
    def key(self) -> str: ...  # noqa: D102

    @property
    def value(self) -> float | None: ...  # noqa: D102

    @property
    def step(self) -> int | None: ...  # noqa: D102

    @property
    def timestamp(self) -> float | None: ...  # noqa: D102


async def log_metrics(store: Store, chunks: Sequence[MetricChunk]) -> int:
    """Store packed chunks (of any runs) atomically; returns how many points they hold.

    A chunk carrying a batch id the store already holds is skipped, so a batch sent again
    after a lost reply is never stored twice.
    """
    if chunks:
        await store.log_metrics(chunks)
    return sum(c.count for c in chunks)


async def log_run_metrics(
    store: Store,
    run_id: str,
    chunks: Sequence[MetricChunk],
    *,
    batch: str | None = None,
    delivery: Delivery | None = None,
) -> int:
    """Store one run's chunks as one batch (``batch`` names it), then evaluate its alert rules.

    Returns how many points were stored; a chunk of another run is ``InvalidInput``.
    """
    rid = v.run_id(run_id)
    if any(c.run_id != rid for c in chunks):
        raise InvalidInput(f"every metric chunk must belong to run {rid!r}")
    if batch is not None:  # a retry of this batch, even after a crash, stores nothing new
        chunks = [dataclasses.replace(c, batch=batch) for c in chunks]
    points = await log_metrics(store, chunks)
    if points:
        await evaluate_alerts(store, rid, delivery)
    return points


async def next_steps(store: Store, run_id: str) -> dict[str, MetricSummary]:
    """Each stored metric's summary, for :func:`pack_points` to continue steps from."""
    return await store.metric_summaries(v.run_id(run_id))


Columns = tuple[list[int], list[float], list[float]]  # steps, values, timestamps


def pack_columns(run_id: str, columns: Mapping[str, Columns]) -> list[MetricChunk]:
    """Points that all carry a step, already in columns by key: one chunk per key.

    MLflow's ``log-batch`` sends a step with every point; gathering them straight into
    columns skips :func:`pack_points`' per-point bookkeeping (a third of a 1,000-point
    batch's time on the server).
    """
    return [
        chunk_from_columns(run_id, v.key(key, "metric key"), *cols) for key, cols in columns.items()
    ]


def pack_points(
    run_id: str, points: Sequence[Point], summaries: dict[str, MetricSummary]
) -> list[MetricChunk]:
    """Loose points as one chunk per key; a point without a step takes the key's next one.

    ``summaries`` (from :func:`next_steps`) says where each stored key's steps stopped.
    Synchronous and CPU-bound: a caller with a large batch runs it off its event loop.
    """
    by_key: dict[str, list[tuple[int, float, float]]] = {}
    next_step = {k: s.step + 1 for k, s in summaries.items()}
    now = time.time()
    keys: dict[str, str] = {}  # each distinct key validated once
    for p in points:
        key = keys.get(p.key) or keys.setdefault(p.key, v.key(p.key, "metric key"))
        step = p.step if p.step is not None else next_step.get(key, 0)
        if step > v.MAX_STEP:  # only a default step after the last int64 one gets here
            raise v.overflow(key, step - 1)
        next_step[key] = max(next_step.get(key, 0), step + 1)
        value = math.nan if p.value is None else p.value
        by_key.setdefault(key, []).append(
            (step, value, now if p.timestamp is None else p.timestamp)
        )
    return [make_chunk(run_id, k, pts) for k, pts in by_key.items()]


def _step_range(min_step: int | None, max_step: int | None) -> None:
    if min_step is not None and max_step is not None and min_step > max_step:
        raise InvalidInput(f"min_step ({min_step}) must not be greater than max_step ({max_step})")


async def metric_history(
    store: Store, run_id: str, key: str, *, min_step: int | None = None,
    max_step: int | None = None,
) -> MetricSeries:  # fmt: skip
    """The points of one metric of a run, ordered by step.

    Every point, or those with ``min_step <= step <= max_step`` (either bound optional).
    """
    _step_range(min_step, max_step)
    rid = await resolve_run_id(store, run_id)
    return await store.metric_history(
        rid, v.key(key, "metric key"), min_step=min_step, max_step=max_step
    )


async def metric_points(
    store: Store, run_id: str, key: str, *, min_step: int | None = None,
    max_step: int | None = None,
) -> MetricPoints:  # fmt: skip
    """:func:`metric_history` as packed arrays, with the whole series' extent (for charts).

    ``min_step > max_step`` is an empty range here, not an error: a live chart's
    ``after_step`` may pass the end of the range it shows.
    """
    rid = await resolve_run_id(store, run_id)
    return await store.metric_points(
        rid, v.key(key, "metric key"), min_step=min_step, max_step=max_step
    )


async def metric_outline(
    store: Store, run_id: str, key: str, *, min_step: int | None = None,
    max_step: int | None = None, points: int,
) -> MetricOutline:  # fmt: skip
    """:func:`metric_points` as a chart of ``points`` points needs them (``MetricOutline``)."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise InvalidInput(f"points must be a whole number of at least 1, got {points!r}")
    rid = await resolve_run_id(store, run_id)
    return await store.metric_outline(
        rid, v.key(key, "metric key"), min_step=min_step, max_step=max_step, points=points
    )

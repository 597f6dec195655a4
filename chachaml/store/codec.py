"""Packing metric points into chunks: int64 steps, float64 values and timestamps, little-endian.

Storing a flush's points for one metric as one row of three packed arrays (instead of a row
per point) is what lets a training loop push a million points a second into SQLite; the
store keeps the arrays compressed (:mod:`chachaml.store.compression`). Each stored chunk
carries its step span (:func:`step_span`), so a read of a step range fetches only the
chunks it overlaps, and chunks that follow each other in step order are joined as bytes
(:func:`join_chunks`) without a Python object per point.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from types import ModuleType
from typing import NamedTuple, cast

from chachaml.records.runs import MetricChunk, MetricPoints, MetricSeries
from chachaml.store.compression import RAW, join_columns

_SWAP = sys.byteorder != "little"


@cache
def optional_numpy() -> ModuleType | None:
    """Numpy if installed, imported on first use: ingest and charts work without it."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def pack_items(arr: array[int] | array[float]) -> bytes:
    """An array's items packed little-endian (how every stored column is kept)."""
    if _SWAP:
        arr = array(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def unpack_items(typecode: str, data: bytes) -> array[float] | array[int]:
    """Packed little-endian items as an array of ``typecode``."""
    arr: array[float] | array[int] = array(typecode)
    arr.frombytes(data)
    if _SWAP:
        arr.byteswap()
    return arr


def make_chunk(run_id: str, key: str, points: Sequence[tuple[int, float, float]]) -> MetricChunk:
    """Pack ``(step, value, timestamp)`` points of one metric (see :func:`chunk_from_columns`)."""
    return chunk_from_columns(
        run_id, key, [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]
    )


def chunk_from_columns(
    run_id: str,
    key: str,
    steps: Sequence[int],
    values: Sequence[float],
    times: Sequence[float],
) -> MetricChunk:
    """Pack one metric's buffered points (parallel sequences) and summarise them.

    The summary's latest value is the last point at the highest step; min and max are over
    finite values only. The step span comes from one sort of the steps, which costs a few
    nanoseconds a step when they are in order (timsort finds one run), here where they are
    still a list, instead of a decoding pass in the store.
    """
    n = len(steps)
    listed = list(steps)
    ordered = sorted(listed)
    last_i = n - 1
    last_step = steps[last_i]
    top = ordered[-1]
    if top != last_step:  # points arrived out of step order: latest is the last one at top
        last_i = n - 1 - listed[::-1].index(top)
        last_step = top
    if math.isfinite(sum(values)):
        low: float | None = min(values)
        high: float | None = max(values)
    else:
        finite = [v for v in values if math.isfinite(v)]
        low, high = (min(finite), max(finite)) if finite else (None, None)
    last_value = values[last_i]
    return MetricChunk(
        run_id=run_id,
        key=key,
        count=n,
        steps=pack_items(array("q", steps)),
        values=pack_items(array("d", values)),
        timestamps=pack_items(array("d", times)),
        last_value=None if math.isnan(last_value) else last_value,
        last_step=last_step,
        last_time=times[last_i],
        min_value=low,
        max_value=high,
        min_step=ordered[0],
        in_order=ordered == listed,
    )


def pack_arrays(
    steps: array[int], values: array[float], times: array[float]
) -> tuple[bytes, bytes, bytes]:
    """The packed form of step, value and timestamp arrays (bytes, no per-point work)."""
    return pack_items(steps), pack_items(values), pack_items(times)


def pack_positions(positions: array[int]) -> bytes:
    """Int64 positions (a chart's range read, :class:`MetricOutline`) packed little-endian."""
    return pack_items(positions)


def unpack_positions(data: bytes) -> array[int]:
    """The inverse of :func:`pack_positions`."""
    return _steps(data)


def unpack_chunk(
    steps: bytes, values: bytes, timestamps: bytes
) -> tuple[array[int], array[float], array[float]]:
    """The three arrays of a stored chunk."""
    return (
        unpack_items("q", steps),  # type: ignore[return-value]
        unpack_items("d", values),
        unpack_items("d", timestamps),
    )


def _steps(data: bytes) -> array[int]:
    return cast("array[int]", unpack_items("q", data))


def step_span(steps: bytes) -> tuple[int, int, bool]:
    """A packed chunk's lowest and highest step, and whether its steps never decrease.

    Stored with each chunk, so that every later read of the metric knows which chunks a
    step range needs and whether they must be sorted, without decoding them. For a chunk
    made without its span (:func:`chunk_from_columns` gives one): a list compared with its
    sorted copy costs ~20 ns a step when in order, half of a ``map(operator.le, ...)`` over
    the array, which makes an int object per step twice.
    """
    listed = _steps(steps).tolist()
    ordered = sorted(listed)
    return ordered[0], ordered[-1], ordered == listed


class StoredChunk(NamedTuple):
    """A stored chunk: its columns in ``format``, its step span and its point count.

    See :func:`step_span`; ``points`` of ``None`` is checked only for whole items.
    """

    steps: bytes
    values: bytes
    timestamps: bytes
    min_step: int
    max_step: int
    in_order: bool
    format: int = RAW
    points: int | None = None


def join_chunks(
    chunks: Sequence[StoredChunk], min_step: int | None = None, max_step: int | None = None
) -> tuple[array[int], array[float], array[float]]:
    """The points of ``chunks`` (in the order stored) with ``min_step <= step <= max_step``.

    The points come in step order. When each chunk's steps never decrease and, taken by
    their lowest step, each chunk starts at or after the previous one's highest step (a
    training loop logging as it goes) the chunks' bytes are simply joined in that order and
    the range cut by bisection; otherwise the points in the range are sorted by step, then
    time, in Python (~0.6 s a million points).
    """
    # by step, then as stored: chunks whose ids are not in step order (a flush committed
    # before the one logged ahead of it) still follow one another, and join as bytes
    by_step = sorted(chunks, key=lambda c: c.min_step)
    follow = all(c.in_order for c in chunks) and all(
        b.min_step >= a.max_step for a, b in pairwise(by_step)
    )
    if follow:
        chunks = by_step
    steps, values, times = array("q"), array("d"), array("d")
    if all(c.format == RAW for c in chunks):  # appended chunk by chunk: one copy of the bytes
        for c in chunks:
            steps.frombytes(c.steps)
            values.frombytes(c.values)
            times.frombytes(c.timestamps)
    else:
        steps.frombytes(join_columns([(c.format, c.points, c.steps) for c in chunks]))
        values.frombytes(join_columns([(c.format, c.points, c.values) for c in chunks]))
        times.frombytes(join_columns([(c.format, c.points, c.timestamps) for c in chunks]))
    if _SWAP:
        for arr in (steps, values, times):
            arr.byteswap()
    if follow:
        lo = 0 if min_step is None else bisect_left(steps, min_step)
        hi = len(steps) if max_step is None else bisect_right(steps, max_step)
        if lo == 0 and hi == len(steps):
            return steps, values, times
        return steps[lo:hi], values[lo:hi], times[lo:hi]
    first = -math.inf if min_step is None else min_step
    last = math.inf if max_step is None else max_step
    keep = [i for i, s in enumerate(steps) if first <= s <= last]
    keep.sort(key=lambda i: (steps[i], times[i]))
    return (
        array("q", [steps[i] for i in keep]),
        array("d", [values[i] for i in keep]),
        array("d", [times[i] for i in keep]),
    )


def series_of(points: MetricPoints) -> MetricSeries:
    """The points as a :class:`MetricSeries` over their arrays (a NaN value reads as ``None``).

    No Python object per point is made here: the series' lists are built when first read.
    """
    return MetricSeries.from_columns(
        points.run_id, points.key, points.steps, points.values, points.timestamps
    )

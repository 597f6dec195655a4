"""Packing metric points into chunks: int64 steps, float64 values and timestamps, little-endian.

Storing a flush's points for one metric as one row of three packed arrays (instead of a row
per point) is what lets a training loop push a million points a second into SQLite.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence

from chachaml.records.runs import MetricChunk

_SWAP = sys.byteorder != "little"


def _pack(arr: array[int] | array[float]) -> bytes:
    if _SWAP:
        arr = array(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def _unpack(typecode: str, data: bytes) -> array[float] | array[int]:
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
    finite values only.
    """
    n = len(steps)
    last_i = n - 1
    last_step = steps[last_i]
    top = max(steps)
    if top != last_step:  # points arrived out of step order: latest is the last one at top
        last_i = n - 1 - list(reversed(steps)).index(top)
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
        steps=_pack(array("q", steps)),
        values=_pack(array("d", values)),
        timestamps=_pack(array("d", times)),
        last_value=None if math.isnan(last_value) else last_value,
        last_step=last_step,
        last_time=times[last_i],
        min_value=low,
        max_value=high,
    )


def pack_columns(
    steps: Sequence[int], values: Sequence[float], times: Sequence[float]
) -> tuple[bytes, bytes, bytes]:
    """The packed arrays of parallel step, value and timestamp sequences."""
    return _pack(array("q", steps)), _pack(array("d", values)), _pack(array("d", times))


def unpack_chunk(
    steps: bytes, values: bytes, timestamps: bytes
) -> tuple[array[int], array[float], array[float]]:
    """The three arrays of a stored chunk."""
    return (
        _unpack("q", steps),  # type: ignore[return-value]
        _unpack("d", values),
        _unpack("d", timestamps),
    )

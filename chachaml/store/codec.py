"""Packing metric points into chunks: int64 steps, float64 values and timestamps, little-endian.

Storing a flush's points for one metric as one row of three packed arrays (instead of a row
per point) is what lets a training loop push a million points a second into SQLite.
"""

from __future__ import annotations

import math
import sys
from array import array

from chachaml.models import MetricChunk

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


def make_chunk(
    run_id: str, key: str, steps: array[int], values: array[float], times: array[float]
) -> MetricChunk:
    """Pack one metric's buffered points and summarise them (latest by step, finite min/max)."""
    n = len(steps)
    last_i = n - 1
    last_step = steps[last_i]
    top = max(steps)
    if top != last_step:  # points arrived out of step order: latest is the last one at top step
        last_i = n - 1 - steps[::-1].index(top)
        last_step = top
    finite = [v for v in values if v - v == 0.0]
    last_value = values[last_i]
    return MetricChunk(
        run_id=run_id,
        key=key,
        count=n,
        steps=_pack(steps),
        values=_pack(values),
        timestamps=_pack(times),
        last_value=None if math.isnan(last_value) else last_value,
        last_step=last_step,
        last_time=times[last_i],
        min_value=min(finite) if finite else None,
        max_value=max(finite) if finite else None,
    )


def unpack_chunk(
    steps: bytes, values: bytes, timestamps: bytes
) -> tuple[array[int], array[float], array[float]]:
    """The three arrays of a stored chunk."""
    return (
        _unpack("q", steps),  # type: ignore[return-value]
        _unpack("d", values),
        _unpack("d", timestamps),
    )

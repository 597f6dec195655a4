"""A chunk's outline: each block's first lowest and first highest point, stored beside the chunk.

A chart of a million points keeps, per bucket of the step range, the bucket's lowest and
highest value, so it needs every value but only the few points it keeps. A chunk whose steps
are in order and whose values are all finite is stored with an outline (migration 22): for
each block of ``BLOCK`` consecutive points, the block's first lowest and first highest point
(one when they are the same point), as its position within the chunk, step, value and
timestamp. A chart of a range that covers a chunk whole reads the outline (~1/32 of the
points) instead of decoding the chunk; the lowest and highest point of any run of whole
blocks is among their outline points, so the range's extremes are never lost.

Blocks of 64 points (measured on the float32 loss of ``python -m bench scale``): the outline
costs ~0.5 byte a point on disk and ~1 µs a block to make; 128 halves both but then a
chart's bucket of 1,000 points spans fewer blocks, and ranges too short for the outline
(decoded whole, :data:`MIN_BLOCKS` blocks a bucket) grow twice as long.

The stored form: the block size, then four columns of equally many 8-byte little-endian items
(positions and steps int64, values and timestamps float64), one after the other, byte-shuffled and
compressed as a chunk's columns are (:mod:`chachaml.store.compression`). Chunks stored
before the migration, out of order or holding NaN/infinities have none (``NULL``) and are
read whole, as before. numpy (``chachaml[numpy]``) makes the outline ~20x faster when
installed; the pure-Python way gives the same bytes.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from types import ModuleType
from typing import Final, NamedTuple

from chachaml.store.codec import StoredChunk, join_chunks
from chachaml.store.compression import WIDTH, CorruptChunk, compress_items, decompress_items

BLOCK: Final = 64  # points a block (see the module docstring for why)
MIN_BLOCKS: Final = 2  # blocks a chart's bucket must span for outlines to be read (see above)
_SWAP = sys.byteorder != "little"


class Outline(NamedTuple):
    """A chunk's outline points, by position: their positions in the chunk and their columns."""

    positions: array[int]
    steps: array[int]
    values: array[float]
    timestamps: array[float]
    block: int  # points a block of the chunk (all but the last)


@cache
def _numpy() -> ModuleType | None:
    """The numpy module if installed (imported on first use: ingest without it still works)."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _native(typecode: str, data: bytes) -> array[float] | array[int]:
    """Packed little-endian items as an array."""
    out: array[float] | array[int] = array(typecode)
    out.frombytes(data)
    if _SWAP:
        out.byteswap()
    return out


def _little(items: array[int]) -> bytes:
    """An array's items packed little-endian."""
    if _SWAP:
        items = array(items.typecode, items)
        items.byteswap()
    return items.tobytes()


def _find(raw: bytes, value: float, start: int) -> int:
    """The index of the first double in ``raw`` at or after item ``start`` that is ``value``.

    A byte search instead of ``array.index`` (a float object per value); the first aligned
    match of a ``min``/``max`` taken from the same items is the first of equal ones.
    """
    pattern = struct.pack("<d", value)
    at = raw.find(pattern, start * WIDTH)
    while at % WIDTH:
        at = raw.find(pattern, at + 1)
    return at // WIDTH


def outline_positions(values: bytes, *, use_numpy: bool = True) -> array[int]:
    """Per block of ``BLOCK`` packed float64 values: its first lowest and first highest index.

    In order, one index when both are the same point. The values must all be finite. With
    numpy, ``argmin``/``argmax`` over the blocks as rows (the first of equal values, -0.0
    and 0.0 too, as ``min``/``max`` keep the first here without it).
    """
    count = len(values) // WIDTH
    np = _numpy() if use_numpy else None
    if np is None:
        out: array[int] = array("q")
        items = _native("d", values)
        for start in range(0, count, BLOCK):
            part = items[start : start + BLOCK]
            low, high = _find(values, min(part), start), _find(values, max(part), start)
            out.extend((low,) if low == high else (min(low, high), max(low, high)))
        return out
    v = np.frombuffer(values, dtype="<f8")
    whole = count - count % BLOCK
    rows = v[:whole].reshape(-1, BLOCK)
    base = np.arange(0, whole, BLOCK, dtype=np.int64)
    lows, highs = rows.argmin(axis=1) + base, rows.argmax(axis=1) + base
    if whole < count:
        tail = v[whole:]
        lows = np.append(lows, whole + int(tail.argmin()))
        highs = np.append(highs, whole + int(tail.argmax()))
    pairs = np.stack([np.minimum(lows, highs), np.maximum(lows, highs)], axis=1)
    keep = np.ones(pairs.shape, dtype=bool)
    keep[:, 1] = pairs[:, 0] != pairs[:, 1]
    return array("q", pairs[keep].astype(np.int64).tobytes())


def all_finite(values: bytes, *, use_numpy: bool = True) -> bool:
    """Whether every packed float64 value is finite (no NaN, no infinity)."""
    np = _numpy() if use_numpy else None
    if np is not None:
        return bool(np.isfinite(np.frombuffer(values, dtype="<f8")).all())
    items = _native("d", values)
    # a finite sum has no NaN or infinity in it; huge finite values may overflow it
    return math.isfinite(sum(items)) or all(map(math.isfinite, items))


def _gather(data: bytes, positions: array[int], *, use_numpy: bool) -> bytes:
    """The 8-byte items of ``data`` at ``positions``, as they are packed.

    numpy takes them in one indexing (~20 µs for a 50,000-point chunk's outline, against
    ~200 µs for a slice per item).
    """
    np = _numpy() if use_numpy else None
    if np is not None:
        where = np.frombuffer(positions, dtype=np.int64)
        return bytes(np.frombuffer(data, dtype="V8")[where].tobytes())
    view = memoryview(data)
    return b"".join([view[p * WIDTH : p * WIDTH + WIDTH] for p in positions])


def make_outline(steps: bytes, values: bytes, times: bytes, *, use_numpy: bool = True) -> bytes:
    """The stored outline of a chunk given as packed columns (steps in order, finite values).

    ``use_numpy=False`` takes the pure-Python way even with numpy installed (same bytes).
    """
    positions = outline_positions(values, use_numpy=use_numpy)
    picked = (_gather(c, positions, use_numpy=use_numpy) for c in (steps, values, times))
    columns = [_little(array("q", [BLOCK])), _little(positions), *picked]
    return compress_items(b"".join(columns))


def outlined(count: int, in_order: bool, values: bytes) -> bool:
    """Whether a chunk gets an outline: steps in order, a block or more, every value finite.

    A chunk smaller than a block would gain little and pay a compressed frame's header.
    """
    return in_order and count >= BLOCK and all_finite(values)


def read_outline(stored: bytes) -> Outline:
    """A stored outline's points; ``CorruptChunk`` when the bytes are not an outline."""
    raw = decompress_items(stored, "a metric chunk's outline")
    (block,) = _native("q", raw[:WIDTH]) if raw else (0,)
    n = (len(raw) - WIDTH) // 4
    if n <= 0 or len(raw) != WIDTH + 4 * n or block < 1:
        raise CorruptChunk(
            f"a metric chunk's outline holds {len(raw)} bytes and block size {block},"
            " not a block size and 4 columns"
        )
    at = [WIDTH + i * n for i in range(5)]
    positions, steps = (_native("q", raw[at[i] : at[i + 1]]) for i in (0, 1))
    values, times = (_native("d", raw[at[i] : at[i + 1]]) for i in (2, 3))
    return Outline(positions, steps, values, times, int(block))  # type: ignore[arg-type]


class ChunkSpan(NamedTuple):
    """What a range read knows of a chunk before fetching its arrays."""

    id: int
    points: int
    min_step: int
    max_step: int
    in_order: bool
    outlined: bool


def plan(
    spans: Sequence[ChunkSpan], min_step: int | None, max_step: int | None, buckets: int
) -> set[int]:
    """The ids of the chunks (overlapping a step range) whose outline is read instead.

    Only when the chunks, in id order, are each in step order and follow one another (the
    range's points are then the chunks' points one after the other), and when the range
    holds about ``MIN_BLOCKS`` blocks or more for each of a chart's ``buckets`` (a chunk the
    range cuts counts for the share of its step span inside it): then the chunks the range
    covers whole. Otherwise none (every chunk is decoded, every point returned).
    """
    ordered = sorted(spans, key=lambda s: s.id)
    if not all(s.in_order for s in ordered) or any(
        b.min_step < a.max_step for a, b in pairwise(ordered)
    ):
        return set()
    low = -math.inf if min_step is None else min_step
    high = math.inf if max_step is None else max_step
    inside = [s for s in ordered if s.min_step >= low and s.max_step <= high]
    estimate = sum(
        s.points
        * (min(high, s.max_step) - max(low, s.min_step) + 1)
        / (s.max_step - s.min_step + 1)
        for s in ordered
    )
    if estimate < buckets * MIN_BLOCKS * BLOCK:
        return set()
    return {s.id for s in inside if s.outlined}


def _identity(start: int, count: int) -> array[int]:
    """Positions ``start..start+count-1``."""
    np = _numpy()
    if np is None:
        return array("q", range(start, start + count))
    return array("q", np.arange(start, start + count, dtype=np.int64).tobytes())


def join_outlined(
    parts: Sequence[StoredChunk | tuple[int, bytes]], min_step: int | None, max_step: int | None
) -> tuple[array[int], array[float], array[float], array[int], int, array[int]]:
    """A range's points as :func:`plan` chose them: steps, values, times, positions, in range.

    ``parts`` are the chunks overlapping the range in id order (in step order, one after
    another, as :func:`plan` requires): a chunk to decode (cut to the range), or a chunk the
    range covers whole as ``(count, stored outline)``. Last, each outlined chunk's first
    position, points and block size, flattened. ``CorruptChunk`` as decoding raises.
    """
    steps, values, times, positions = array("q"), array("d"), array("d"), array("q")
    outlined: array[int] = array("q")
    at = 0
    for part in parts:
        if isinstance(part, StoredChunk):
            s, v, t = join_chunks([part], min_step, max_step)
            moved = _identity(at, len(s))
            at += len(s)
        else:
            count, stored = part
            o = read_outline(stored)
            if o.positions and not 0 <= o.positions[-1] < count:
                raise CorruptChunk(
                    f"an outline of a {count}-point chunk has position {o.positions[-1]}"
                )
            s, v, t = o.steps, o.values, o.timestamps
            moved = _shifted(o.positions, at)
            outlined.extend((at, count, o.block))
            at += count
        steps += s
        values += v
        times += t
        positions += moved
    return steps, values, times, positions, at, outlined


def _shifted(positions: array[int], by: int) -> array[int]:
    """``positions`` each plus ``by``."""
    np = _numpy()
    if np is None:
        return array("q", [p + by for p in positions])
    return array("q", (np.frombuffer(positions, dtype=np.int64) + by).tobytes())

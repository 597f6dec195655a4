"""A chunk's outline: each block's first lowest, first highest and last point, beside the chunk.

A chart of a million points keeps, per bucket of the step range, the bucket's lowest and
highest value, so it needs every value but only the few points it keeps. A chunk whose steps
are in order and whose values are all finite is stored with an outline (migration 22): for
each block of ``BLOCK`` consecutive points, the block's first lowest and first highest point
and its last point (fewer when some are the same point), as its position within the chunk,
step, value and timestamp; and the chunk's first point, and a block's first point when its
step repeats the one before (:func:`edge_positions`). The last points serve
``get_metric_history``, which keeps each step bucket's last value: a bucket edge moved to
just past a block's last step finds it among the outline points. A chart of a large range
(:func:`plan`) reads the outlines of the chunks it covers (~1/22 of their points) instead of
decoding them, and of a chunk the range cuts only the blocks it cuts
(:func:`join_outlined`). The extremes of any run of whole blocks are among their outline
points, so the range's lowest and highest values are never lost, and a chart whose bucket
edges are moved to block edges (``charts.snap_edges``) finds each bucket's exact extremes.

Blocks of 64 points, measured on the float32 loss of ``python -m bench scale``: the outline
takes 0.45 byte a point on disk (0.25 without the last points) and ~0.5 ms a 50,000-point
chunk to make with numpy (the compression itself ~1.2 ms). With 128, a 1,000-point chart
would read outlines only from 128,000 points in range (at ``MIN_BLOCKS`` 2), and shorter
ranges decode up to three whole 50,000-point chunks; with 32, outlines double and a whole
million-point series gives ~93,000 outline points to decode and bucket instead of ~46,000.

The stored form: the block size, then four columns of equally many 8-byte little-endian
items (positions and steps int64, values and timestamps float64), one after the other,
byte-shuffled and compressed as a chunk's columns are (:mod:`chachaml.store.compression`).
Chunks stored before the migration, out of order or holding NaN/infinities have none
(``NULL``) and are read whole, as before: nothing is backfilled. numpy (``chachaml[numpy]``)
makes the outline ~20x faster when installed; the pure-Python way (~0.1-0.2 µs a point)
gives the same bytes.
"""

from __future__ import annotations

import math
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import pairwise
from typing import Final, NamedTuple

from chachaml.store.codec import StoredChunk, join_chunks, optional_numpy, pack_items, unpack_items
from chachaml.store.compression import (
    WIDTH,
    Column,
    CorruptChunk,
    compress_items,
    decompress_items,
)

BLOCK: Final = 64  # points a block (see the module docstring for why)
# blocks a chart's bucket must span for outlines to be read: its edges, moved to block edges,
# move by half a block at most
MIN_BLOCKS: Final = 2


class Outline(NamedTuple):
    """A chunk's outline points, by position: their positions in the chunk and their columns."""

    positions: array[int]
    steps: array[int]
    values: array[float]
    timestamps: array[float]
    block: int  # points a block of the chunk (all but the last)


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
    np = optional_numpy() if use_numpy else None
    if np is None:
        out: array[int] = array("q")
        items = unpack_items("d", values)
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
    np = optional_numpy() if use_numpy else None
    if np is not None:
        return bool(np.isfinite(np.frombuffer(values, dtype="<f8")).all())
    items = unpack_items("d", values)
    # a finite sum has no NaN or infinity in it; huge finite values may overflow it
    return math.isfinite(sum(items)) or all(map(math.isfinite, items))


def _gather(data: bytes, positions: array[int], *, use_numpy: bool) -> bytes:
    """The 8-byte items of ``data`` at ``positions``, as they are packed.

    numpy takes them in one indexing (~20 µs for a 50,000-point chunk's outline, against
    ~200 µs for a slice per item).
    """
    np = optional_numpy() if use_numpy else None
    if np is not None:
        where = np.frombuffer(positions, dtype=np.int64)
        return bytes(np.frombuffer(data, dtype="V8")[where].tobytes())
    view = memoryview(data)
    return b"".join([view[p * WIDTH : p * WIDTH + WIDTH] for p in positions])


def edge_positions(steps: bytes, *, use_numpy: bool = True) -> array[int]:
    """The points an outline keeps besides the extremes: where blocks start and end.

    The chunk's first point, each block's last point, and the first point of a block whose
    step repeats the step before it (steps in order). A step-bucketed table
    (``get_metric_history``) then finds a bucket's last point exactly when its edge is just
    past a block's last step: the point after it is kept or has a higher step.
    """
    count = len(steps) // WIDTH
    np = optional_numpy() if use_numpy else None
    if np is None:
        items = unpack_items("q", steps)
        ends = [0, *range(BLOCK - 1, count, BLOCK), count - 1]
        ends += [s for s in range(BLOCK, count, BLOCK) if items[s] == items[s - 1]]
        return array("q", sorted(set(ends)))
    s = np.frombuffer(steps, dtype="<i8")
    starts = np.arange(BLOCK, count, BLOCK, dtype=np.int64)
    ends = np.concatenate((
        np.array([0, count - 1], dtype=np.int64),
        np.arange(BLOCK - 1, count, BLOCK, dtype=np.int64),
        starts[s[starts] == s[starts - 1]],
    ))  # fmt: skip
    return array("q", np.unique(ends).astype(np.int64).tobytes())


def outline_points(steps: bytes, values: bytes, *, use_numpy: bool = True) -> array[int]:
    """The positions an outline keeps: :func:`outline_positions` and :func:`edge_positions`."""
    np = optional_numpy() if use_numpy else None
    extremes = outline_positions(values, use_numpy=use_numpy)
    ends = edge_positions(steps, use_numpy=use_numpy)
    if np is None:
        return array("q", sorted(set(extremes) | set(ends)))
    both = np.union1d(np.frombuffer(extremes, np.int64), np.frombuffer(ends, np.int64))
    return array("q", both.astype(np.int64).tobytes())


def make_outline(steps: bytes, values: bytes, times: bytes, *, use_numpy: bool = True) -> bytes:
    """The stored outline of a chunk given as packed columns (steps in order, finite values).

    ``use_numpy=False`` takes the pure-Python way even with numpy installed (same bytes).
    """
    positions = outline_points(steps, values, use_numpy=use_numpy)
    picked = (_gather(c, positions, use_numpy=use_numpy) for c in (steps, values, times))
    columns = [pack_items(array("q", [BLOCK])), pack_items(positions), *picked]
    return compress_items(b"".join(columns))


def outlined(count: int, in_order: bool, values: bytes) -> bool:
    """Whether a chunk gets an outline: steps in order, a block or more, every value finite.

    A chunk smaller than a block would gain little and pay a compressed frame's header.
    """
    return in_order and count >= BLOCK and all_finite(values)


def read_outline(stored: bytes) -> Outline:
    """A stored outline's points; ``CorruptChunk`` when the bytes are not an outline."""
    raw = decompress_items(stored, "a metric chunk's outline")
    (block,) = unpack_items("q", raw[:WIDTH]) if raw else (0,)
    n = (len(raw) - WIDTH) // 4
    if n <= 0 or len(raw) != WIDTH + 4 * n or block < 1:
        raise CorruptChunk(
            f"a metric chunk's outline holds {len(raw)} bytes and block size {block},"
            " not a block size and 4 columns"
        )
    at = [WIDTH + i * n for i in range(5)]
    positions, steps = (unpack_items("q", raw[at[i] : at[i + 1]]) for i in (0, 1))
    values, times = (unpack_items("d", raw[at[i] : at[i + 1]]) for i in (2, 3))
    return Outline(positions, steps, values, times, int(block))  # type: ignore[arg-type]


class ChunkSpan(NamedTuple):
    """What a range read knows of a chunk before fetching its arrays."""

    id: int
    points: int
    min_step: int
    max_step: int
    in_order: bool
    outlined: bool


class Plan(NamedTuple):
    """Which chunks of a range read give their outline and which their columns (by id).

    ``order``: the chunks' ids in the order their points follow one another (by step).
    ``blocks``: outline points stand for the blocks inside the range; otherwise every
    point is read, and the outlines of the chunks the range cuts only find where it cuts.
    """

    outlines: set[int]
    columns: set[int]
    order: list[int]
    blocks: bool


def plan(
    spans: Sequence[ChunkSpan], min_step: int | None, max_step: int | None, buckets: int
) -> Plan:
    """What to fetch of the chunks overlapping a step range for a chart of ``buckets``.

    Outlines only when the chunks are each in step order and follow one another (the
    range's points are then the chunks' points one after the other, ``order``), and when
    the range holds about ``MIN_BLOCKS`` blocks or more for each bucket (a chunk the range
    cuts counts for the share of its step span inside it). Then every chunk with an outline
    gives it, and its columns too when the range cuts it (the blocks it cuts are read from
    them); the others give their columns. Otherwise every chunk its columns (every point),
    and a chunk with an outline that the range cuts its outline too: the items of the range
    are then taken from its columns without unshuffling the rest.
    """
    by_id = sorted(spans, key=lambda s: s.id)
    every = {s.id for s in by_id}
    # by step, then as stored: a flush that committed before the one logged ahead of it
    # leaves chunks whose ids are not in step order, yet they follow one another
    ordered = sorted(by_id, key=lambda s: s.min_step)
    if not all(s.in_order for s in ordered) or any(
        b.min_step < a.max_step for a, b in pairwise(ordered)
    ):
        return Plan(set(), every, [s.id for s in by_id], blocks=False)
    low = -math.inf if min_step is None else min_step
    high = math.inf if max_step is None else max_step
    inside = {s.id for s in ordered if s.min_step >= low and s.max_step <= high}
    order = [s.id for s in ordered]
    estimate = sum(
        s.points
        * (min(high, s.max_step) - max(low, s.min_step) + 1)
        / (s.max_step - s.min_step + 1)
        for s in ordered
    )
    if estimate < buckets * MIN_BLOCKS * BLOCK:  # every point; outlines find the cuts
        return Plan({s.id for s in ordered if s.outlined and s.id not in inside}, every,
                    order, blocks=False)  # fmt: skip
    return Plan(
        {s.id for s in ordered if s.outlined},
        {s.id for s in ordered if not s.outlined or s.id not in inside},
        order,
        blocks=True,
    )


class Part(NamedTuple):
    """A chunk of a range read: its columns, its outline, or both (a chunk the range cuts)."""

    points: int
    chunk: StoredChunk | None
    outline: bytes | None


class Joined(NamedTuple):
    """A range's points as read for a chart (see ``MetricOutline``)."""

    steps: array[int]
    values: array[float]
    timestamps: array[float]
    positions: array[int]
    in_range: int
    outlined: array[int]


def _identity(start: int, count: int) -> array[int]:
    """Positions ``start..start+count-1``."""
    np = optional_numpy()
    if np is None:
        return array("q", range(start, start + count))
    return array("q", np.arange(start, start + count, dtype=np.int64).tobytes())


def _shifted(positions: array[int], by: int) -> array[int]:
    """``positions`` each plus ``by``."""
    np = optional_numpy()
    if np is None:
        return array("q", [p + by for p in positions])
    return array("q", (np.frombuffer(positions, dtype=np.int64) + by).tobytes())


def _checked(points: int, stored: bytes) -> Outline:
    """A part's outline, its positions within the chunk."""
    o = read_outline(stored)
    if o.positions and not 0 <= o.positions[-1] < points:
        raise CorruptChunk(f"an outline of a {points}-point chunk has position {o.positions[-1]}")
    return o


class _Cut:
    """A chunk in step order cut to a step range through its outline and a few of its items.

    Only the blocks the range cuts are taken from the columns (:class:`Column`); the
    blocks inside it give their outline points.
    """

    def __init__(self, chunk: StoredChunk, outline: Outline) -> None:
        points = chunk.points if chunk.points is not None else 0
        self.points, self.outline = points, outline
        self.columns = [Column(chunk.format, points, c)
                        for c in (chunk.steps, chunk.values, chunk.timestamps)]  # fmt: skip

    def index(self, step: int, after: bool) -> int:
        """``bisect_left`` (``bisect_right`` if ``after``) of ``step`` in the chunk's steps.

        The outline's points bound it to between two of them (two blocks at most), whose
        steps alone are read.
        """
        find = bisect_right if after else bisect_left
        o = self.outline
        j = find(o.steps, step)
        low = 0 if j == 0 else o.positions[j - 1] + 1
        high = self.points if j == len(o.steps) else o.positions[j] + 1
        between = unpack_items("q", self.columns[0].items(low, high))
        return low + find(between, step)

    def take(self, start: int, stop: int) -> tuple[array[int], array[float], array[float]]:
        """Items ``start..stop-1`` of the three columns."""
        steps, values, times = (c.items(start, stop) for c in self.columns)
        return unpack_items("q", steps), unpack_items("d", values), unpack_items("d", times)  # type: ignore[return-value]


def join_outlined(
    parts: Sequence[Part], min_step: int | None, max_step: int | None, *, blocks: bool = True
) -> Joined:
    """A range's points as :func:`plan` chose them, each placed by its position in the range.

    ``parts`` are the chunks overlapping the range in id order (in step order, one after
    another, as :func:`plan` requires). A chunk with columns only is decoded and cut to the
    range; one with an outline only (the range covers it whole) gives its outline points;
    one with both is cut to the range, its blocks inside the range giving their outline
    points and the (at most two) blocks the range cuts their items, or, without ``blocks``
    (:attr:`Plan.blocks`), every item in the range. ``CorruptChunk`` as decoding raises.
    """
    steps, values, times, positions = array("q"), array("d"), array("d"), array("q")
    outlined: array[int] = array("q")
    at = 0
    for part in parts:
        if part.outline is None:
            assert part.chunk is not None
            s, v, t = join_chunks([part.chunk], min_step, max_step)
            steps += s
            values += v
            times += t
            positions += _identity(at, len(s))
            at += len(s)
            continue
        o = _checked(part.points, part.outline)
        first, end = 0, part.points
        cut = None if part.chunk is None else _Cut(part.chunk, o)
        if cut is not None:
            first = 0 if min_step is None else cut.index(min_step, after=False)
            end = part.points if max_step is None else cut.index(max_step, after=True)
            if first >= end:
                continue
        # whole blocks from ``inner`` to ``outer`` (a chunk's last block may be short)
        inner = -(-first // o.block) * o.block
        outer = end if end == part.points else end // o.block * o.block
        if cut is not None and (inner >= outer or not blocks):  # every point
            s, v, t = cut.take(first, end)
            steps += s
            values += v
            times += t
            positions += _identity(at, end - first)
            at += end - first
            continue
        if cut is not None and first < inner:
            s, v, t = cut.take(first, inner)
            steps += s
            values += v
            times += t
            positions += _identity(at, inner - first)
        lo, hi = bisect_left(o.positions, inner), bisect_left(o.positions, outer)
        steps += o.steps[lo:hi]
        values += o.values[lo:hi]
        times += o.timestamps[lo:hi]
        positions += _shifted(o.positions[lo:hi], at - first)
        outlined.extend((at + inner - first, outer - inner, o.block))
        if cut is not None and outer < end:
            s, v, t = cut.take(outer, end)
            steps += s
            values += v
            times += t
            positions += _identity(at + outer - first, end - outer)
        at += end - first
    return Joined(steps, values, times, positions, at, outlined)

"""Chunk outlines: each block's first lowest and highest point and its last, the same bytes
with numpy or without, read back as logged; which chunks a range read takes outlines of; the
joined range."""

from __future__ import annotations

import random
import struct

import pytest

from chachaml.store import outline as outline_module
from chachaml.store.codec import StoredChunk, chunk_from_columns
from chachaml.store.compression import RAW, SHUFFLED_ZSTD, CorruptChunk, compress_items, encode
from chachaml.store.outline import (
    BLOCK,
    MIN_BLOCKS,
    ChunkSpan,
    Part,
    Plan,
    all_finite,
    edge_positions,
    join_outlined,
    make_outline,
    outline_positions,
    outlined,
    plan,
    read_outline,
)

EXTREMES = [1e308, -1.7976931348623157e308, 5e-324, -5e-324, -0.0, 0.0, 2.2e-308, 1.5, -1.5]


def packed(values: list[float]) -> tuple[bytes, bytes, bytes]:
    chunk = chunk_from_columns("r", "k", [10 + 3 * i for i in range(len(values))], values,
                               [1.7e9 + i / 7 for i in range(len(values))])  # fmt: skip
    return chunk.steps, chunk.values, chunk.timestamps


def per_block(values: list[float]) -> list[int]:
    """The definition: per block, the first index of its min and of its max, in order."""
    out: list[int] = []
    for start in range(0, len(values), BLOCK):
        part = values[start : start + BLOCK]
        low = start + part.index(min(part))
        high = start + part.index(max(part))
        out += [low] if low == high else sorted((low, high))
    return out


def block_ends(steps: list[int], *, chunk_start: bool = True) -> set[int]:
    """The definition: each block's last index, the first (of a chunk), and each block's
    first index whose step repeats the one before it."""
    n = len(steps)
    ends = {min(s + BLOCK, n) - 1 for s in range(0, n, BLOCK)} | ({0} if chunk_start else set())
    return ends | {s for s in range(BLOCK, n, BLOCK) if steps[s] == steps[s - 1]}


@pytest.mark.parametrize("n", [1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17, 5000])
def test_an_outline_holds_each_blocks_first_extremes_and_last_and_reads_back(n: int) -> None:
    rng = random.Random(n)
    values = [rng.choice(EXTREMES) if rng.random() < 0.3 else rng.gauss(0, 1e3) for _ in range(n)]
    steps, vals, times = packed(values)
    stored = make_outline(steps, vals, times)
    assert stored == make_outline(steps, vals, times, use_numpy=False)
    outline = read_outline(stored)
    assert outline.block == BLOCK
    expected = sorted(set(per_block(values)) | block_ends([10 + 3 * i for i in range(n)]))
    assert list(outline.positions) == expected
    assert list(outline.steps) == [10 + 3 * i for i in expected]
    assert [struct.pack("<d", v) for v in outline.values] == [
        struct.pack("<d", values[i])
        for i in expected  # bit for bit: -0.0 stays -0.0
    ]
    assert list(outline.timestamps) == [1.7e9 + i / 7 for i in expected]


def test_equal_values_keep_the_first_of_them_with_and_without_numpy() -> None:
    values = [0.0, -0.0] * BLOCK + [-0.0, 0.0, 5.0, 5.0]
    _, vals, _ = packed(values)
    assert outline_positions(vals) == outline_positions(vals, use_numpy=False)
    # blocks of equal values give one point each; -0.0 == 0.0, the first is kept
    assert list(outline_positions(vals)) == [0, BLOCK, 2 * BLOCK, 2 * BLOCK + 2]


@pytest.mark.parametrize("seed", range(6))
def test_a_block_whose_first_step_repeats_the_one_before_keeps_its_first_point(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(1, 8 * BLOCK)
    steps = sorted(rng.randrange(n // rng.choice([1, 3, 40]) + 1) for _ in range(n))
    chunk = chunk_from_columns("r", "k", steps, [0.0] * n, [0.0] * n)
    got = edge_positions(chunk.steps)
    assert got == edge_positions(chunk.steps, use_numpy=False)
    assert list(got) == sorted(block_ends(steps))


def test_only_finite_chunks_in_step_order_of_a_block_or_more_are_outlined() -> None:
    _, finite, _ = packed([1e308] * BLOCK)  # a sum that overflows: still finite
    _, nan, _ = packed([1.0] * (BLOCK - 1) + [float("nan")])
    for use_numpy in (True, False):
        assert all_finite(finite, use_numpy=use_numpy) and not all_finite(nan, use_numpy=use_numpy)
    assert outlined(BLOCK, True, finite)
    assert not outlined(BLOCK, False, finite) and not outlined(BLOCK, True, nan)
    assert not outlined(BLOCK - 1, True, finite[:-8])


def test_an_outline_that_is_not_one_is_a_corrupt_chunk() -> None:
    with pytest.raises(CorruptChunk, match="does not decompress"):
        read_outline(b"not zstd")
    with pytest.raises(CorruptChunk, match="not a block size and 4 columns"):
        read_outline(compress_items(bytes(8 + 32)))  # block size 0
    with pytest.raises(CorruptChunk, match="not a block size and 4 columns"):
        read_outline(compress_items(bytes(8 + 24)))


def spans(*counts: int, outlined: bool = True) -> list[ChunkSpan]:
    """Chunks one after another at one point a step from step 0."""
    out, step = [], 0
    for i, n in enumerate(counts):
        out.append(ChunkSpan(i + 1, n, step, step + n - 1, True, outlined))
        step += n
    return out


def test_outlines_are_read_only_when_the_range_is_large_enough_and_in_order() -> None:
    enough = MIN_BLOCKS * BLOCK  # one bucket's worth (an even number of points)
    chunks = spans(enough, enough, enough)
    order, ids = [1, 2, 3], {1, 2, 3}
    assert plan(chunks, None, None, 3) == Plan(ids, set(), order, blocks=True)
    # too few blocks a bucket: every point
    assert plan(chunks, None, None, 4) == Plan(set(), ids, order, blocks=False)
    assert plan(chunks, 1, None, 2) == Plan(ids, {1}, order, blocks=True)  # the first is cut
    assert plan(chunks, 1, 3 * enough - 2, 1) == Plan(ids, {1, 3}, order, blocks=True)
    half = enough // 2  # chunks cut by the range count for the share of their steps in it
    cut = (half, 3 * enough - half - 1)
    assert plan(chunks, *cut, 2) == Plan(ids, {1, 3}, order, blocks=True)
    # every point, but the cut chunks' outlines find where the range cuts them
    assert plan(chunks, *cut, 3) == Plan({1, 3}, ids, order, blocks=False)
    bare = spans(enough, enough, outlined=False)
    assert plan(bare, None, None, 1) == Plan(set(), {1, 2}, [1, 2], blocks=True)
    stored_late = [chunks[1], chunks[2]._replace(id=4), chunks[0]._replace(id=5)]
    assert plan(stored_late, None, None, 1) == Plan({2, 4, 5}, set(), [5, 2, 4], blocks=True)
    every = Plan(set(), ids, order, blocks=False)
    shuffled = [chunks[0]._replace(in_order=False), *chunks[1:]]
    assert plan(shuffled, None, None, 1) == every
    overlapping = [chunks[0], chunks[1]._replace(min_step=enough - 5), chunks[2]]
    assert plan(overlapping, None, None, 1) == every
    touching = [chunks[0], chunks[1]._replace(min_step=enough - 1), chunks[2]]
    assert plan(touching, None, None, 1) == Plan(ids, set(), order, blocks=True)


def stored_chunk(steps: list[int], values: list[float], fmt: int) -> tuple[StoredChunk, bytes]:
    """A chunk as stored (``fmt`` RAW or compressed) and its outline."""
    chunk = chunk_from_columns("r", "k", steps, values, [0.5 * s for s in steps])
    columns = (chunk.steps, chunk.values, chunk.timestamps)
    if fmt == RAW:
        got: tuple[int, bytes, bytes, bytes] = (RAW, *columns)
    else:
        got = encode(len(steps), *columns)
    stored = StoredChunk(got[1], got[2], got[3], steps[0], steps[-1], True, got[0], len(steps))
    return stored, make_outline(*columns)


@pytest.mark.parametrize("seed", range(12))
def test_a_joined_range_is_its_points_with_outlines_for_whole_blocks(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    if seed % 2:
        monkeypatch.setattr(outline_module, "optional_numpy", lambda: None)
    sizes = [rng.randrange(1, 6 * BLOCK) for _ in range(4)]
    steps = sorted(rng.sample(range(20 * sum(sizes)), sum(sizes)))
    values = [rng.gauss(0, 1) for _ in steps]
    chunks, at = [], 0
    for size in sizes:
        part = slice(at, at + size)
        chunks.append(stored_chunk(steps[part], values[part], rng.choice([RAW, SHUFFLED_ZSTD])))
        at += size
    for _ in range(10):
        lo = rng.choice([None, rng.randrange(-5, steps[-1] + 5)])
        hi = rng.choice([None, rng.randrange(lo or 0, steps[-1] + 10)])
        inside = [i for i, s in enumerate(steps)
                  if (lo is None or s >= lo) and (hi is None or s <= hi)]  # fmt: skip
        parts = []
        for k, (chunk, stored) in enumerate(chunks):
            if k == 0:  # one chunk without outline
                parts.append(Part(sizes[k], chunk, None))
            elif (lo is None or chunk.min_step >= lo) and (hi is None or chunk.max_step <= hi):
                parts.append(Part(sizes[k], None, stored))
            else:
                parts.append(Part(sizes[k], chunk, stored))
        # every point (a range too short for outlines): only chunks it cuts give theirs
        every = join_outlined(
            [p._replace(chunk=c, outline=None if p.chunk is None else p.outline)
             for p, (c, _) in zip(parts, chunks, strict=True)], lo, hi, blocks=False
        )  # fmt: skip
        assert list(every.positions) == list(range(len(inside))) and not every.outlined
        assert list(every.steps) == [steps[i] for i in inside]
        assert list(every.values) == [values[i] for i in inside]
        joined = join_outlined(parts, lo, hi)
        assert joined.in_range == len(inside)
        where = list(joined.positions)
        assert where == sorted(set(where)) and all(0 <= p < len(inside) for p in where)
        assert list(joined.steps) == [steps[inside[p]] for p in where]
        assert list(joined.values) == [values[inside[p]] for p in where]
        assert list(joined.timestamps) == [0.5 * steps[inside[p]] for p in where]
        covered: set[int] = set()
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        chunk_starts = {inside.index(g) for g in starts if g in inside}
        spans_ = list(joined.outlined)
        for first, points, block in zip(spans_[::3], spans_[1::3], spans_[2::3], strict=True):
            assert block == BLOCK
            covered |= set(range(first, first + points))
            span = [values[inside[p]] for p in range(first, first + points)]
            ends = block_ends([steps[inside[p]] for p in range(first, first + points)],
                              chunk_start=first in chunk_starts)  # fmt: skip
            expected = sorted(first + i for i in set(per_block(span)) | ends)
            assert [p for p in where if first <= p < first + points] == expected
        assert [p for p in where if p not in covered] == [
            p for p in range(len(inside)) if p not in covered
        ], "outside whole blocks: every point"
    with pytest.raises(CorruptChunk, match="position"):
        join_outlined([Part(1, None, chunks[1][1])], None, None)


def test_outlines_cost_a_fraction_of_a_byte_a_point() -> None:
    rng = random.Random(22)
    single = struct.Struct("f")
    loss = [single.unpack(single.pack(2.0 / (1 + i / 5e3) + rng.gauss(0, 0.02)))[0]
            for i in range(50_000)]  # fmt: skip
    assert len(make_outline(*packed(loss))) / len(loss) < 0.5

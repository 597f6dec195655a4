"""Chunk outlines: each block's first lowest and highest point, the same bytes with numpy or
without, read back as logged; which chunks a range read takes outlines of; the joined range."""

from __future__ import annotations

import random
import struct

import pytest

from chachaml.store import outline as outline_module
from chachaml.store.codec import StoredChunk, chunk_from_columns
from chachaml.store.compression import CorruptChunk, compress_items
from chachaml.store.outline import (
    BLOCK,
    MIN_BLOCKS,
    ChunkSpan,
    all_finite,
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


@pytest.mark.parametrize("n", [1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17, 5000])
def test_an_outline_holds_each_blocks_first_extremes_and_reads_back(n: int) -> None:
    rng = random.Random(n)
    values = [rng.choice(EXTREMES) if rng.random() < 0.3 else rng.gauss(0, 1e3) for _ in range(n)]
    steps, vals, times = packed(values)
    stored = make_outline(steps, vals, times)
    assert stored == make_outline(steps, vals, times, use_numpy=False)
    outline = read_outline(stored)
    assert outline.block == BLOCK
    expected = per_block(values)
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


def test_outlines_are_read_only_of_chunks_covered_whole_by_a_large_enough_range() -> None:
    enough = MIN_BLOCKS * BLOCK  # one bucket's worth (an even number of points)
    chunks = spans(enough, enough, enough)
    assert plan(chunks, None, None, 3) == {1, 2, 3}
    assert plan(chunks, None, None, 4) == set()  # too few blocks a bucket: every point
    assert plan(chunks, 1, None, 2) == {2, 3}  # the first is cut by the range
    assert plan(chunks, 1, 3 * enough - 2, 1) == {2}
    half = enough // 2  # chunks cut by the range count for the share of their steps in it
    assert plan(chunks, half, 3 * enough - half - 1, 2) == {2}
    assert plan(chunks, half, 3 * enough - half - 1, 3) == set()
    assert plan(spans(enough, enough, outlined=False), None, None, 1) == set()
    shuffled = [chunks[0]._replace(in_order=False), *chunks[1:]]
    assert plan(shuffled, None, None, 1) == set()
    overlapping = [chunks[0], chunks[1]._replace(min_step=enough - 5), chunks[2]]
    assert plan(overlapping, None, None, 1) == set()
    touching = [chunks[0], chunks[1]._replace(min_step=enough - 1), chunks[2]]
    assert plan(touching, None, None, 1) == {1, 2, 3}


@pytest.mark.parametrize("with_numpy", [True, False])
def test_a_joined_range_places_outline_points_after_the_points_before_them(
    with_numpy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not with_numpy:
        monkeypatch.setattr(outline_module, "_numpy", lambda: None)
    values = [float((i * 37) % 101) for i in range(3 * BLOCK)]
    steps, vals, times = packed(values)
    first = StoredChunk(steps, vals, times, 10, 10 + 3 * (3 * BLOCK - 1), True, points=3 * BLOCK)
    outline = make_outline(steps, vals, times)
    got_steps, got_values, _, positions, in_range, outlined = join_outlined(
        [first, (3 * BLOCK, outline)], 13, None
    )
    assert in_range == 3 * BLOCK - 1 + 3 * BLOCK
    assert list(outlined) == [3 * BLOCK - 1, 3 * BLOCK, BLOCK]
    assert list(positions[: 3 * BLOCK - 1]) == list(range(3 * BLOCK - 1))
    assert list(positions[3 * BLOCK - 1 :]) == [3 * BLOCK - 1 + p for p in per_block(values)]
    assert got_steps[0] == 13 and list(got_values[3 * BLOCK - 1 :]) == [
        values[p] for p in per_block(values)
    ]
    with pytest.raises(CorruptChunk, match="position"):
        join_outlined([(BLOCK, outline)], None, None)


def test_outlines_cost_a_fraction_of_a_byte_a_point() -> None:
    rng = random.Random(22)
    single = struct.Struct("f")
    loss = [single.unpack(single.pack(2.0 / (1 + i / 5e3) + rng.gauss(0, 0.02)))[0]
            for i in range(50_000)]  # fmt: skip
    assert len(make_outline(*packed(loss))) / len(loss) < 0.5

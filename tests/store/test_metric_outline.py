"""Reading a step range for a chart, on every backend: large ranges come back as the outlines
of the chunks they cover whole plus every point of the rest, each point placed in the range,
and the range's extremes are always among them."""

from __future__ import annotations

import math
import random
import time

import pytest

from chachaml.errors import NotFound
from chachaml.records.metrics import MetricOutline
from chachaml.records.runs import NewRun
from chachaml.store import Store
from chachaml.store.codec import make_chunk
from chachaml.store.outline import BLOCK, MIN_BLOCKS

pytestmark = [pytest.mark.anyio, pytest.mark.contract]
RUN = "b" * 32
CHUNK = 1000  # points a chunk
SHOWN = 4  # a chart of 2 buckets: a range of 2 * MIN_BLOCKS * BLOCK points reads outlines


async def new_run(store: Store) -> None:
    await store.create_run(NewRun(id=RUN, experiment="e", name="r", created_by="ana",
                                  started_at=time.time(), heartbeat_timeout=60.0))  # fmt: skip


async def log_walk(store: Store, key: str, chunks: int, seed: int) -> None:
    """``chunks`` chunks of a random walk at steps ``0, 2, 4, ...`` (one point a step)."""
    rng = random.Random(seed)
    value, step = 0.0, 0
    for c in range(chunks):
        points = []
        for i in range(CHUNK):
            value += rng.gauss(0, 1)
            points.append((step, value, 1000.0 + c * CHUNK + i))
            step += 2
        await store.log_metrics([make_chunk(RUN, key, points)])


def check_against(
    outline: MetricOutline, steps: list[int], values: list[float], starts: set[int]
) -> None:
    """Each returned point is the range's point at its position; the extremes are there.

    ``starts``: the first steps of the chunks (steps increase: no block repeats a step).
    """
    assert outline.in_range == len(steps)
    got = list(zip(outline.steps, outline.values, strict=True))
    positions = range(len(steps)) if outline.positions is None else outline.positions
    assert list(positions) == sorted(set(positions))
    assert got == [(steps[p], values[p]) for p in positions]
    if steps:
        assert min(outline.values) == min(values) and max(outline.values) == max(values)
    spans = outline.outlined.tolist()
    assert (outline.positions is None) == (not spans)
    for first, points, block in zip(spans[::3], spans[1::3], spans[2::3], strict=True):
        assert block == BLOCK
        inside = [p for p in positions if first <= p < first + points]
        expected: list[int] = []  # each block's first lowest and first highest point, its last
        for start in range(first, first + points, block):
            end = min(start + block, first + points)
            part = values[start:end]
            low, high = part.index(min(part)), part.index(max(part))
            chunk = {start} if steps[start] in starts else set()
            expected += sorted({start + low, start + high, end - 1} | chunk)
        assert inside == expected


async def test_a_large_range_reads_outlines_and_keeps_every_extreme(store: Store) -> None:
    await new_run(store)
    await log_walk(store, "loss", 6, seed=1)
    rng = random.Random(2)
    ranges = [(None, None), (1, None), (None, 9000), (2 * CHUNK * 2 + 1, 11_000)]
    ranges += [(lo, lo + rng.randrange(2, 12_000)) for lo in rng.sample(range(12_000), 10)]
    outlined = 0
    for lo, hi in ranges:
        exact = await store.metric_points(RUN, "loss", min_step=lo, max_step=hi)
        found = await store.metric_outline(RUN, "loss", min_step=lo, max_step=hi, points=SHOWN)
        assert (found.total, found.first_step, found.last_step) == (6 * CHUNK, 0, 11_998)
        check_against(found, list(exact.steps), list(exact.values),
                      {c * 2 * CHUNK for c in range(6)})  # fmt: skip
        if found.positions is not None:
            outlined += 1
            assert len(found.steps) < found.in_range
        if found.in_range < 2 * MIN_BLOCKS * BLOCK:
            assert found.positions is None
    assert outlined >= 4
    whole = await store.metric_outline(RUN, "loss", points=SHOWN)
    assert whole.positions is not None and len(whole.steps) < 6 * CHUNK // 10


async def test_a_range_too_short_for_the_chart_returns_every_point(store: Store) -> None:
    await new_run(store)
    await log_walk(store, "loss", 6, seed=3)
    rng = random.Random(9)
    for lo, hi in [(None, None), (5, 7), (1999, 2001), (2001, 9001), (None, 10)] + [
        (lo, lo + rng.randrange(12_000)) for lo in rng.sample(range(12_000), 8)
    ]:
        found = await store.metric_outline(RUN, "loss", min_step=lo, max_step=hi, points=1000)
        exact = await store.metric_points(RUN, "loss", min_step=lo, max_step=hi)
        assert found.positions is None and found.in_range == len(exact.steps)
        assert (found.steps, found.values, found.timestamps) == (
            exact.steps, exact.values, exact.timestamps)  # fmt: skip


async def test_chunks_out_of_order_or_with_nan_are_read_whole(store: Store) -> None:
    await new_run(store)
    await log_walk(store, "loss", 3, seed=4)
    late = [(s, float(s), 5000.0 + s) for s in range(6000, 6000 + CHUNK)]
    late[10] = (6010, math.nan, 5010.0)
    late[20] = (6020, math.inf, 5020.0)
    await store.log_metrics([make_chunk(RUN, "loss", late)])
    found = await store.metric_outline(RUN, "loss", points=SHOWN)
    exact = await store.metric_points(RUN, "loss")
    assert found.positions is not None  # the first three chunks are outlined
    got = dict(zip(found.steps, found.values, strict=True))
    assert math.isnan(got[6010]) and got[6020] == math.inf
    assert len([v for v in found.values if not math.isfinite(v)]) == 2
    finite = [(s, v) for s, v in zip(exact.steps, exact.values, strict=True) if math.isfinite(v)]
    assert max(v for s, v in got.items() if math.isfinite(v)) == max(v for _, v in finite)

    steps = list(range(3 * CHUNK))
    random.Random(5).shuffle(steps)
    await store.log_metrics([make_chunk(RUN, "shuffled", [(s, -s, 1.0) for s in steps])])
    mixed = await store.metric_outline(RUN, "shuffled", points=SHOWN)
    assert mixed.positions is None and list(mixed.steps) == list(range(3 * CHUNK))


async def test_chunks_overlapping_in_step_are_read_whole(store: Store) -> None:
    await new_run(store)
    await log_walk(store, "loss", 3, seed=6)
    again = [(s, 1e6, 9000.0) for s in range(100, 100 + CHUNK)]
    await store.log_metrics([make_chunk(RUN, "loss", again)])
    found = await store.metric_outline(RUN, "loss", points=SHOWN)
    exact = await store.metric_points(RUN, "loss")
    assert found.positions is None
    assert list(found.steps) == list(exact.steps) and max(found.values) == 1e6


async def test_a_missing_metric_is_not_found(store: Store) -> None:
    await new_run(store)
    await log_walk(store, "loss", 1, seed=7)
    with pytest.raises(NotFound, match=r"no metric 'acc'.*loss"):
        await store.metric_outline(RUN, "acc", points=SHOWN)
    empty = await store.metric_outline(RUN, "loss", min_step=10**6, points=SHOWN)
    assert empty.in_range == 0 and list(empty.steps) == [] and empty.positions is None


async def test_chunks_stored_out_of_step_order_still_read_outlines(store: Store) -> None:
    await new_run(store)
    rng = random.Random(8)
    chunks = [[(s, rng.gauss(0, 1), 1000.0 + s) for s in range(c * CHUNK, (c + 1) * CHUNK)]
              for c in range(4)]  # fmt: skip
    for c in (1, 0, 3, 2):  # each flush committed before the one logged ahead of it
        await store.log_metrics([make_chunk(RUN, "loss", chunks[c])])
    exact = await store.metric_points(RUN, "loss", min_step=500)
    assert list(exact.steps) == list(range(500, 4 * CHUNK))
    found = await store.metric_outline(RUN, "loss", min_step=500, points=SHOWN)
    assert found.positions is not None
    check_against(found, list(exact.steps), list(exact.values), {c * CHUNK for c in range(4)})

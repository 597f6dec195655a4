"""Reading a metric's step range, on every backend: only the points asked for, in step order,
with the whole series' extent; every chunk stores its step span as it is logged."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest

from chachaml.errors import NotFound
from chachaml.records.runs import NewRun
from chachaml.store import Store, open_store
from chachaml.store.codec import make_chunk
from chachaml.store.sql.store import SQLStore

pytestmark = [pytest.mark.anyio, pytest.mark.contract]
RUN = "a" * 32


async def new_run(store: Store) -> None:
    await store.create_run(NewRun(id=RUN, experiment="e", name="r", created_by="ana",
                                  started_at=time.time(), heartbeat_timeout=60.0))  # fmt: skip


async def log(store: Store, key: str, steps: list[int], t0: float = 1000.0) -> None:
    """One chunk: each point's value is its step plus a tenth, its time ``t0`` plus its index."""
    points = [(s, s + 0.1, t0 + i) for i, s in enumerate(steps)]
    await store.log_metrics([make_chunk(RUN, key, points)])


async def test_a_step_range_reads_only_the_points_in_it(store: Store) -> None:
    await new_run(store)
    for start in (0, 100, 200):
        await log(store, "loss", list(range(start, start + 100)))
    part = await store.metric_history(RUN, "loss", min_step=150, max_step=210)
    assert part.steps == list(range(150, 211))
    assert part.values == [s + 0.1 for s in range(150, 211)]
    assert (await store.metric_history(RUN, "loss", min_step=295)).steps == list(range(295, 300))
    assert (await store.metric_history(RUN, "loss", max_step=2)).steps == [0, 1, 2]
    assert (await store.metric_history(RUN, "loss", min_step=99, max_step=100)).steps == [99, 100]
    whole = await store.metric_history(RUN, "loss")
    assert whole.steps == list(range(300)) and len(whole.timestamps) == 300


async def test_a_range_without_points_is_empty_and_a_missing_metric_not_found(
    store: Store,
) -> None:
    await new_run(store)
    await log(store, "loss", [10, 11, 12])
    for lo, hi in ((0, 9), (13, None), (None, -5), (12, 10)):
        empty = await store.metric_history(RUN, "loss", min_step=lo, max_step=hi)
        assert (empty.steps, empty.values, empty.timestamps) == ([], [], [])
    with pytest.raises(NotFound, match=r"no metric 'acc'.*loss"):
        await store.metric_history(RUN, "acc", min_step=0, max_step=5)
    with pytest.raises(NotFound, match=r"no metric 'acc'.*loss"):
        await store.metric_points(RUN, "acc")


async def test_points_carry_the_whole_series_extent_beside_the_range(store: Store) -> None:
    await new_run(store)
    await log(store, "loss", list(range(5, 50)))
    await log(store, "loss", list(range(50, 80)))
    points = await store.metric_points(RUN, "loss", min_step=60, max_step=62)
    assert list(points.steps) == [60, 61, 62] and list(points.values) == [60.1, 61.1, 62.1]
    assert list(points.timestamps) == [1010.0, 1011.0, 1012.0]
    assert (points.total, points.first_step, points.last_step) == (75, 5, 79)


async def test_chunks_logged_out_of_step_order_read_back_by_step_then_time(store: Store) -> None:
    await new_run(store)
    await log(store, "loss", [20, 21, 22], t0=10.0)
    await log(store, "loss", [0, 1, 2], t0=20.0)  # a second run of the loop, logged later
    await log(store, "loss", [6, 4, 5, 1], t0=30.0)  # steps out of order inside one chunk
    whole = await store.metric_history(RUN, "loss")
    assert whole.steps == [0, 1, 1, 2, 4, 5, 6, 20, 21, 22]
    assert whole.timestamps == [20.0, 21.0, 33.0, 22.0, 31.0, 32.0, 30.0, 10.0, 11.0, 12.0]
    part = await store.metric_history(RUN, "loss", min_step=1, max_step=5)
    assert part.steps == [1, 1, 2, 4, 5] and part.timestamps == [21.0, 33.0, 22.0, 31.0, 32.0]
    points = await store.metric_points(RUN, "loss", min_step=21)
    assert list(points.steps) == [21, 22] and (points.first_step, points.last_step) == (0, 22)


async def test_points_of_one_step_logged_in_order_keep_their_order(store: Store) -> None:
    await new_run(store)
    await log(store, "loss", [0, 1, 1], t0=50.0)
    await log(store, "loss", [1, 2], t0=10.0)  # step 1 again, with an earlier clock
    whole = await store.metric_history(RUN, "loss", min_step=1)
    assert whole.steps == [1, 1, 1, 2] and whole.timestamps == [51.0, 52.0, 10.0, 11.0]


async def test_nan_and_infinities_in_a_range(store: Store) -> None:
    await new_run(store)
    values = [1.0, math.nan, math.inf, -math.inf, 2.0]
    await store.log_metrics([make_chunk(RUN, "odd", [(i, v, 1.0) for i, v in enumerate(values)])])
    part = await store.metric_history(RUN, "odd", min_step=1, max_step=3)
    assert part.values == [None, math.inf, -math.inf]
    points = await store.metric_points(RUN, "odd", min_step=1, max_step=3)
    assert math.isnan(points.values[0]) and list(points.values[1:]) == [math.inf, -math.inf]


async def test_each_stored_chunk_holds_its_step_span(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        await new_run(store)
        await log(store, "loss", [0, 1, 2])
        await log(store, "loss", [9, 3, 7])
        bare = make_chunk(RUN, "loss", [(s, 1.0, 1.0) for s in (12, 10, 11)])
        await store.log_metrics([replace(bare, min_step=None, in_order=None)])  # worked out
        await log(store, "loss", [20, 20, 21])
        assert isinstance(store, SQLStore)
        rows = await store.database.query(lambda db: db.fetchall(
            "SELECT min_step, max_step, in_order FROM metric_chunks ORDER BY id"))  # fmt: skip
        assert [tuple(r) for r in rows] == [(0, 2, 1), (3, 9, 0), (10, 12, 0), (20, 21, 1)]
    finally:
        await store.close()

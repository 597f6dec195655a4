"""``get_metric_history``'s join on step: the rows and values of the per-point definition (a
pass over every step of every key), found by bisection over the columns, NaN as ``None``; a
large range joined from outlines as from every point on the same (snapped) buckets, on every
backend."""

from __future__ import annotations

import math
import random
import time
from array import array
from bisect import bisect_left
from itertools import pairwise

import pytest

from chachaml.records.metrics import MetricOutline
from chachaml.records.runs import MetricPoints, MetricSeries, NewRun
from chachaml.server.mcp.metrics import (
    exact_at,
    join_on_edges,
    join_on_step,
    metric_tools,
    snapped_edges,
    step_edges,
)
from chachaml.store import Store
from chachaml.store.codec import make_chunk
from chachaml.store.outline import BLOCK


def by_definition(
    series: list[MetricSeries], max_points: int
) -> tuple[list[int], dict[str, list[float | None]]]:
    """Rows: every distinct step, or each step bucket's last; each key's last value per row
    (``None`` when it has no point since the previous row)."""
    all_steps = sorted({s for ser in series for s in ser.steps})
    if len(all_steps) <= max_points:
        rows = all_steps
    else:
        lo, hi = all_steps[0], all_steps[-1]
        width = (hi - lo + 1) / max_points
        last: dict[int, int] = {}
        for s in all_steps:
            last[min(int((s - lo) / width), max_points - 1)] = s
        rows = sorted(last.values())
    values: dict[str, list[float | None]] = {}
    for ser in series:
        pairs = list(zip(ser.steps, ser.values, strict=True))
        column: list[float | None] = []
        i, current = 0, None
        for row in rows:
            found = False
            while i < len(pairs) and pairs[i][0] <= row:
                current, found = pairs[i][1], True
                i += 1
            column.append(current if found else None)
        values[ser.key] = column
    return rows, values


def random_series(rnd: random.Random, key: str) -> MetricSeries:
    """Sorted steps with repeats and gaps, some NaN values."""
    steps = sorted(rnd.randrange(rnd.choice([5, 300, 5000])) for _ in range(rnd.randrange(0, 900)))
    values = [math.nan if rnd.random() < 0.05 else rnd.gauss(0, 1) for _ in steps]
    return MetricSeries.from_columns("r", key, array("q", steps), array("d", values),
                                     array("d", [0.0] * len(steps)))  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_rows_and_values_are_those_of_the_per_point_definition(seed: int) -> None:
    rnd = random.Random(seed)
    series = [random_series(rnd, k) for k in ("loss", "val", "lr")[: rnd.randint(1, 3)]]
    if not any(ser.steps for ser in series):
        series.append(random_series(random.Random(seed + 100), "acc"))
    for max_points in (2, 3, 50, 200, 2000):
        table = join_on_step(series, max_points)
        rows, values = by_definition(series, max_points)
        assert (table.steps, table.values) == (rows, values)
        assert table.downsampled is (len(rows) < len({s for ser in series for s in ser.steps}))
        assert table.points == sum(len(ser.steps) for ser in series)


def test_packed_points_join_as_their_series_do() -> None:
    n = 100_000
    values = array("d", [math.nan if i == 7 else 1 / (i + 1) for i in range(n)])
    points = MetricPoints(run_id="r", key="loss", steps=array("q", range(n)), values=values,
                          timestamps=array("d", [0.0] * n), total=n, first_step=0,
                          last_step=n - 1)  # fmt: skip
    series = MetricSeries.from_columns("r", "loss", points.steps, points.values, points.timestamps)
    table = join_on_step([points], 200)
    assert table == join_on_step([series], 200)
    assert len(table.steps) == 200 and table.steps[-1] == n - 1 and table.downsampled
    assert join_on_step([points], n).values["loss"][7] is None  # NaN reads as None


RUN = "c" * 32


def test_an_edge_holds_when_the_points_read_hold_the_last_point_before_it() -> None:
    # one outlined chunk of 200 points at steps 0, 2, 4, ... (blocks of 64 from 0), of which
    # these are read; position 64 repeats the step of 63, so a block's first point is read
    where = [0, 1, 5, 63, 64, 100, 127, 199]
    steps = [2 * p for p in where]
    steps[4] = steps[3]

    def read(positions: list[int], at: list[int]) -> MetricOutline:
        return MetricOutline(run_id="r", key="k", steps=array("q", at),
                             values=array("d", [0.0] * len(at)),
                             timestamps=array("d", [0.0] * len(at)), total=200, first_step=0,
                             last_step=398, positions=array("q", positions), in_range=200,
                             outlined=array("q", [0, 200, BLOCK]))  # fmt: skip

    found = read(where, steps)
    assert exact_at(found, 0) and exact_at(found, 399), "the range's first and last are read"
    assert exact_at(found, 1) and exact_at(found, 2), "positions 0 and 1 are neighbours"
    assert not exact_at(found, 3) and not exact_at(found, 11), "points 2..4 are not read"
    assert exact_at(found, 255), "just past a block's last step (position 127, step 254)"
    assert not exact_at(found, 256), "after position 128, whose step is not known"
    # just past step 126: 64 holds it too, and 65..99 may (the block's first point repeats)
    assert not exact_at(found, 127)
    assert not exact_at(read(where[1:], steps[1:]), 0), "without the first point: unknown"
    assert not exact_at(read(where[:-1], steps[:-1]), 399), "without the last point: unknown"


async def log_keys(store: Store, rnd: random.Random) -> dict[str, list[tuple[int, float]]]:
    """Keys logged together at steps with repeats (same chunks), one flushed in other chunks
    and one holding a NaN chunk; each ~6,000 points."""
    await store.create_run(NewRun(id=RUN, experiment="e", name="r", created_by="ana",
                                  started_at=time.time(), heartbeat_timeout=60.0))  # fmt: skip
    steps, step = [], 0
    for _ in range(6000):
        step += rnd.choice([0, 1, 1, 1, 2, 7])
        steps.append(step)
    logged: dict[str, list[tuple[int, float]]] = {}
    for key in ("loss", "acc", "lr", "odd"):
        logged[key] = [(s, rnd.gauss(0, 1)) for s in steps]
    logged["odd"][3000] = (steps[3000], math.nan)
    cuts = sorted(rnd.sample(range(1, 6000), 5))
    other = sorted(rnd.sample(range(1, 6000), 7))
    for key, points in logged.items():
        for a, z in pairwise([0, *(other if key == "lr" else cuts), 6000]):
            chunk = [(s, v, 1.0) for s, v in points[a:z]]
            await store.log_metrics([make_chunk(RUN, key, chunk)])
    return logged


@pytest.mark.anyio
@pytest.mark.contract
@pytest.mark.parametrize("seed", range(3))
async def test_outlines_join_as_every_point_does_on_the_same_snapped_buckets(
    store: Store, seed: int
) -> None:
    rnd = random.Random(seed)
    logged = await log_keys(store, rnd)
    get_metric_history = metric_tools(store)[0]
    read_whole: set[str] = set()
    for keys in (["loss"], ["loss", "acc"], ["acc", "lr", "odd", "loss"]):
        for max_points in (2, 7, 20):
            found = [await store.metric_outline(RUN, k, points=2 * max_points) for k in keys]
            assert found[0].positions is not None  # a large range: outlines were read
            edges = snapped_edges(found, max_points)
            assert edges is not None and edges == sorted(edges) and len(edges) == max_points + 1
            exact = [await store.metric_points(RUN, k) for k in keys]
            expected = join_on_edges(exact, edges)
            outlined = [f if all(exact_at(f, e) for e in edges) else x
                        for f, x in zip(found, exact, strict=True)]  # fmt: skip
            assert join_on_edges(outlined, edges) == expected
            read_whole |= {k for o, x, k in zip(outlined, exact, keys, strict=True) if o is x}
            # keys logged in the same chunks share block edges: their outlines suffice
            assert all(o is f for o, f, k in zip(outlined, found, keys, strict=True)
                       if k in ("loss", "acc"))  # fmt: skip
            result = await get_metric_history(RUN, keys, max_points)
            assert result.structured_content == expected.model_dump(mode="json")
            assert expected.points == 6000 * len(keys) and expected.downsampled
            assert len(expected.steps) <= max_points
            if "odd" in keys:  # NaN reads as None; a NaN chunk is read whole
                row = bisect_left(expected.steps, logged["odd"][3000][0])
                nan_is_last = all(s != logged["odd"][3000][0] for s, _ in logged["odd"][3001:])
                if expected.steps[row] == logged["odd"][3000][0] and nan_is_last:
                    assert expected.values["odd"][row] is None
            # the buckets' edges move by half a block of points at most (<= 7 steps each)
            nominal = step_edges(found[0].steps[0], found[0].steps[-1], max_points)
            moved = [abs(a - b) for a, b in zip(edges, nominal, strict=True)]
            assert max(moved) <= 7 * (BLOCK // 2 + 1)
    assert read_whole == {"lr"}, "a key whose chunks cut blocks elsewhere is read whole"

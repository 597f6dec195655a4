"""Chart downsampling over packed arrays: the same points as the per-value definition, spikes
kept, NaN/inf apart, and the counts the charts read."""

from __future__ import annotations

import math
import random
from array import array
from itertools import pairwise

import pytest

from chachaml.records.metrics import MetricOutline
from chachaml.records.runs import MetricPoints
from chachaml.server.ui.charts import (
    BLOCK,
    keep_indices,
    keep_indices_numpy,
    nonfinite_indices,
    series_points,
    snap_edges,
)


def by_definition(values: list[float], max_points: int) -> list[int]:
    """Per bucket of equally many finite values, its first lowest and first highest value."""
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    if len(finite) <= max_points:
        return finite
    buckets = max(1, max_points // 2)
    size = len(finite) / buckets
    out: list[int] = []
    for b in range(buckets):
        part = finite[int(b * size) : int((b + 1) * size)]
        if not part:
            continue
        vals = [values[i] for i in part]
        low, high = vals.index(min(vals)), vals.index(max(vals))
        out += [part[low]] if low == high else [part[min(low, high)], part[max(low, high)]]
    return out


def noisy(seed: int, n: int, odd_share: float) -> list[float]:
    """Values with repeats, signed zeros, spikes and (a share of) NaN and infinities."""
    rnd = random.Random(seed)
    odd = [math.nan, math.inf, -math.inf]
    choices = [0.0, -0.0, 1.0, 1.0, -1e300, 1e300]
    return [
        rnd.choice(odd) if rnd.random() < odd_share
        else rnd.choice(choices) if rnd.random() < 0.3 else rnd.gauss(0, 1)
        for _ in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("odd_share", [0.0, 0.001, 0.3, 1.0])
def test_kept_points_are_those_of_the_per_value_definition(seed: int, odd_share: float) -> None:
    values = noisy(seed, 3 * BLOCK + 123, odd_share)
    packed = array("d", values)
    bad = nonfinite_indices(packed)
    assert bad == [i for i, v in enumerate(values) if not math.isfinite(v)]
    for max_points in (2, 3, 100, 1000, len(values)):
        kept = keep_indices(packed, bad, max_points)
        assert kept == by_definition(values, max_points)
        assert [str(packed[i]) for i in kept] == [str(values[i]) for i in kept]  # -0.0 too
        assert keep_indices_numpy(packed, max_points) == (kept, bad)  # the numpy path: the same


@pytest.mark.parametrize("n", [0, 1, 2, 999, 1000, 1001, 12_345])
def test_the_numpy_path_keeps_the_same_points_at_every_length(n: int) -> None:
    values = [math.sin(i / 7) * (i % 13) for i in range(n)]
    packed = array("d", values)
    for max_points in (2, 3, 7, 1000):
        expected = keep_indices(packed, [], max_points)
        assert keep_indices_numpy(packed, max_points) == (expected, [])


def test_finite_values_that_overflow_a_sum_are_still_finite() -> None:
    packed = array("d", [1e308] * (BLOCK + 5) + [math.nan])
    assert nonfinite_indices(packed) == [BLOCK + 5]


def test_a_spike_survives_and_kept_points_stay_in_step_order() -> None:
    values = [math.sin(i / 100) for i in range(100_000)]
    values[54_321] = 50.0
    kept = keep_indices(array("d", values), [], 1000)
    assert len(kept) <= 1000 and kept == sorted(kept) and 54_321 in kept


def points(values: list[float], first: int = 0) -> MetricPoints:
    n = len(values)
    return MetricPoints(
        run_id="r" * 32,
        key="k",
        steps=array("q", range(first, first + n)),
        values=array("d", values),
        timestamps=array("d", [100.0 + i for i in range(n)]),
        total=n + first,
        first_step=0,
        last_step=first + n - 1,
    )


def test_series_points_counts_nonfinite_apart_from_downsampling() -> None:
    chart = series_points(points([1.0] * 9 + [math.nan]), 100)
    assert chart["shown"] == 9 and not chart["downsampled"] and chart["in_range"] == 10
    assert chart["nonfinite"] == [{"step": 9, "value": "NaN", "time": 109.0}]


def test_series_points_report_the_whole_series_beside_the_range() -> None:
    chart = series_points(points([float(i % 7) for i in range(5000)], first=100), 10)
    assert (chart["total"], chart["first_step"], chart["last_step"]) == (5100, 0, 5099)
    assert chart["in_range"] == 5000 and chart["shown"] <= 10 and chart["downsampled"]
    assert chart["steps"] == sorted(chart["steps"]) and chart["steps"][0] >= 100
    assert set(chart["values"]) == {0.0, 6.0}
    assert chart["times"] == [100.0 + s - 100 for s in chart["steps"]]


def by_position(
    values: list[float], positions: list[int], in_range: int, max_points: int
) -> list[int]:
    """The definition over some of a range's points: buckets of equally many finite points
    of the range by rank, in each the first lowest and first highest of the values given."""
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    if len(finite) <= max_points:
        return finite
    bad = {positions[i] for i, v in enumerate(values) if not math.isfinite(v)}
    buckets = max(1, max_points // 2)
    size = (in_range - len(bad)) / buckets
    rank = {i: positions[i] - len([p for p in bad if p < positions[i]]) for i in finite}
    out: list[int] = []
    for b in range(buckets):
        part = [i for i in finite if int(b * size) <= rank[i] < int((b + 1) * size)]
        if part:
            vals = [values[i] for i in part]
            low, high = vals.index(min(vals)), vals.index(max(vals))
            out += [part[low]] if low == high else [part[min(low, high)], part[max(low, high)]]
    return out


@pytest.mark.parametrize("seed", range(8))
def test_points_placed_in_a_larger_range_are_bucketed_by_position(seed: int) -> None:
    rnd = random.Random(seed)
    in_range = 5000
    positions = sorted(rnd.sample(range(in_range), rnd.choice([1, 40, 300, 1200])))
    values = noisy(seed, len(positions), rnd.choice([0.0, 0.05]))
    packed, where = array("d", values), array("q", positions)
    bad = nonfinite_indices(packed)
    for max_points in (2, 5, 64, 1000):
        kept = keep_indices(packed, bad, max_points, where, in_range)
        assert kept == by_position(values, positions, in_range, max_points)
        assert keep_indices_numpy(packed, max_points, where, in_range) == (kept, bad)
        assert len(kept) <= max_points and kept == sorted(kept)
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            assert min(finite) in [values[i] for i in kept]
            assert max(finite) in [values[i] for i in kept]


def per_block(values: list[float], first: int, points: int, block: int) -> list[int]:
    """Each block's first lowest and first highest index (an outline's points), in order."""
    out: list[int] = []
    for start in range(first, first + points, block):
        part = values[start : min(start + block, first + points)]
        low, high = start + part.index(min(part)), start + part.index(max(part))
        out += sorted({low, high})
    return out


@pytest.mark.parametrize("seed", range(8))
def test_buckets_over_outlined_chunks_hold_whole_blocks_and_their_exact_extremes(
    seed: int,
) -> None:
    rnd = random.Random(seed)
    block, n = 16, 4000
    values = noisy(seed, n, 0.0)
    # decoded, outlined, decoded (with NaN), outlined: chunk edges off the block grid
    cuts = sorted(rnd.sample(range(1, n), 3))
    for i in rnd.sample(range(cuts[1], cuts[2]), 5):
        values[i] = math.nan
    shown = [*range(cuts[0]), *per_block(values, cuts[0], cuts[1] - cuts[0], block),
             *range(cuts[1], cuts[2]), *per_block(values, cuts[2], n - cuts[2], block)]  # fmt: skip
    outlined = array("q", [cuts[0], cuts[1] - cuts[0], block, cuts[2], n - cuts[2], block])
    packed, where = array("d", [values[p] for p in shown]), array("q", shown)
    bad = nonfinite_indices(packed)
    bad_at = [shown[i] for i in bad]
    for max_points in (2, 8, 40, 100):
        kept = keep_indices(packed, bad, max_points, where, n, outlined)
        assert keep_indices_numpy(packed, max_points, where, n, outlined) == (kept, bad)
        # by definition over every value: buckets of finite ranks, edges moved to blocks
        finite = [i for i, v in enumerate(values) if math.isfinite(v)]
        spans = ((cuts[0], cuts[1] - cuts[0]), (cuts[2], n - cuts[2]))
        rank_of_span = [(s - len([b for b in bad_at if b < s]), k) for s, k in spans]
        buckets = max_points // 2
        unsnapped = [int(b * (len(finite) / buckets)) for b in range(buckets + 1)]
        edges = []
        for e in unsnapped:
            for r, k in rank_of_span:
                if r < e < r + k:
                    e = min(r + (e - r + block // 2) // block * block, r + k)
            edges.append(e)
        assert snap_edges(unsnapped, outlined, bad_at) == edges
        expected: list[int] = []
        for a, z in pairwise(edges):
            part = finite[a:z]
            if part:
                vals = [values[i] for i in part]
                low, high = part[vals.index(min(vals))], part[vals.index(max(vals))]
                expected += sorted({low, high})
        assert [shown[i] for i in kept] == expected


def test_series_points_of_an_outline_count_the_whole_range() -> None:
    base = points([float(i % 11) for i in range(400)] + [math.inf])
    outline = MetricOutline(
        **{f: getattr(base, f) for f in MetricPoints.__dataclass_fields__},
        positions=array("q", [3 * i for i in range(401)]),
        in_range=1203,
    )
    chart = series_points(outline, 10)
    assert chart["in_range"] == 1203 and chart["shown"] <= 10 and chart["downsampled"]
    assert set(chart["values"]) == {0.0, 10.0} and chart["steps"] == sorted(chart["steps"])
    assert chart["nonfinite"] == [{"step": 400, "value": "inf", "time": 500.0}]

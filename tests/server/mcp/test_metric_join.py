"""``get_metric_history``'s join on step: the rows and values of the per-point definition (a
pass over every step of every key), found by bisection over the columns, NaN as ``None``."""

from __future__ import annotations

import math
import random
from array import array

import pytest

from chachaml.records.runs import MetricPoints, MetricSeries
from chachaml.server.mcp.metrics import join_on_step


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

"""The opt-in ``metrics`` toolset: metric history joined on step, and plots."""

from __future__ import annotations

import base64
import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import pairwise
from typing import Annotated

import anyio.to_thread
from mcp_types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

from chachaml.errors import import_extra
from chachaml.records.metrics import MetricOutline
from chachaml.records.runs import MetricPoints, MetricSeries
from chachaml.server.mcp import render
from chachaml.server.mcp.runs import RunId, ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.tools import metrics as metric_ops

MAX_KEYS = 10

Keys = Annotated[
    list[str],
    Field(min_length=1, max_length=MAX_KEYS, description='Metric keys, e.g. ["loss", "val_loss"].'),
]


class MetricTable(BaseModel):
    """Several metrics of one run joined on step, downsampled to at most ``max_points`` rows."""

    run_id: str
    keys: list[str]
    steps: list[int]
    values: dict[str, list[float | None]]
    points: int
    downsampled: bool


def _distinct(steps: Sequence[int], most: int) -> list[int] | None:
    """The distinct steps of sorted ``steps``, or ``None`` when there are more than ``most``.

    At most ``most + 1`` bisections, never a pass over a million steps.
    """
    out: list[int] = []
    i = 0
    while i < len(steps):
        if len(out) == most:
            return None
        out.append(steps[i])
        i = bisect_right(steps, steps[i], i)
    return out


def _count(ser: MetricSeries | MetricPoints) -> int:
    """The points a series stands for: all of a range read as an outline, not just those read."""
    return ser.in_range if isinstance(ser, MetricOutline) else len(ser.steps)


def step_edges(lo: int, hi: int, max_points: int) -> list[int]:
    """Where each of ``max_points`` step buckets of ``lo..hi`` starts, then ``hi + 1``.

    Bucket ``b`` holds the steps with ``int((step - lo) / width) == b`` (the last bucket the
    rest), ``width`` being ``(hi - lo + 1) / max_points``: each edge is the first step of its
    bucket by that same float arithmetic.
    """
    width = (hi - lo + 1) / max_points

    def bucket(step: int) -> int:
        return min(int((step - lo) / width), max_points - 1)

    edges = [lo]
    for b in range(1, max_points):
        s = min(lo + math.ceil(b * width), hi + 1)
        while s > lo and bucket(s - 1) >= b:
            s -= 1
        while s <= hi and bucket(s) < b:
            s += 1
        edges.append(s)
    return [*edges, hi + 1]


def join_on_edges(
    series: Sequence[MetricSeries | MetricPoints], edges: Sequence[int]
) -> MetricTable:
    """Series joined on the step buckets ``edges[b] <= step < edges[b + 1]`` (downsampled).

    A row per bucket holding a point: its last step, each key's last value in it. A series
    may be an outline (:class:`MetricOutline`) whose every edge :func:`exact_at` holds: the
    points it lacks are never a bucket's last.
    """
    rows = []
    for first, end in pairwise(edges):
        ends = [
            ser.steps[i - 1]
            for ser in series
            if (i := bisect_left(ser.steps, end)) and ser.steps[i - 1] >= first
        ]
        if ends:
            rows.append(max(ends))
    return _table(series, rows, downsampled=True)


def join_on_step(series: Sequence[MetricSeries | MetricPoints], max_points: int) -> MetricTable:
    """Join metric series (each in step order) on step, keeping each key's last value per row.

    With more distinct steps than ``max_points``, the step range is cut into that many
    buckets (:func:`step_edges`); each row is a bucket's last step and each key's last value
    within it (``None`` when the key has no point since the previous row; a NaN reads as
    ``None``). Rows and values are found by bisection over the step columns, so a
    million-point metric costs a few thousand steps of Python, not a million.
    """
    distinct = [_distinct(ser.steps, max_points) for ser in series]
    rows: list[int] = []
    if all(d is not None for d in distinct):
        rows = sorted({s for d in distinct for s in d or ()})
    if len(rows) > max_points or None in distinct:
        lo = min(ser.steps[0] for ser in series if len(ser.steps))
        hi = max(ser.steps[-1] for ser in series if len(ser.steps))
        return join_on_edges(series, step_edges(lo, hi, max_points))
    return _table(series, rows, downsampled=False)


def _table(
    series: Sequence[MetricSeries | MetricPoints], rows: list[int], *, downsampled: bool
) -> MetricTable:
    """The table of ``rows``: each key's last value since the previous row, NaN as ``None``."""
    values: dict[str, list[float | None]] = {}
    for ser in series:
        column: list[float | None] = []
        previous: int | None = None
        for row_step in rows:
            i = bisect_right(ser.steps, row_step) - 1
            value = (
                ser.values[i] if i >= 0 and (previous is None or ser.steps[i] > previous) else None
            )
            column.append(None if value is None or math.isnan(value) else value)
            previous = row_step
        values[ser.key] = column
    return MetricTable(
        run_id=series[0].run_id if series else "",
        keys=[s.key for s in series],
        steps=rows,
        values=values,
        points=sum(_count(ser) for ser in series),
        downsampled=downsampled,
    )


def _block_start(found: MetricOutline, position: int) -> bool:
    """Whether ``position`` starts a block of an outlined chunk of ``found``."""
    spans = found.outlined
    k = bisect_right(spans[::3], position) - 1
    if k < 0:
        return False
    first, points, block = spans[3 * k : 3 * k + 3]
    return first <= position < first + points and (position - first) % block == 0


def exact_at(found: MetricOutline, edge: int) -> bool:
    """Whether the last point of ``found`` before step ``edge`` is among the points read.

    Always so when every point was read, or the points read around ``edge`` are neighbours
    (the range's first and last point are read too); otherwise when ``edge`` is just past a
    block's last step: the next block's first point is then read or has a higher step
    (``chachaml.store.outline.edge_positions``).
    """
    where, steps = found.positions, found.steps
    if where is None:
        return True
    p = bisect_left(steps, edge)
    if p == 0:
        return where[0] == 0
    if p == len(steps):
        return where[-1] == found.in_range - 1
    if where[p] == where[p - 1] + 1:
        return True
    return edge == steps[p - 1] + 1 and _block_start(found, where[p - 1] + 1)


def _block_ends(found: MetricOutline, edge: int) -> list[int]:
    """Steps just past the last steps of the blocks around step ``edge`` (at most three)."""
    where, steps, spans = found.positions, found.steps, found.outlined
    assert where is not None
    p = bisect_left(steps, edge)
    if p in (0, len(steps)):
        return []
    at = where[p - 1]
    k = bisect_right(spans[::3], at) - 1
    if k < 0:
        return []
    first, points, block = spans[3 * k : 3 * k + 3]
    j = (at - first) // block
    out = []
    for end in (first + j * block - 1, first + (j + 1) * block - 1, first + (j + 2) * block - 1):
        end = min(end, first + points - 1)
        i = bisect_left(where, end)
        if end >= first and i < len(where) and where[i] == end:
            out.append(steps[i] + 1)
    return out


def snapped_edges(found: Sequence[MetricOutline], max_points: int) -> list[int] | None:
    """Step bucket edges for outlines of large ranges, moved to block edges; or ``None``.

    :func:`step_edges`, each edge inside an outlined chunk of the key with the most points
    moved to the nearest edge just past one of its blocks' last steps (:func:`exact_at`), so
    that key's bucket ends are among its outline points. Keys logged at the same steps in
    the same chunks share those block edges. ``None`` when no key holds more than
    ``max_points`` distinct steps among the points read: the table may then not be
    downsampled, which only every point tells.
    """
    if all(_distinct(f.steps, max_points) is not None for f in found):
        return None
    lo = min(f.steps[0] for f in found if len(f.steps))
    hi = max(f.steps[-1] for f in found if len(f.steps))
    edges = step_edges(lo, hi, max_points)
    guide = max(found, key=lambda f: f.in_range)
    for b in range(1, len(edges) - 1):
        e = edges[b]
        if not exact_at(guide, e):
            near = [c for c in _block_ends(guide, e) if exact_at(guide, c)]
            e = min(near, key=lambda c: abs(c - e), default=e)
        edges[b] = max(e, edges[b - 1])
    return edges


def _plot_png(table: MetricTable, log_y: bool) -> bytes:
    import_extra("matplotlib", "plot", "plot_metrics")
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key in table.keys:
        pts = [(s, y) for s, y in zip(table.steps, table.values[key], strict=True) if y is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=key)
    ax.set_xlabel("step")
    ax.set_title(f"run {table.run_id[:12]}")
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def metric_tools(store: Store) -> list[ToolFn]:
    """The ``metrics`` toolset, bound to ``store``."""

    async def _joined(run_id: str, keys: list[str], max_points: int) -> MetricTable:
        """The table, from outlines when they suffice (a large range), else from every point.

        A key whose points read do not hold a bucket's last point (chunks cut into blocks
        elsewhere than the other keys') is read whole.
        """
        keys = list(dict.fromkeys(keys))
        # two outline points a bucket: the store reads outlines for MIN_BLOCKS blocks a row
        found = [await metric_ops.metric_outline(store, run_id, k, points=2 * max_points)
                 for k in keys]  # fmt: skip
        edges = None
        if any(f.positions is not None for f in found):
            edges = snapped_edges(found, max_points)
        if edges is None:
            whole = [f if f.positions is None else await metric_ops.metric_points(store, run_id, k)
                     for f, k in zip(found, keys, strict=True)]  # fmt: skip
            return join_on_step(whole, max_points)
        series: list[MetricSeries | MetricPoints] = []
        for f, k in zip(found, keys, strict=True):
            exact = all(exact_at(f, e) for e in edges)
            series.append(f if exact else await metric_ops.metric_points(store, run_id, k))
        return join_on_edges(series, edges)

    async def get_metric_history(
        run_id: RunId,
        keys: Keys,
        max_points: Annotated[
            int, Field(ge=2, le=2000, description="Most rows to return (downsampled).")
        ] = 200,
    ) -> Annotated[CallToolResult, MetricTable]:
        """The history of one or more metrics of a run, joined on step and downsampled.

        Use it to see how training went (did the loss plateau? did val_loss diverge?).
        Each row is a step; long histories are cut into max_points buckets keeping each
        bucket's last value. Example: {"run_id": "3f2c9a...", "keys": ["loss", "val_loss"]}.
        """
        table = await _joined(run_id, keys, max_points)
        rows = [[s, *(table.values[k][i] for k in table.keys)] for i, s in enumerate(table.steps)]
        head = f"{len(rows)} rows from {table.points} points of run {table.run_id}" + (
            " (downsampled)" if table.downsampled else ""
        )
        return answer(table, f"{head}:\n{render.table(['step', *table.keys], rows)}")

    async def plot_metrics(
        run_id: RunId,
        keys: Keys,
        log_y: Annotated[bool, Field(description="Logarithmic y axis.")] = False,
    ) -> CallToolResult:
        """A PNG line chart of one or more metrics of a run against step.

        Use it when a picture of the training curves helps. Example:
        {"run_id": "3f2c9a...", "keys": ["loss", "val_loss"], "log_y": true}.
        """
        table = await _joined(run_id, keys, 1000)
        png = await anyio.to_thread.run_sync(_plot_png, table, log_y)
        return CallToolResult(
            content=[
                ImageContent(
                    type="image", data=base64.b64encode(png).decode(), mime_type="image/png"
                ),
                TextContent(
                    type="text",
                    text=f"Chart of {', '.join(table.keys)} for run {table.run_id}"
                    f" ({table.points} points).",
                ),
            ]
        )

    return [get_metric_history, plot_metrics]

"""The opt-in ``metrics`` toolset: metric history joined on step, and plots."""

from __future__ import annotations

import base64
import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Annotated

import anyio.to_thread
from mcp_types import CallToolResult, ImageContent, TextContent
from pydantic import BaseModel, Field

from chachaml.errors import import_extra
from chachaml.records.runs import MetricPoints, MetricSeries
from chachaml.server.mcp import render
from chachaml.server.mcp.runs import RunId, ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.tools import runs as run_ops

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


def join_on_step(series: Sequence[MetricSeries | MetricPoints], max_points: int) -> MetricTable:
    """Join metric series (each in step order) on step, keeping each key's last value per row.

    With more distinct steps than ``max_points``, the step range is cut into that many
    buckets; each row is a bucket's last step and each key's last value within it (``None``
    when the key has no point since the previous row; a NaN reads as ``None``). Rows and
    values are found by bisection over the step columns, so a million-point metric costs a
    few thousand steps of Python, not a million.
    """
    points = sum(len(ser.steps) for ser in series)
    distinct = [_distinct(ser.steps, max_points) for ser in series]
    rows: list[int] = []
    if all(d is not None for d in distinct):
        rows = sorted({s for d in distinct for s in d or ()})
    downsampled = len(rows) > max_points or None in distinct
    if downsampled:
        lo = min(ser.steps[0] for ser in series if len(ser.steps))
        hi = max(ser.steps[-1] for ser in series if len(ser.steps))
        width = (hi - lo + 1) / max_points

        def bucket(step: int) -> int:
            return min(int((step - lo) / width), max_points - 1)

        rows = []
        for b in range(max_points):
            ends = [
                ser.steps[i - 1]
                for ser in series
                if (i := bisect_right(ser.steps, b, key=bucket)) and bucket(ser.steps[i - 1]) == b
            ]
            if ends:
                rows.append(max(ends))
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
        points=points,
        downsampled=downsampled,
    )


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

    async def _table(run_id: str, keys: list[str], max_points: int) -> MetricTable:
        series = [await run_ops.metric_points(store, run_id, k) for k in dict.fromkeys(keys)]
        return join_on_step(series, max_points)

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
        table = await _table(run_id, keys, max_points)
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
        table = await _table(run_id, keys, 1000)
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

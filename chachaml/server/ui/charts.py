"""Metric series for the charts: server-side downsampling of a step range, and Vega-Lite specs.

A browser draws a few thousand points without effort; a 100,000-point series is cut to
``max_points`` by keeping each bucket's lowest and highest value (in step order), so spikes
survive. Downsampling applies to the requested step range only, so a chart zoomed in fetches
the finer points of what it shows. NaN and infinite points are never drawn as values: they
come back on their own (``nonfinite``) so the chart can mark where they occur. The full
series stays downloadable as CSV. The browser side is ``static/charts.js``.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

from chachaml.records.runs import MetricSeries

DISPLAY_POINTS = 1000
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _bucket_extremes(
    values: Sequence[float | None], idx: Sequence[int], max_points: int
) -> list[int]:
    """At most ``max_points`` of the indices ``idx``: per bucket, its min and max in order.

    ``idx`` is a ``range`` when every value in it is finite: buckets are then list slices,
    scanned at C speed (a 1M-point series in milliseconds, not a second).
    """
    if len(idx) <= max_points:
        return list(idx)
    buckets = max(1, max_points // 2)
    size = len(idx) / buckets
    out: list[int] = []
    for b in range(buckets):
        chunk = idx[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        if isinstance(chunk, range):
            vals = values[chunk.start : chunk.stop]
        else:
            vals = [values[i] for i in chunk]
        low, high = vals.index(min(vals)), vals.index(max(vals))  # type: ignore[type-var]
        out += [chunk[low]] if low == high else [chunk[min(low, high)], chunk[max(low, high)]]
    return out


def _split(values: Sequence[float | None], lo: int, hi: int) -> tuple[Sequence[int], list[int]]:
    """The indices in ``lo..hi`` of finite values (a ``range`` if all are) and of the others."""
    part = values[lo:hi]
    try:
        flags = list(map(math.isfinite, part))  # type: ignore[arg-type]
    except TypeError:  # a None (a NaN stored as NULL)
        flags = [_finite(v) for v in part]
    if False not in flags:
        return range(lo, hi), []
    return (
        [lo + i for i, ok in enumerate(flags) if ok],
        [lo + i for i, ok in enumerate(flags) if not ok],
    )


def keep_indices(
    values: Sequence[float | None], max_points: int, lo: int = 0, hi: int | None = None
) -> list[int]:
    """Indices (in ``lo..hi``) of at most ``max_points`` finite values: per bucket, min and max."""
    finite, _ = _split(values, lo, len(values) if hi is None else hi)
    return _bucket_extremes(values, finite, max_points)


def downsample(
    steps: Sequence[int], values: Sequence[float | None], max_points: int
) -> tuple[list[int], list[float]]:
    """At most ``max_points`` finite points: per bucket, the min and max in step order."""
    kept = keep_indices(values, max_points)
    return [steps[i] for i in kept], [values[i] for i in kept]  # type: ignore[misc]


def _nonfinite_label(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "NaN"
    return "inf" if value > 0 else "-inf"


def series_points(
    series: MetricSeries,
    max_points: int = DISPLAY_POINTS,
    *,
    min_step: int | None = None,
    max_step: int | None = None,
    after_step: int | None = None,
) -> dict[str, Any]:
    """A series as the charts get it: the points drawn in a step range, and counts.

    ``min_step``/``max_step`` bound the range (inclusive); ``after_step`` keeps only steps
    after it (live polling). ``total`` counts every point, ``in_range`` those in the range,
    ``shown`` those returned; NaN/inf points of the range are listed under ``nonfinite``.
    """
    steps, values, times = series.steps, series.values, series.timestamps
    first = min_step
    if after_step is not None:
        first = after_step + 1 if first is None else max(first, after_step + 1)
    lo = 0 if first is None else bisect_left(steps, first)
    hi = len(steps) if max_step is None else bisect_right(steps, max_step)
    hi = max(lo, hi)
    finite, bad = _split(values, lo, hi)
    kept = _bucket_extremes(values, finite, max_points)
    return {
        "run_id": series.run_id,
        "key": series.key,
        "total": len(steps),
        "in_range": hi - lo,
        "shown": len(kept),
        "downsampled": len(kept) < len(finite),
        "first_step": steps[0] if steps else None,
        "last_step": steps[-1] if steps else None,
        "steps": [steps[i] for i in kept],
        "values": [values[i] for i in kept],
        "times": [times[i] for i in kept],
        "nonfinite": [
            {"step": steps[i], "value": _nonfinite_label(values[i]), "time": times[i]}
            for i in bad[:max_points]
        ],
    }


def line_spec(key: str, rows: list[dict[str, Any]], color: str | None = None) -> dict[str, Any]:
    """A Vega-Lite line chart of ``rows`` (``step``, ``value`` and optionally ``color``).

    ``static/charts.js`` adds the hover rule, tooltips and x zoom when it draws one.
    """
    encoding: dict[str, Any] = {
        "x": {"field": "step", "type": "quantitative", "title": "step"},
        "y": {"field": "value", "type": "quantitative", "title": key, "scale": {"zero": False}},
        "tooltip": [
            {"field": "step", "type": "quantitative"},
            {"field": "value", "type": "quantitative", "format": ".4g"},
        ],
    }
    if color:
        encoding["color"] = {"field": color, "type": "nominal", "title": "run"}
        encoding["tooltip"].insert(0, {"field": color, "type": "nominal"})
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": 220,
        "data": {"values": rows},
        "mark": {"type": "line", "interpolate": "linear"},
        "encoding": encoding,
    }


def run_chart(points: dict[str, Any]) -> dict[str, Any]:
    """One metric of one run."""
    rows = [{"step": s, "value": v} for s, v in zip(points["steps"], points["values"], strict=True)]
    return line_spec(points["key"], rows)


def overlay_chart(key: str, curves: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One metric of several runs, one coloured line per run label."""
    rows = [
        {"step": s, "value": v, "run": label}
        for label, pts in curves
        for s, v in zip(pts["steps"], pts["values"], strict=True)
    ]
    return line_spec(key, rows, color="run")


def metric_groups(summaries: dict[str, Any]) -> list[dict[str, Any]]:
    """Metric keys grouped by their ``prefix/`` (keys without one under ``""``), sorted."""
    groups: dict[str, list[str]] = {}
    for key in sorted(summaries):
        prefix = key.split("/", 1)[0] if "/" in key else ""
        groups.setdefault(prefix, []).append(key)
    return [{"prefix": p, "keys": groups[p]} for p in sorted(groups)]

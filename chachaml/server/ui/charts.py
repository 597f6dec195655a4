"""Vega-Lite specs for metric curves, and server-side downsampling for long series.

A browser draws a few thousand points without effort; a 100,000-point series is cut to
``max_points`` by keeping each bucket's lowest and highest value (in step order), so spikes
survive. The full series stays downloadable as CSV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from chachaml.records.runs import MetricSeries

DISPLAY_POINTS = 1000
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


def downsample(
    steps: Sequence[int], values: Sequence[float | None], max_points: int
) -> tuple[list[int], list[float]]:
    """At most ``max_points`` finite points: per bucket, the min and max in step order."""
    pts = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None and math.isfinite(v)]
    if len(pts) <= max_points:
        return [s for s, _ in pts], [v for _, v in pts]
    buckets = max(1, max_points // 2)
    size = len(pts) / buckets
    out: list[tuple[int, float]] = []
    for b in range(buckets):
        chunk = pts[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        lo = min(range(len(chunk)), key=lambda i: chunk[i][1])
        hi = max(range(len(chunk)), key=lambda i: chunk[i][1])
        out += [chunk[i] for i in sorted({lo, hi})]
    return [s for s, _ in out], [v for _, v in out]


def series_points(series: MetricSeries, max_points: int = DISPLAY_POINTS) -> dict[str, Any]:
    """A series as the page and API show it: the points drawn and how many there are in all."""
    steps, values = downsample(series.steps, series.values, max_points)
    return {
        "run_id": series.run_id,
        "key": series.key,
        "total": len(series.steps),
        "shown": len(steps),
        "downsampled": len(steps) < len(series.steps),
        "steps": steps,
        "values": values,
    }


def line_spec(key: str, rows: list[dict[str, Any]], color: str | None = None) -> dict[str, Any]:
    """A Vega-Lite line chart of ``rows`` (``step``, ``value`` and optionally ``color``)."""
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

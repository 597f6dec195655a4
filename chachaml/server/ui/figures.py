"""Vega-Lite specs the Compare and Experiment pages add to the metric curves.

Parallel coordinates and a param-vs-metric scatter over 2-10 runs, and one metric's latest
value per run over start time with its best-so-far line. Data is normalised here, so the
specs need no transforms; every run keeps the colour the page's table and legend give it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from chachaml.server.ui.charts import SCHEMA

# One colour per compared run, the same in charts, table headers and legend (app.css
# .run-c0 ... .run-c9 holds the same list: the CSP forbids inline styles). It is Vega's own
# "tableau10" and runs take colours in the order of their labels, as Vega's default nominal
# scale does: a chart drawn without this module's explicit scale still agrees.
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#e45756",
    "#72b7b2",
    "#54a24b",
    "#eeca3b",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
)
MAX_AXES = 14
PAD = 14  # pixels between the plot's edge and the outermost points, which would be cut


def color_index(labels: Sequence[str]) -> dict[str, int]:
    """Each run label's palette position: labels in sorted order, like Vega's nominal scale."""
    return {label: i for i, label in enumerate(sorted(labels))}


def color_scale(labels: Sequence[str]) -> dict[str, Any]:
    """A colour encoding mapping each run label to its palette colour, with no legend."""
    ordered = sorted(labels)
    return {
        "field": "run",
        "type": "nominal",
        "title": "run",
        "scale": {"domain": ordered, "range": list(PALETTE[: len(ordered)])},
        "legend": None,
    }


def recolor(spec: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """An overlay chart of runs in the page's run colours, its legend left to the page."""
    encoding = spec.get("encoding", {})
    if "color" in encoding:
        encoding["color"] = {**encoding["color"], **color_scale(labels)}
    return spec


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _axis(values: Sequence[object]) -> tuple[list[float | None], list[tuple[float, str]]] | None:
    """Each value placed on 0..1 and the axis's labels; ``None`` when nothing to draw.

    Numbers spread from their minimum to their maximum, anything else (an optimizer's
    name) gets evenly spaced categories; NaN and missing values stay off the axis.
    """
    kept = [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]
    present = [v for v in kept if v is not None]
    if not present:
        return None
    numbers = [n for n in (_number(v) for v in present) if n is not None]
    if len(numbers) == len(present):
        lo, hi = min(numbers), max(numbers)
        if lo == hi:
            return [None if v is None else 0.5 for v in kept], [(0.5, f"{lo:.4g}")]
        spots = [None if (n := _number(v)) is None else (n - lo) / (hi - lo) for v in kept]
        return spots, [(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")]
    names = sorted({str(v) for v in present})
    where = {n: (i / (len(names) - 1) if len(names) > 1 else 0.5) for i, n in enumerate(names)}
    return [None if v is None else where[str(v)] for v in kept], [(p, n) for n, p in where.items()]


def parallel_spec(
    labels: Sequence[str], dims: Sequence[tuple[str, Sequence[object]]]
) -> dict[str, Any] | None:
    """Parallel coordinates: an axis per param or metric (values per run), a line per run."""
    rows: list[dict[str, Any]] = []
    ticks: list[dict[str, Any]] = []
    names: list[str] = []
    for name, values in dims[:MAX_AXES]:
        placed = _axis(values)
        if placed is None:
            continue
        names.append(name)
        spots, labels_at = placed
        order = len(names)
        for label, value, spot in zip(labels, values, spots, strict=True):
            if spot is not None:
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                rows.append({"run": label, "axis": name, "order": order, "y": spot, "value": shown})
        ticks += [{"axis": name, "y": y, "text": text} for y, text in labels_at]
    if len(names) < 2:
        return None
    x = {
        "field": "axis",
        "type": "nominal",
        "sort": names,
        "title": None,
        "axis": {"labelAngle": -20, "labelLimit": 180, "domain": False},
    }
    y = {"field": "y", "type": "quantitative", "axis": None, "scale": {"domain": [0, 1]}}
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": 280,
        "layer": [
            {
                "data": {"values": [{"axis": n} for n in names]},
                "mark": {"type": "rule", "color": "#8c959f"},
                "encoding": {"x": x},
            },
            {
                "data": {"values": rows},
                "mark": {"type": "line", "point": True, "strokeWidth": 2},
                "encoding": {
                    "x": x,
                    "y": y,
                    "color": color_scale(labels),
                    "detail": {"field": "run", "type": "nominal"},
                    "order": {"field": "order", "type": "quantitative"},
                    "tooltip": [
                        {"field": "run", "type": "nominal"},
                        {"field": "axis", "type": "nominal"},
                        {"field": "value", "type": "nominal"},
                    ],
                },
            },
            {
                "data": {"values": ticks},
                "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 10},
                "encoding": {"x": x, "y": y, "text": {"field": "text"}},
            },
        ],
    }


def scatter_spec(
    labels: Sequence[str], x_key: str, xs: Sequence[object], y_key: str, ys: Sequence[object]
) -> dict[str, Any] | None:
    """One point per run: a param or metric across, a metric up, in the run's colour."""
    numeric = all(_number(x) is not None for x in xs if x is not None)
    rows = [
        {"run": label, "x": across if numeric else str(across), "y": _number(up)}
        for label, across, up in zip(labels, xs, ys, strict=True)
        if across is not None and _number(up) is not None
    ]
    if not rows:
        return None
    x: dict[str, Any] = {"field": "x", "type": "nominal", "title": x_key}
    if numeric:
        x = {**x, "type": "quantitative", "scale": {"zero": False, "padding": PAD}}
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": 260,
        "data": {"values": rows},
        "mark": {"type": "point", "filled": True, "size": 110},
        "encoding": {
            "x": x,
            "y": {
                "field": "y",
                "type": "quantitative",
                "title": y_key,
                "scale": {"zero": False, "padding": PAD},
            },
            "color": color_scale(labels),
            "tooltip": [
                {"field": "run", "type": "nominal"},
                {"field": "x", "type": x["type"], "title": x_key},
                {"field": "y", "type": "quantitative", "title": y_key, "format": ".4g"},
            ],
        },
    }


def timeline_spec(metric: str, direction: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    """A metric's latest value per run over start time, and the best so far as a step line.

    ``points`` are ``{"run", "started", "value"}`` in start order.
    """
    best: float | None = None
    rows = []
    for p in points:
        value = p["value"]
        if best is None or (value > best if direction == "max" else value < best):
            best = value
        rows.append({**p, "best": best})
    time_x = {
        "field": "started",
        "type": "temporal",
        "title": "run start",
        "scale": {"padding": PAD},
        "axis": {"format": "%b %d %H:%M", "labelOverlap": True},  # 24-hour, not Vega's %I
    }
    value_y = {"type": "quantitative", "title": metric, "scale": {"zero": False, "padding": PAD}}
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": 240,
        "data": {"values": rows},
        "layer": [
            {
                "mark": {"type": "line", "interpolate": "step-after", "color": "#59a14f"},
                "encoding": {
                    "x": time_x,
                    "y": {**value_y, "field": "best"},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "color": "#4c78a8", "size": 60},
                "encoding": {
                    "x": time_x,
                    "y": {**value_y, "field": "value"},
                    "tooltip": [
                        {"field": "run", "type": "nominal"},
                        {"field": "started", "type": "temporal", "format": "%Y-%m-%d %H:%M"},
                        {"field": "value", "type": "quantitative", "format": ".4g"},
                        {
                            "field": "best",
                            "type": "quantitative",
                            "format": ".4g",
                            "title": "best so far",
                        },
                    ],
                },
            },
        ],
    }

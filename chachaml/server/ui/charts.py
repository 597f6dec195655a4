"""Metric series for the charts: server-side downsampling of a step range, and Vega-Lite specs.

A browser draws a few thousand points without effort; a 100,000-point series is cut to
``max_points`` by keeping each bucket's lowest and highest value (in step order), so spikes
survive. Downsampling applies to the requested step range only (the store reads only the
chunks that overlap it), so a chart zoomed in fetches the finer points of what it shows. It
works on the packed arrays the store returns (:class:`~chachaml.records.runs.MetricPoints`),
never on a Python object per point; with numpy installed (``chachaml[numpy]``) the buckets'
extremes are found by numpy (:func:`keep_indices_numpy`, the same points), ~100x faster
than ``min``/``max`` over array slices, which make a float object per value. NaN and
infinite points are never drawn as values: they come back on their own (``nonfinite``) so
the chart can mark where they occur. A large range comes from the store as outlines
(:class:`~chachaml.records.metrics.MetricOutline`: of each block of a chunk only its first
lowest and highest point, each placed in the range), bucketed by position with edges on
block edges, so no chunk it covers is decoded. The full series stays downloadable as CSV.
The browser side is ``static/charts.js``.
"""

from __future__ import annotations

import math
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from chachaml.records.metrics import MetricOutline
from chachaml.records.runs import MetricPoints
from chachaml.store.codec import optional_numpy

DISPLAY_POINTS = 1000
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
BLOCK = 4096  # values summed at once to find the non-finite ones


def nonfinite_indices(values: array[float]) -> list[int]:
    """Indices of the NaN and infinite values, in order.

    A block whose sum is finite holds neither, so only the rare block whose sum is not (a
    NaN, an infinity, or finite values overflowing) is looked at value by value: a million
    values cost a few milliseconds instead of a Python call each.
    """
    bad: list[int] = []
    for start in range(0, len(values), BLOCK):
        block = values[start : start + BLOCK]
        if not math.isfinite(sum(block)):
            bad += [start + i for i, x in enumerate(block) if not math.isfinite(x)]
    return bad


def _runs(start: int, stop: int, bad: list[int]) -> list[tuple[int, int]]:
    """``start..stop`` cut around the indices in ``bad``: the runs of finite values."""
    runs, at = [], start
    for i in bad[bisect_left(bad, start) : bisect_left(bad, stop)]:
        if at < i:
            runs.append((at, i))
        at = i + 1
    if at < stop:
        runs.append((at, stop))
    return runs


def _find(raw: bytes, value: float) -> int:
    """The index of the first double in ``raw`` that is ``value``, bit for bit.

    A byte search (memchr speed) instead of ``array.index``, which compares a float object
    per value; the first aligned match is the first element equal to a ``min`` or ``max``
    taken from the same values (the first of equal ones, even of -0.0 and 0.0).
    """
    pattern = struct.pack("d", value)
    at = raw.find(pattern)
    while at % 8:
        at = raw.find(pattern, at + 1)
    return at // 8


def _extremes(values: array[float], runs: list[tuple[int, int]]) -> tuple[int, int]:
    """Indices of the lowest and highest value in ``runs`` (the first of equal ones).

    ``min`` and ``max`` over array slices run at C speed: a bucket of thousands of points
    costs microseconds.
    """
    low = high = -1
    for a, z in runs:
        part = values[a:z]
        lo, hi = min(part), max(part)
        if low < 0 or lo < values[low]:
            low = a + _find(part.tobytes(), lo)
        if high < 0 or hi > values[high]:
            high = a + _find(part.tobytes(), hi)
    return low, high


def keep_indices(
    values: array[float],
    bad: list[int],
    max_points: int,
    positions: Sequence[int] | None = None,
    in_range: int | None = None,
    outlined: Sequence[int] = (),
) -> list[int]:
    """Indices of at most ``max_points`` finite values, in order, spikes kept.

    All of them, or per bucket (of equally many finite points of the range) its lowest and
    highest. ``bad`` lists the non-finite indices (:func:`nonfinite_indices`); they are never
    kept. ``positions`` (increasing) places each value among the ``in_range`` points of the
    range when ``values`` hold only some of them (:class:`MetricOutline`): the buckets are
    then cut by position, their edges moved to block edges in ``outlined`` chunks
    (:func:`snap_edges`), and a bucket's extremes are those of its values.
    """
    finite = len(values) - len(bad)
    if finite <= max_points:
        return [i for a, z in _runs(0, len(values), bad) for i in range(a, z)]
    where = range(len(values)) if positions is None else positions
    count = (len(values) if in_range is None else in_range) - len(bad)
    # the p-th finite point is at p + (bad points before it); bad[j] - j finite points
    # precede bad[j], a non-decreasing count, so that number is one bisection
    before = [where[i] - j for j, i in enumerate(bad)]

    def at(p: int) -> int:
        return p + bisect_right(before, p)

    bad_at = [where[i] for i in bad]
    edges = snap_edges(_edges(count, max_points), outlined, bad_at)
    out: list[int] = []
    for first, end in pairwise(edges):
        if first >= end:
            continue
        start, stop = bisect_left(where, at(first)), bisect_right(where, at(end - 1))
        low, high = _extremes(values, _runs(start, stop, bad))
        if low >= 0:
            out += [low] if low == high else [min(low, high), max(low, high)]
    return out


def _edges(count: int, max_points: int) -> list[int]:
    """Where each bucket starts among ``count`` finite points, then ``count`` (as numpy's)."""
    buckets = max(1, max_points // 2)
    size = count / buckets
    return [int(b * size) for b in range(buckets + 1)]


def snap_edges(edges: list[int], outlined: Sequence[int], bad: Sequence[int]) -> list[int]:
    """Bucket ``edges`` inside a chunk given by its outline, moved to its nearest block edge.

    ``edges`` are ranks among the range's finite points; ``outlined`` is
    :attr:`MetricOutline.outlined` (first position, points and block size of each such
    chunk); ``bad`` the positions of the range's non-finite points (none lies in an outlined
    chunk). A bucket then holds each block whole, so the extremes of its outline points are
    the bucket's very extremes; the buckets' sizes move by half a block at most.
    """
    if not outlined:
        return edges
    spans = [(outlined[i] - bisect_left(bad, outlined[i]), outlined[i + 1], outlined[i + 2])
             for i in range(0, len(outlined), 3)]  # fmt: skip
    firsts = [first for first, _, _ in spans]
    out = []
    for e in edges:
        k = bisect_right(firsts, e) - 1
        if k >= 0:
            first, points, block = spans[k]
            if first < e < first + points:
                e = min(first + (e - first + block // 2) // block * block, first + points)
        out.append(e)
    return out


def keep_indices_numpy(
    values: array[float],
    max_points: int,
    positions: array[int] | None = None,
    in_range: int | None = None,
    outlined: Sequence[int] = (),
) -> tuple[list[int], list[int]]:
    """:func:`keep_indices` and :func:`nonfinite_indices` at once, computed by numpy.

    The same buckets (positions among the finite points cut at ``int(b * size)``, the same
    float arithmetic) and in each the first lowest and first highest value (``argmin`` and
    ``argmax`` keep the first of equal values, -0.0 and 0.0 too, as ``min`` does): a
    numpy call per bucket instead of a float object per value. Needs numpy.
    """
    np = optional_numpy()
    assert np is not None
    v = np.frombuffer(values, dtype=np.float64)
    finite = np.isfinite(v)
    bad = np.flatnonzero(~finite)
    where = np.flatnonzero(finite) if len(bad) else None
    fv = v if where is None else v[where]
    if len(fv) <= max_points:
        return (list(range(len(v))) if where is None else where.tolist()), bad.tolist()
    count = (len(v) if in_range is None else in_range) - len(bad)
    buckets = max(1, max_points // 2)
    edges = (np.arange(buckets + 1) * (count / buckets)).astype(np.int64)
    if positions is not None:  # each finite value's rank among the range's finite points
        at = np.frombuffer(positions, dtype=np.int64)
        ranks = at if where is None else at[where] - np.searchsorted(at[bad], at[where])
        if outlined:
            edges = np.array(snap_edges(edges.tolist(), outlined, at[bad].tolist()))
        edges = np.searchsorted(ranks, edges)
    kept: list[int] = []
    for first, end in pairwise(edges.tolist()):
        if first < end:  # argmin/argmax: the first of equal values, at C speed per bucket
            part = fv[first:end]
            low, high = first + int(part.argmin()), first + int(part.argmax())
            kept += [low] if low == high else [min(low, high), max(low, high)]
    return (kept if where is None else where[kept].tolist()), bad.tolist()


def _nonfinite_label(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "inf" if value > 0 else "-inf"


def series_points(points: MetricPoints, max_points: int = DISPLAY_POINTS) -> dict[str, Any]:
    """Points read for a chart (a step range of a metric) as the chart gets them, and counts.

    ``points`` may hold only some of the range's points (a :class:`MetricOutline` of a large
    range): they are bucketed by their positions in the range.

    ``total`` counts every point of the metric, ``in_range`` those read, ``shown`` those
    returned; ``first_step``/``last_step`` span the whole metric. NaN/inf points are listed
    under ``nonfinite`` (at most ``max_points`` of them), never among the values.
    """
    steps, values, times = points.steps, points.values, points.timestamps
    positions, in_range, outlined = None, len(steps), array("q")
    if isinstance(points, MetricOutline):
        positions, in_range, outlined = points.positions, points.in_range, points.outlined
    if optional_numpy() is not None:
        kept, bad = keep_indices_numpy(values, max_points, positions, in_range, outlined)
    else:
        bad = nonfinite_indices(values)
        kept = keep_indices(values, bad, max_points, positions, in_range, outlined)
    return {
        "run_id": points.run_id,
        "key": points.key,
        "total": points.total,
        "in_range": in_range,
        "shown": len(kept),
        "downsampled": len(kept) < in_range - len(bad),
        "first_step": points.first_step,
        "last_step": points.last_step,
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

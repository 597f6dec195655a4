"""How records look in a notebook: HTML fragments for ``_repr_html_`` and one-line reprs.

Jupyter shows a value's ``_repr_html_()`` when it has one; this module holds the pieces every
record draws with (tables, key/value blocks, status badges, an inline SVG sparkline) and the
formatting the CLI uses too (``:.4g`` numbers, UTC times, short durations). No template engine,
no JavaScript and no plotting library: a notebook output must render in any frontend, survive
being saved, and ``import chachaml`` must stay light.

Every stored string (run names, tags, params, notes, errors) can hold markup, so every value
goes through :func:`html.escape` on its way in; only :class:`Html` values, which these helpers
build themselves, pass through unescaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

ROW_LIMIT = 50  # rows a table shows before it says how many more there are
SPARK_POINTS = 400  # a longer series is thinned (each bucket's min and max) before drawing
REPR_LIMIT = 120  # characters of a one-line repr

_STATUS_COLOURS = {
    "running": "#1f6feb",
    "completed": "#1a7f37",
    "failed": "#cf222e",
    "killed": "#9a6700",
    "stopped": "#9a6700",
    "pending": "#6e7781",
    "skipped": "#6e7781",
    "production": "#1a7f37",
    "staging": "#9a6700",
    "archived": "#6e7781",
    "none": "#6e7781",
}
_ROOT = "font-size:13px;line-height:1.4;max-width:100%;overflow-x:auto"
_CELL = "padding:2px 8px;border-bottom:1px solid rgba(128,128,128,0.25);vertical-align:top"


class Html(str):
    """Text that is already HTML: the helpers here do not escape it a second time."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Any value as escaped HTML text (``None`` is empty)."""
    return Html("" if value is None else html.escape(str(value), quote=True))


def num(value: float | int | None) -> str:
    """A number as the CLI prints it: ``:.4g`` for floats, exact for ints, empty for ``None``."""
    if value is None:
        return ""
    if isinstance(value, int):  # bool too
        return str(value)
    return f"{value:.4g}"


def when(moment: datetime | None) -> str:
    """A time in UTC to the second, as the CLI's tables show it."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """A wall time a person reads at a glance: ``850ms``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def size(n_bytes: int) -> str:
    """A byte count as a person reads it: ``812 B``, ``4.2 kB``, ``1.3 MB``."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{n_bytes} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def clip(text: object, limit: int) -> str:
    """``text`` on one line (control characters and runs of spaces collapsed), cut with ``…``."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return flat if len(flat) <= limit else flat[: max(limit - 1, 0)] + "…"


def short_id(run_id: str | None) -> str:
    """The 12-character id prefix that ``chachaml runs`` prints and every surface accepts."""
    return "" if run_id is None else run_id[:12]


def pairs(values: Mapping[str, float | None], limit: int = 3) -> str:
    """``key=value`` for the first ``limit`` metrics by name, then ``+N``: a repr's summary."""
    keys = sorted(values)
    shown = " ".join(f"{clip(k, 20)}={num(values[k]) or 'None'}" for k in keys[:limit])
    return shown + (f" +{len(keys) - limit}" if len(keys) > limit else "")


def one_line(name: str, *parts: str) -> str:
    """``Name(part part ...)`` cut to :data:`REPR_LIMIT` characters: reprs stay one short line."""
    body = clip(" ".join(p for p in parts if p), REPR_LIMIT - len(name) - 2)
    return f"{name}({body})"


def cell(value: object) -> Html:
    """A value as table-cell HTML: numbers ``:.4g``, times in UTC, lists and dicts joined."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, int | float):
        return esc(num(value))
    if isinstance(value, datetime):
        return esc(when(value))
    if isinstance(value, Mapping):
        return esc(", ".join(f"{k}={v}" for k, v in value.items()))
    if isinstance(value, list | tuple):
        return esc(", ".join(str(v) for v in value))
    return esc(value)


def code(text: object) -> Html:
    """Monospace text (ids, hashes, URIs)."""
    return Html(f"<code>{esc(text)}</code>")


def badge(status: str) -> Html:
    """A status or stage as a small coloured label."""
    colour = _STATUS_COLOURS.get(status, "#6e7781")
    style = f"color:#fff;background:{colour};border-radius:3px;padding:0 5px;font-size:11px"
    return Html(f'<span style="{style}">{esc(status)}</span>')


def table(
    headers: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    total: int | None = None,
    caption: object = None,
) -> Html:
    """An HTML table; numbers align right, and past :data:`ROW_LIMIT` rows it says how many more.

    ``total`` is the full count when ``rows`` is already a slice of something longer.
    """
    shown = rows[:ROW_LIMIT]
    total = len(rows) if total is None else total
    head = "".join(f'<th style="{_CELL};text-align:left">{cell(h)}</th>' for h in headers)
    body = []
    for row in shown:
        tds = "".join(f'<td style="{_CELL};text-align:{_align(v)}">{cell(v)}</td>' for v in row)
        body.append(f"<tr>{tds}</tr>")
    more = total - len(shown)
    if more > 0:
        note = esc(f"… {more} more ({total} in all)")
        body.append(f'<tr><td colspan="{len(headers)}" style="{_CELL}">{note}</td></tr>')
    top = f'<caption style="text-align:left">{cell(caption)}</caption>' if caption else ""
    return Html(
        f'<table style="border-collapse:collapse">{top}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _align(value: object) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return "right" if numeric else "left"


def fields(items: Iterable[tuple[str, object]]) -> Html:
    """A two-column key/value table, skipping empty values."""
    rows = [
        f'<tr><th style="{_CELL};text-align:left">{esc(k)}</th>'
        f'<td style="{_CELL};text-align:left">{cell(v)}</td></tr>'
        for k, v in items
        if v is not None and v != "" and v != [] and v != {}
    ]
    return Html(f'<table style="border-collapse:collapse"><tbody>{"".join(rows)}</tbody></table>')


def section(title: str, body: Html) -> Html:
    """A small heading over one part of a record."""
    return Html(f'<div style="margin-top:6px"><strong>{esc(title)}</strong>{body}</div>')


def card(title: Html, *parts: Html) -> Html:
    """The outer box of one record's HTML: a title line, then its parts."""
    return Html(f'<div class="chachaml" style="{_ROOT}"><div>{title}</div>{"".join(parts)}</div>')


def text_block(text: str) -> Html:
    """Multi-line stored text (a note, an error) shown as text, whitespace kept."""
    style = "white-space:pre-wrap;margin:2px 0;font-family:inherit"
    return Html(f'<pre style="{style}">{esc(text)}</pre>')


def sparkline(
    steps: Sequence[int], values: Sequence[float | None], *, width: int = 120, height: int = 24
) -> Html:
    """A series as a small inline SVG polyline over its steps, with a dot on the last point.

    Points that are ``None``, NaN or infinite are skipped (nothing sensible to plot); one
    point still shows as a dot; a series longer than :data:`SPARK_POINTS` keeps each bucket's
    minimum and maximum (and both ends) so spikes survive the thinning.
    """
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values: a point needs both")
    kept = [i for i, v in enumerate(values) if v is not None and -math.inf < v < math.inf]
    if not kept:  # (the comparison is False for NaN too)
        return Html('<span style="color:#6e7781">no finite values</span>')
    ys = [float(values[i] or 0.0) for i in kept]  # never None here: kept skips it
    y0, y_top = min(ys), max(ys)
    label = esc(f"{len(ys)} points, last {num(ys[-1])}, min {num(y0)}, max {num(y_top)}")
    points = [(float(steps[kept[j]]), ys[j]) for j in _thin(ys, SPARK_POINTS)]
    pad = 2.0
    x0, x_span = points[0][0], (points[-1][0] - points[0][0]) or 1.0  # steps ascend
    y_span = y_top - y0

    def place(x: float, y: float) -> tuple[float, float]:
        px = pad + (x - x0) / x_span * (width - 2 * pad) if len(points) > 1 else width / 2
        py = height / 2 if y_span == 0 else pad + (1 - (y - y0) / y_span) * (height - 2 * pad)
        return round(px, 1), round(py, 1)

    placed = [place(x, y) for x, y in points]
    coords = " ".join(f"{x:g},{y:g}" for x, y in placed)
    last_x, last_y = placed[-1]
    return Html(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        f'style="vertical-align:middle;color:#1f6feb"><title>{label}</title>'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" '
        f'stroke-linejoin="round" points="{coords}"/>'
        f'<circle cx="{last_x:g}" cy="{last_y:g}" r="2" fill="currentColor"/></svg>'
    )


def _thin(ys: list[float], limit: int) -> list[int]:
    """At most ``limit`` indices: each bucket's min and max in order, plus both ends."""
    n = len(ys)
    if n <= limit:
        return list(range(n))
    buckets = (limit - 2) // 2
    kept = [0]
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        chunk = ys[lo:hi]
        low, high = lo + chunk.index(min(chunk)), lo + chunk.index(max(chunk))
        kept.extend(sorted({low, high}))
    kept.append(n - 1)
    return kept

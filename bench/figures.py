"""A measured figure beside its target and its same-run reference, and the table of them.

Ratios are always value / reference: ``150x MLflow`` for an ingest rate, ``1/7,000x`` for a
per-call cost that is 7,000 times smaller, ``1.3x floor`` for a latency above the floor.
Against a reference measured in the same run they survive a loaded machine better than the
absolute numbers do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.targets import Better, Target


@dataclass(frozen=True)
class Figure:
    """One number a benchmark measured, in ``unit``."""

    benchmark: str
    name: str
    value: float
    unit: str
    better: Better
    target: Target | None = None
    reference: float | None = None  # the same figure for the reference, same run
    reference_name: str | None = None  # "MLflow", "SQLite", "floor", "local"

    @property
    def ratio(self) -> float | None:
        """value / reference, when a reference was measured."""
        if self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    @property
    def met(self) -> bool | None:
        """Whether the figure reaches its target; ``None`` when it has none."""
        return None if self.target is None else self.target.met(self.value, self.reference)

    def as_dict(self) -> dict[str, Any]:
        """The figure as JSON-able data, its target's key and verdict included."""
        return {
            "benchmark": self.benchmark,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "better": self.better,
            "reference": self.reference,
            "reference_name": self.reference_name,
            "ratio": self.ratio,
            "target": None if self.target is None else self.target.key,
            "target_text": None if self.target is None else self.target.describe(),
            "met": self.met,
        }


def number(value: float | None) -> str:
    """A figure with about three significant digits, or a dash."""
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def ratio_text(figure: Figure) -> str:
    """``150x MLflow``, ``1/7,000x MLflow`` or ``-``."""
    r = figure.ratio
    if r is None:
        return "-"
    shown = f"1/{1 / r:,.0f}x" if r < 0.1 else f"{r:,.2f}x" if r < 10 else f"{r:,.0f}x"
    return f"{shown} {figure.reference_name}"


VERDICT = {True: "met", False: "NOT MET", None: "-"}


def render(figures: Sequence[Figure]) -> str:
    """The table: benchmark, figure, value, unit, reference, ratio, target, verdict."""
    header = ("benchmark", "figure", "value", "unit", "reference", "ratio", "target", "result")
    cells = [
        (
            f.benchmark,
            f.name,
            number(f.value),
            f.unit,
            number(f.reference),
            ratio_text(f),
            "-" if f.target is None else f.target.describe(),
            VERDICT[f.met],
        )
        for f in figures
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    left = {0, 1, 3, 6, 7}

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i in left else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    judged = [f.met for f in figures if f.met is not None]
    out = [line(header), "  ".join("-" * w for w in widths), *map(line, cells)]
    out.append(f"targets met: {sum(judged)} of {len(judged)}")
    return "\n".join(out)

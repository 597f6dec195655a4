"""The web UI benchmark at a tiny size, so that it cannot rot."""

from __future__ import annotations

from pathlib import Path

from bench import ui
from bench.runner import Context
from bench.seed import Catalogue


def test_bench_ui_times_every_view_on_a_small_store(tmp_path: Path) -> None:
    figures = ui.measure(ui.Size(runs=50, calls=3), Context(tmp_path, Catalogue(tmp_path)))
    by_name = {f.name: f for f in figures}
    assert len(by_name) == len(ui.VIEWS) + len(ui.CHARTED) + 1  # p50s, the Runs page's p95
    assert all(0 < f.value < 10_000 and f.unit == "ms" for f in figures)
    p50, p95 = by_name["runs page p50, 50 runs"], by_name["runs page p95, 50 runs"]
    assert p95.value >= p50.value
    assert p95.target is not None and p95.met is (p95.value <= 150.0)
    assert "run, 100k-point metric p50" in by_name
    nested = by_name["runs, param columns, nested p50, 50 runs"]  # issue 18's figure
    assert nested.target is not None and nested.met is (nested.value <= 150.0)
    million = by_name["run page + chart, 1M-point metric p50"]  # issue 18's other figure
    assert million.target is not None and million.met is (million.value <= 300.0)
    assert "chart zoomed to 1% of a 1M-point metric p50" in by_name

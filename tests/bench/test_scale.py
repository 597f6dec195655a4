"""``bench scale`` at a tiny size, so that it cannot rot: every series on every backend, real
stores, real figures; an unknown part refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_scale
from bench.postgres import unavailable
from bench.runner import Context
from bench.seed import Catalogue


def test_storage_measures_each_series_on_each_backend(tmp_path: Path) -> None:
    size = bench_scale.Size(points=20_000, repeats=1, parts=("storage",))
    context = Context(tmp_path, Catalogue(tmp_path))
    figures = bench_scale.measure(size, context)
    backends = ["SQLite"] + (["PostgreSQL"] if unavailable() is None else [])
    assert len(figures) == 4 * len(bench_scale.SERIES) * len(backends)
    sizes = {f.name: f.value for f in figures if f.unit == "B/point"}
    assert sizes.keys() == {f"{b}: bytes/point, {s}" for b in backends
                            for s in bench_scale.SERIES}  # fmt: skip
    assert all(0 <= v < 24 for v in sizes.values()), sizes  # pages: 0 B for a tiny series
    assert sizes["SQLite: bytes/point, constant"] < sizes["SQLite: bytes/point, float64 noise"]
    assert all(f.value > 0 for f in figures if f.unit in ("points/s", "ms"))
    history = [f for f in figures if "metric_history" in f.name]
    assert all(f.target is None for f in history), "judged only at a million points"


def test_an_unknown_part_is_refused(tmp_path: Path) -> None:
    size = bench_scale.Size(points=10, repeats=1, parts=("storage", "replicas"))
    with pytest.raises(SystemExit, match="no part replicas; there are storage"):
        bench_scale.measure(size, Context(tmp_path, Catalogue(tmp_path)))

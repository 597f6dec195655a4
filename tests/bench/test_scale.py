"""``bench scale`` at a tiny size, so that it cannot rot: the storage part (every series on
every backend) and the downsample part on real stores, real figures; an unknown part refused.
The runs and ingest parts have their own modules (``test_scale_runs``, ``test_scale_ingest``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import bench_scale, scale_downsample, scale_storage
from bench.postgres import unavailable
from bench.runner import Context
from bench.seed import Catalogue


def test_storage_measures_each_series_on_each_backend(tmp_path: Path) -> None:
    size = bench_scale.Size(points=20_000, repeats=1, runs=0, calls=0, writers=0,
                            writer_points=0, parts=("storage",))  # fmt: skip
    context = Context(tmp_path, Catalogue(tmp_path))
    figures = bench_scale.measure(size, context)
    backends = ["SQLite"] + (["PostgreSQL"] if unavailable() is None else [])
    assert len(figures) == 4 * len(scale_storage.SERIES) * len(backends)
    sizes = {f.name: f.value for f in figures if f.unit == "B/point"}
    assert sizes.keys() == {f"{b}: bytes/point, {s}" for b in backends
                            for s in scale_storage.SERIES}  # fmt: skip
    assert all(0 <= v < 24 for v in sizes.values()), sizes  # pages: 0 B for a tiny series
    assert sizes["SQLite: bytes/point, constant"] < sizes["SQLite: bytes/point, float64 noise"]
    assert all(f.value > 0 for f in figures if f.unit in ("points/s", "ms"))
    history = [f for f in figures if "metric_history" in f.name]
    assert all(f.target is None for f in history), "judged only at a million points"


def test_an_unknown_part_is_refused(tmp_path: Path) -> None:
    size = dataclasses.replace(bench_scale.SIZES["quick"], parts=("storage", "replicas"))
    with pytest.raises(
        SystemExit, match="no part replicas; there are storage, runs, ingest, downsample"
    ):
        bench_scale.measure(size, Context(tmp_path, Catalogue(tmp_path)))


def test_downsample_times_every_range_and_the_mcp_tool(tmp_path: Path) -> None:
    context = Context(tmp_path, Catalogue(tmp_path))
    figures = scale_downsample.measure(5_000, 1, ("sqlite",), context)
    names = [f.name.removeprefix("SQLite: downsample 5,000 points, ").removesuffix(" p50")
             for f in figures]  # fmt: skip
    assert names == [*(f"chart, {r}" for r in scale_downsample.ranges(5_000)),
                     "MCP get_metric_history, whole series"]  # fmt: skip
    assert all(f.value > 0 and f.unit == "ms" and f.target is None for f in figures)

"""The web UI benchmark at a tiny size, so that it cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_mcp
import bench_ui


def test_bench_ui_times_every_view_on_a_small_store(tmp_path: Path) -> None:
    db = tmp_path / "bench.db"
    bench_mcp.seed(db, 50)
    results = anyio.run(bench_ui.measure, f"sqlite:///{db}", 2)
    assert "runs page" in results and "run, 100k-point metric" in results
    assert all(p50 > 0 and p95 >= p50 for p50, p95 in results.values())

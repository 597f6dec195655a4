"""The events benchmark at a tiny size, so that it cannot rot: a real server, real streams."""

from __future__ import annotations

from pathlib import Path

from bench import events
from bench.runner import Context
from bench.seed import Catalogue


def test_bench_events_times_flush_to_sse_and_ingest_on_and_off(tmp_path: Path) -> None:
    size = events.Size(flushes=5, points=2_000, repeats=1)
    figures = events.measure(size, Context(tmp_path, Catalogue(tmp_path)))
    by_name = {f.name: f for f in figures}
    for path in ("SQLite via the server", "SQLite file written by another process (poll)",
                 "PostgreSQL (NOTIFY)"):  # fmt: skip
        p50, p99 = by_name[f"flush() to SSE, {path}, p50"], by_name[f"flush() to SSE, {path}, p99"]
        assert 0 <= p50.value <= p99.value < 10_000  # every event arrived (else it raises)
        assert p99.target is not None and p99.met is (p99.value <= 50.0)
    for backend in ("SQLite", "PostgreSQL"):
        batch = by_name[f"{backend} 50,000-point batch stored, events on"]
        assert batch.value > 0 and batch.reference is not None and batch.target is not None
        cost = by_name[f"{backend} ingest of 2,000 points, events on"]
        assert cost.value > 0 and cost.reference is not None and cost.reference > 0
        assert cost.reference_name == "events off" and cost.target is not None

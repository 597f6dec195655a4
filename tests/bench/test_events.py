"""The events benchmark at a tiny size, so that it cannot rot: a real server, real streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import events
from bench.fan_out import fan_out, fan_out_figures
from bench.runner import Context
from bench.seed import Catalogue


def test_bench_events_times_flush_to_sse_and_ingest_on_and_off(tmp_path: Path) -> None:
    size = events.Size(flushes=5, points=2_000, repeats=1, parts=("latency", "ingest"),
                       batch_points=5_000, batches=4)  # fmt: skip
    figures = events.measure(size, Context(tmp_path, Catalogue(tmp_path)))
    by_name = {f.name: f for f in figures}
    for path in ("SQLite via the server", "SQLite file written by another process (poll)",
                 "PostgreSQL (NOTIFY)"):  # fmt: skip
        p50, p99 = by_name[f"flush() to SSE, {path}, p50"], by_name[f"flush() to SSE, {path}, p99"]
        assert 0 <= p50.value <= p99.value < 10_000  # every event arrived (else it raises)
        assert p99.target is not None and p99.met is (p99.value <= 50.0)
    for backend in ("SQLite", "PostgreSQL"):
        batch = by_name[f"{backend} 5,000-point batch stored, events on"]
        assert batch.value > 0 and batch.reference is not None and batch.target is not None
        cost = by_name[f"{backend} ingest of 2,000 points, events on"]
        assert cost.value > 0 and cost.reference is not None and cost.reference > 0
        assert cost.reference_name == "events off" and cost.target is not None


def test_bench_events_fan_out_delivers_every_event_to_every_client(tmp_path: Path) -> None:
    got = fan_out(tmp_path, f"sqlite:///{tmp_path / 'f.db'}", clients=50, flushes=5, direct=False)
    # experiment.created, run.started, a run.metrics per flush, run.ended: to each client
    # (fan_out raises if any client missed or repeated one)
    assert (got.clients, got.events) == (50, 8)
    assert len(got.latencies) == 50 * 5 and all(0 <= ms < 30_000 for ms in got.latencies)
    assert 0 < got.idle <= got.held <= got.peak and got.cpu > 0
    by_name = {f.name.split(": ")[-1]: f for f in fan_out_figures("events", "SQLite", got)}
    peak = by_name["server peak RSS"]
    assert peak.target is not None and peak.met is (peak.value < 300)
    assert peak.reference_name == "no clients" and by_name["events each received (all)"].value == 8


def test_the_events_benchmark_refuses_a_part_it_does_not_have(tmp_path: Path) -> None:
    size = events.Size(flushes=1, points=1, repeats=1, parts=("fanout",))
    with pytest.raises(ValueError, match="no part 'fanout'"):
        events.measure(size, Context(tmp_path, Catalogue(tmp_path)))

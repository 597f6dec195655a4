"""Issue 22's ceiling: ``python -m bench scale [--quick|--full]``, one table for every figure.

Each figure is printed beside its target (``bench/targets.py``) and, where issue 22 gives
one, beside its figure from before the work (reference ``before``: a constant, not measured in
this run). ``python -m bench.bench_scale --parts NAME ...`` picks parts; every size field is
an option (``--help``). The parts:

- ``storage`` (:mod:`bench.scale_storage`): bytes a metric point takes on disk, ingest to
  ``flush()``, a 1,000,000-point ``metric_history``; SQLite and PostgreSQL, three series.
- ``runs`` (:mod:`bench.scale_runs`): ``runs`` bulk-seeded runs; ``best_run`` and a
  ``search_runs`` threshold query, the Runs page three ways, MCP ``list_runs`` and
  ``best_run`` beside the SDK's no-op floor. ``--full`` seeds the issue's million (about 20
  minutes a backend on a loaded 2-core machine; ``--seeds DIR`` keeps the SQLite store for
  the next invocation); ``--runs 20000`` skips the million-run seeding on a laptop.
- ``ingest`` (:mod:`bench.scale_ingest`): ``writers`` processes logging at once into one
  PostgreSQL, every point read back.
- ``downsample`` (:mod:`bench.scale_downsample`): a ``points``-point metric cut to a chart's
  points for several step ranges, through the run page's chart request and MCP.

``--backends sqlite`` leaves PostgreSQL out (the ``ingest`` part is PostgreSQL only).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench import scale_downsample, scale_ingest, scale_runs, scale_storage
from bench.figures import Figure
from bench.runner import Benchmark, Context, main_one

NAME = "scale"
PARTS_ALL = ("storage", "runs", "ingest", "downsample")


@dataclass(frozen=True)
class Size:
    """Each part's size: metric points, reads timed, runs seeded, calls timed, writers."""

    points: int  # storage and downsample: points in a series
    repeats: int  # storage and downsample: reads timed per figure
    runs: int  # runs: runs seeded (the 1,000,000 with --full)
    calls: int  # runs: calls timed per figure
    writers: int  # ingest: writer processes at once
    writer_points: int  # ingest: points each writer logs
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    parts: tuple[str, ...] = PARTS_ALL


SIZES = {
    "quick": Size(points=20_000, repeats=2, runs=120, calls=3, writers=2, writer_points=1_000),
    "default": Size(points=1_000_000, repeats=5, runs=20_000, calls=30, writers=8,
                    writer_points=500_000),
    "full": Size(points=1_000_000, repeats=10, runs=1_000_000, calls=100, writers=8,
                 writer_points=2_000_000),
}  # fmt: skip

PARTS: dict[str, Callable[[Size, Context], list[Figure]]] = {
    "storage": lambda s, c: scale_storage.measure(s.points, s.repeats, s.backends, c),
    "runs": lambda s, c: scale_runs.measure(s.runs, s.calls, s.backends, c),
    "ingest": lambda s, c: (scale_ingest.measure(s.writers, s.writer_points, c)
                            if "postgresql" in s.backends else []),
    "downsample": lambda s, c: scale_downsample.measure(s.points, s.repeats, s.backends, c),
}  # fmt: skip


def measure(size: Size, context: Context) -> list[Figure]:
    """The chosen parts, in order."""
    unknown = [p for p in size.parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"no part {', '.join(unknown)}; there are {', '.join(PARTS)}")
    context.notes.append(
        f"{NAME}: {os.cpu_count()} CPUs; parts {', '.join(size.parts)}; 'before' is issue 22's"
        " figure from before the work (storage: SQLite, the constant series; MCP: at 100,000"
        " runs), not measured in this run"
    )
    return [f for part in size.parts for f in PARTS[part](size, context)]


BENCHMARK = Benchmark(NAME, "issue 22: metric storage and history, a million runs, many "
                      "writers, downsampling", SIZES, measure)  # fmt: skip

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))

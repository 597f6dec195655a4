"""The web UI benchmark: ``python bench/bench_ui.py [--runs N] [--calls N] [--db PATH]``.

Seeds a SQLite store with N runs (100,000 by default, the same rows as ``bench_mcp.py``),
then times the Runs page in process through the ASGI app (server time, no network): the
dashboard, its JSON twin, filtered and metric-sorted views, and the detail page of a run with
a 100,000-point metric (downsampled for display). Prints p50/p95 per view and whether the Runs
page meets its 150 ms budget.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mcp import percentile, seed

from chachaml.records.runs import MetricChunk, NewRun
from chachaml.server.app import create_app
from chachaml.store import open_store
from chachaml.store.protocol import Store

BUDGET_MS = 150.0
LONG_RUN = "f" * 32
LONG_POINTS = 100_000


async def add_long_run(store: Store) -> None:
    """One run with a 100,000-point metric."""
    n = LONG_POINTS
    await store.create_run(
        NewRun(
            id=LONG_RUN,
            experiment="exp-0",
            name="long",
            created_by="bench",
            started_at=time.time(),
            heartbeat_timeout=3600.0,
        )
    )
    values = [1.0 / (1 + i) for i in range(n)]
    await store.log_metrics(
        [
            MetricChunk(
                run_id=LONG_RUN,
                key="loss",
                count=n,
                steps=struct.pack(f"<{n}q", *range(n)),
                values=struct.pack(f"<{n}d", *values),
                timestamps=struct.pack(f"<{n}d", *([time.time()] * n)),
                last_value=values[-1],
                last_step=n - 1,
                last_time=time.time(),
                min_value=values[-1],
                max_value=values[0],
            )
        ]
    )
    await store.end_run(LONG_RUN, "completed", None, time.time())


async def measure(url: str, calls: int) -> dict[str, tuple[float, float]]:
    """p50/p95 milliseconds per view."""
    store = await open_store(url)
    try:
        await add_long_run(store)
        app = create_app(store, user="bench")
        views = {
            "runs page": "/runs",
            "runs JSON": "/api/runs",
            "runs, one experiment": "/runs?experiment=exp-7",
            "runs, failed, page 3": "/runs?status=failed&offset=100",
            "runs, my runs": "/runs?mine=1",
            "runs by acc (max)": "/runs?sort=acc&dir=max",
            "runs by name (A-Z)": "/runs?sort=name&dir=min",
            "runs by duration": "/runs?sort=duration&dir=max",
            "run, 100k-point metric": f"/runs/{LONG_RUN}",
        }
        results = {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for label, path in views.items():
                assert (await client.get(path)).status_code == 200, path
                samples = []
                for _ in range(calls):
                    start = time.perf_counter()
                    answer = await client.get(path)
                    samples.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200
                results[label] = (statistics.median(samples), percentile(samples, 95))
        return results
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--db", type=Path, help="store file (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench_ui.db"
        start = time.perf_counter()
        seed(path, args.runs)
        print(f"seeded {args.runs:,} runs in {time.perf_counter() - start:.1f} s")
        results = anyio.run(measure, f"sqlite:///{path}", args.calls)
    print(f"{'view':<26} {'p50 ms':>8} {'p95 ms':>8}")
    for label, (p50, p95) in results.items():
        print(f"{label:<26} {p50:>8.1f} {p95:>8.1f}")
    p95 = results["runs page"][1]
    verdict = "meets" if p95 <= BUDGET_MS else "MISSES"
    print(f"Runs page p95 {p95:.1f} ms {verdict} the {BUDGET_MS:.0f} ms budget")
    return 0 if p95 <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())

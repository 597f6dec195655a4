"""The web UI benchmark: ``python -m bench.ui [--quick|--full] [--runs N] [--calls N]``.

Over a seeded store, times the Runs page in process through the ASGI app (server time, no
network): the page, its JSON twin, filtered and sorted views (by a param: near-unique values
both ways, and three values, whose ties are sorted by start), the page with param columns
over sweeps whose trials nest under their parent, the detail page of a run with a
100,000-point metric, and the run page of a 1,000,000-point metric together with the series
request its chart makes (downsampled to 1,000 points), also zoomed in and polled live. p50
and p95 per view; the Runs page is judged on its p95, the page with columns and nesting and
the 1M-point run page on their p50.
"""

from __future__ import annotations

import math
import statistics
import struct
import sys
import time
from dataclasses import dataclass

import anyio
import httpx

from bench.figures import Figure
from bench.runner import Benchmark, Context, main_one
from bench.targets import TARGETS
from bench.timing import percentile, step
from chachaml.records.runs import MetricChunk, NewRun
from chachaml.server.app import create_app
from chachaml.store import Store, open_store
from chachaml.store.codec import chunk_from_columns

NAME = "ui"
LONG_RUN = "f" * 32
LONG_POINTS = 100_000
VIEWS = {
    "runs page": "/runs",
    "runs JSON": "/api/runs",
    "runs, one experiment": "/runs?experiment=exp-7",
    "runs, failed, page 3": "/runs?status=failed&offset=100",
    "runs, my runs": "/runs?mine=1",
    "runs by accuracy (max)": "/runs?sort=accuracy&dir=max",
    "runs by name (A-Z)": "/runs?sort=name&dir=min",
    "runs by duration": "/runs?sort=duration&dir=max",
    "runs, param columns, nested": "/runs?cols=metrics.accuracy,metrics.loss,params.lr,"
    "params.optimizer,params.batch_size,tags.team",
    "runs, filter expression": "/runs?q=metrics.accuracy+%3E+0.9+and+params.optimizer+%3D+adam",
    "runs by a param": "/runs?sort=params.lr&dir=min&cols=params.lr",
    "runs by a param, largest first": "/runs?sort=params.lr&dir=max&cols=params.lr",
    "runs by a param of 3 values": "/runs?sort=params.optimizer&dir=max&cols=params.optimizer",
    "run, 100k-point metric": f"/runs/{LONG_RUN}",
}
MILLION_RUN = "e" * 32
MILLION_POINTS = 1_000_000
FLUSH_POINTS = 50_000  # the tracking client's default flush size (CHACHAML_FLUSH_POINTS)
SERIES = f"/api/runs/{MILLION_RUN}/metrics/loss"
# a page and the series request its chart makes, timed together (server time of both)
CHARTED = {
    "run page + chart, 1M-point metric": (f"/runs/{MILLION_RUN}", SERIES),
    "chart zoomed to 1% of a 1M-point metric": (SERIES + "?min_step=500000&max_step=509999",),
    "live chart poll of a 1M-point metric": (SERIES + f"?after_step={MILLION_POINTS - 100}",),
}
SWEEPS, TRIALS = 10, 20  # the newest runs: parents whose trials nest under them


@dataclass(frozen=True)
class Size:
    """Runs in the store, timed requests per view."""

    runs: int
    calls: int


SIZES = {
    "quick": Size(runs=1_000, calls=5),
    "default": Size(runs=10_000, calls=30),
    "full": Size(runs=100_000, calls=30),
}


async def add_long_run(store: Store) -> None:
    """One run with a 100,000-point metric, logged as one packed chunk."""
    n, now = LONG_POINTS, time.time()
    await store.create_run(
        NewRun(id=LONG_RUN, experiment="exp-0", name="long", created_by="bench",
               started_at=now, heartbeat_timeout=3600.0)
    )  # fmt: skip
    values = [1.0 / (1 + i) for i in range(n)]
    await store.log_metrics([MetricChunk(
        run_id=LONG_RUN, key="loss", count=n, steps=struct.pack(f"<{n}q", *range(n)),
        values=struct.pack(f"<{n}d", *values), timestamps=struct.pack(f"<{n}d", *([now] * n)),
        last_value=values[-1], last_step=n - 1, last_time=now, min_value=values[-1],
        max_value=values[0])])  # fmt: skip
    await store.end_run(LONG_RUN, "completed", None, time.time())


async def add_million_run(store: Store) -> None:
    """One run with a 1,000,000-point metric, logged in chunks as the tracking client flushes.

    A noisy falling curve with a spike every 99,991 steps: downsampling must keep the spikes.
    """
    now = time.time()
    await store.create_run(
        NewRun(id=MILLION_RUN, experiment="exp-0", name="million", created_by="bench",
               started_at=now, heartbeat_timeout=3600.0)
    )  # fmt: skip
    for start in range(0, MILLION_POINTS, FLUSH_POINTS):
        steps = range(start, start + FLUSH_POINTS)
        values = [1 / (1 + i / 1000) + 0.01 * math.sin(i) + (i % 99_991 == 0) for i in steps]
        times = [now + i / 1000 for i in steps]
        await store.log_metrics([chunk_from_columns(MILLION_RUN, "loss", steps, values, times)])
    await store.end_run(MILLION_RUN, "completed", None, time.time())


async def add_sweeps(store: Store) -> None:
    """Sweeps at the top of the Runs page: each a parent run with its trials as children."""
    now = time.time()
    for s in range(SWEEPS):
        parent = f"5{s:031x}"
        await store.create_run(
            NewRun(id=parent, experiment="sweeps", name=f"sweep-{s}", created_by="bench",
                   started_at=now + s, heartbeat_timeout=3600.0, tags={"team": "bench"})
        )  # fmt: skip
        for t in range(TRIALS):
            trial = f"6{s:015x}{t:016x}"
            await store.create_run(
                NewRun(id=trial, experiment="sweeps", name=f"sweep-{s}-trial-{t}",
                       created_by="bench", started_at=now + s + t / 100, parent_id=parent,
                       heartbeat_timeout=3600.0)
            )  # fmt: skip
            await store.log_params(trial, {"lr": 10 ** -(1 + t % 4), "optimizer": "adam"})
            await store.end_run(trial, "completed", None, now + s + 1)
        await store.end_run(parent, "completed", None, now + s + 2)


async def time_views(url: str, calls: int) -> dict[str, list[float]]:
    """Milliseconds per request, per view."""
    store = await open_store(url)
    try:
        await add_long_run(store)
        await add_million_run(store)
        await add_sweeps(store)
        app = create_app(store, user="bench")
        results = {}
        views = {**{label: (path,) for label, path in VIEWS.items()}, **CHARTED}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for label, paths in views.items():
                for path in paths:
                    if (await client.get(path)).status_code != 200:
                        raise RuntimeError(f"{path} did not answer 200")
                samples = []
                for _ in range(calls):
                    start = time.perf_counter()
                    for path in paths:
                        answer = await client.get(path)
                        if answer.status_code != 200:
                            raise RuntimeError(f"{path} answered {answer.status_code}")
                    samples.append((time.perf_counter() - start) * 1000)
                results[label] = samples
        return results
    finally:
        await store.close()


def measure(size: Size, context: Context) -> list[Figure]:
    """Seed (or copy), add the long run, time every view."""
    db = context.workdir / "ui.db"
    context.catalogue.copy(size.runs, db)
    timings = step(f"{len(VIEWS) + len(CHARTED)} views x {size.calls}",
                   lambda: anyio.run(time_views, f"sqlite:///{db}", size.calls))  # fmt: skip
    figures = []
    for label, samples in timings.items():
        at = "" if label.startswith("run,") or label in CHARTED else f", {size.runs:,} runs"
        p50, p95 = statistics.median(samples), percentile(samples, 95)
        figures.append(Figure(NAME, f"{label} p50{at}", p50, "ms", "lower"))
        if label == "runs, param columns, nested":
            figures[-1] = Figure(NAME, f"{label} p50{at}", p50, "ms", "lower",
                                 TARGETS["Runs page, columns and nesting"])  # fmt: skip
        if label == "run page + chart, 1M-point metric":
            figures[-1] = Figure(NAME, f"{label} p50", p50, "ms", "lower",
                                 TARGETS["Run page, 1M-point metric"])  # fmt: skip
        if label == "runs page":
            figures.append(Figure(NAME, f"{label} p95{at}", p95, "ms", "lower",
                                  TARGETS["Runs page"]))  # fmt: skip
    return figures


BENCHMARK = Benchmark(NAME, "Runs page views and long metrics' run pages, server time", SIZES,
                      measure)  # fmt: skip

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))

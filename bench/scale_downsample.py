"""Issue 22's server-side downsampling, the ``downsample`` part of ``python -m bench scale``.

One metric of ``points`` points (the storage part's float32 loss, logged as a training loop
logs it) on SQLite and on PostgreSQL, then cut to a chart's 1,000 points for several step
ranges: the whole series, its second half, 10% in the middle, a narrow window of 1,000 steps.
What is timed is the real path: the run page's chart request (``GET
/api/runs/{id}/metrics/{key}?min_step=&max_step=``) in process through
``httpx.ASGITransport``, which reads the chunks overlapping the range from the store and
downsamples them, and the MCP ``get_metric_history`` tool (the function the MCP server
registers, without the SDK) over the whole series. Each is checked (the points in range, at
most the points asked for), then timed: p50 of ``calls`` after warm-up.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import anyio
import httpx

from bench.figures import Figure
from bench.postgres import postgres_schema
from bench.postgres import unavailable as no_postgres
from bench.runner import Context
from bench.scale_storage import KEY, float32_loss, log_series
from bench.targets import TARGETS
from bench.timing import percentile, step, time_async
from bench.tracking import make_client
from chachaml.server.app import create_app
from chachaml.server.mcp.metrics import metric_tools
from chachaml.store import open_store

NAME = "scale"
SHOWN = 1000  # the points a chart asks for (the endpoint's default)
MCP_ROWS = 200  # get_metric_history's default


def ranges(points: int) -> dict[str, tuple[int | None, int | None]]:
    """The step ranges timed (steps run ``0..points-1``): label -> (min_step, max_step)."""
    narrow = min(1000, max(1, points // 10))
    return {
        "whole series": (None, None),
        "second half": (points // 2, None),
        "10% in the middle": (points * 45 // 100, points * 55 // 100 - 1),
        f"{narrow:,} steps": (points // 2, points // 2 + narrow - 1),
    }


def query(lo: int | None, hi: int | None) -> str:
    """The chart request's query string for a range."""
    parts = [f"points={SHOWN}"]
    parts += [] if lo is None else [f"min_step={lo}"]
    parts += [] if hi is None else [f"max_step={hi}"]
    return "?" + "&".join(parts)


async def time_ranges(url: str, run_id: str, points: int, calls: int) -> dict[str, list[float]]:
    """Each range's chart request and the MCP tool over the whole series, checked, then timed."""
    store = await open_store(url)
    try:
        timings: dict[str, list[float]] = {}
        transport = httpx.ASGITransport(app=create_app(store, user="bench"))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for label, (lo, hi) in ranges(points).items():
                path = f"/api/runs/{run_id}/metrics/{KEY}{query(lo, hi)}"
                expected = (points if hi is None else hi + 1) - (lo or 0)

                async def get(path: str = path, expected: int = expected) -> None:
                    answer = await client.get(path)
                    body = answer.json()
                    if answer.status_code != 200 or body["in_range"] != expected:
                        raise RuntimeError(f"{path}: {answer.status_code} {str(body)[:300]}")
                    if not 0 < body["shown"] <= SHOWN:
                        raise RuntimeError(f"{path}: {body['shown']} points shown")

                timings[f"chart, {label}"] = await time_async(get, calls)
        (history,) = [t for t in metric_tools(store) if t.__name__ == "get_metric_history"]

        async def mcp() -> None:
            result = await history(run_id, [KEY], MCP_ROWS)
            table = result.structured_content or {}
            if table.get("points") != points or not 0 < len(table.get("steps", [])) <= MCP_ROWS:
                raise RuntimeError(f"get_metric_history: {str(table)[:300]}")

        timings["MCP get_metric_history, whole series"] = await time_async(mcp, calls)
        return timings
    finally:
        await store.close()


@contextmanager
def store_url(backend: str, context: Context) -> Iterator[str]:
    """A fresh store on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{(context.workdir / 'downsample.db').resolve()}"
        return
    with postgres_schema() as (url, _schema):
        yield url


def measure(points: int, calls: int, backends: Sequence[str], context: Context) -> list[Figure]:
    """On each backend: log the series, then time each range's downsampling."""
    values = float32_loss(points)
    figures = []
    for backend in backends:
        if backend == "postgresql" and (reason := no_postgres()) is not None:
            context.notes.append(f"{NAME} downsample: PostgreSQL not measured ({reason})")
            continue
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        with store_url(backend, context) as url:
            client = make_client(url, context.workdir / f"downsample-{backend}-artifacts")
            try:
                run_id, _ = step(f"{label}: log {points:,} points to downsample",
                                 partial(log_series, client, values))  # fmt: skip
            finally:
                client.close()
            timings = step(f"{label}: downsample {len(ranges(points)) + 1} ways x {calls}",
                           partial(anyio.run, time_ranges, url, run_id, points, calls))  # fmt: skip
        target = TARGETS["downsample"] if points >= 1_000_000 else None
        figures += [
            Figure(NAME, f"{label}: downsample {points:,} points, {what} p50",
                   percentile(samples, 50), "ms", "lower", target)
            for what, samples in timings.items()
        ]  # fmt: skip
    context.notes.append(
        f"{NAME} downsample: a chart's request cuts the range to {SHOWN:,} points (each"
        f" bucket's lowest and highest), MCP get_metric_history to {MCP_ROWS} rows; server"
        " time in process, read from the store included"
    )
    return figures

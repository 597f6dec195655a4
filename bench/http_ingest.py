"""The HTTP ingest benchmark: ``python -m bench.http_ingest [--points N] [--batch N]``.

Starts a real ``chachaml serve`` on 127.0.0.1 over a fresh SQLite store and pushes metric
points through ``POST /api/w/runs/{id}/metrics`` with httpx, each request carrying an
``Idempotency-Key`` like the Python client's. Two body formats: ``points`` (the documented
``{"metrics": [{"key", "value", "step", "timestamp"}]}`` list) and ``packed`` (base64 int64/
float64 arrays, what ``CHACHAML_STORE=http://...`` sends). Bodies are encoded before the
clock starts, so the figure is the server's ingest rate; every point is checked as stored.
One client, then several concurrent clients (threads, one run and one connection each).
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from functools import partial

import httpx

from bench.figures import Figure
from bench.processes import chachaml_serve
from bench.runner import Benchmark, Context, main_one
from bench.targets import TARGETS
from bench.timing import step

NAME = "http_ingest"
TOKEN = "bench-http-token"
FORMATS = ("points", "packed")


@dataclass(frozen=True)
class Size:
    """Points per client, points per request, concurrent clients."""

    points: int
    batch: int
    clients: int


SIZES = {
    "quick": Size(points=20_000, batch=5_000, clients=2),
    "default": Size(points=200_000, batch=10_000, clients=4),
    "full": Size(points=500_000, batch=10_000, clients=4),
}


def bodies(fmt: str, points: int, batch: int) -> list[bytes]:
    """The request bodies that log ``points`` points of one metric, ``batch`` per request."""
    out = []
    now = time.time()
    for start in range(0, points, batch):
        steps = range(start, min(start + batch, points))
        if fmt == "points":
            metrics = [{"key": "loss", "value": 1.0 / (s + 1), "step": s, "timestamp": now}
                       for s in steps]  # fmt: skip
            out.append(json.dumps({"metrics": metrics}).encode())
        else:
            n = len(steps)
            arrays = {
                "steps": struct.pack(f"<{n}q", *steps),
                "values": struct.pack(f"<{n}d", *(1.0 / (s + 1) for s in steps)),
                "timestamps": struct.pack(f"<{n}d", *([now] * n)),
            }
            series = {k: base64.b64encode(v).decode() for k, v in arrays.items()}
            out.append(json.dumps({"series": [{"key": "loss", **series}]}).encode())
    return out


def push(url: str, payloads: list[bytes], points: int) -> float:
    """Start a run, send every body, check the run holds ``points`` points; the seconds taken."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        run_id = http.post("/api/w/runs", json={"experiment": "bench-http"}).json()["id"]
        path = f"/api/w/runs/{run_id}/metrics"
        began = time.perf_counter()
        for body in payloads:
            response = http.post(path, content=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            response.raise_for_status()
        took = time.perf_counter() - began
        count = http.get(f"/api/store/v1/runs/{run_id}/metrics").json()["loss"]["count"]
    if count != points:
        raise RuntimeError(f"run {run_id} holds {count} points, not {points}")
    return took


def concurrent(url: str, payloads: list[bytes], points: int, clients: int) -> float:
    """``clients`` threads pushing at once; the aggregate points per second."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            push(url, payloads, points)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    if errors:
        raise errors[0]
    return clients * points / wall


def measure(size: Size, context: Context) -> list[Figure]:
    """Both formats, one client then ``clients`` at once, on one server."""
    figures = []
    store = f"sqlite:///{context.workdir / 'http.db'}"
    with chachaml_serve(context.workdir, store, f"bench:{TOKEN}") as url:
        push(url, bodies("points", 1_000, 1_000), 1_000)  # warm up
        for fmt in FORMATS:
            payloads = bodies(fmt, size.points, size.batch)
            label = f"{fmt}: {size.points:,} points"
            one = size.points / step(
                f"{label}, 1 client", partial(push, url, payloads, size.points)
            )
            many = step(f"{label} each, {size.clients} clients",
                        partial(concurrent, url, payloads, size.points, size.clients))  # fmt: skip
            per = f"{size.batch:,} per request"
            figures += [
                Figure(NAME, f"{fmt}, 1 client, {per}", one, "points/s", "higher",
                       TARGETS["HTTP ingest"]),
                Figure(NAME, f"{fmt}, {size.clients} clients, {per}", many, "points/s", "higher"),
            ]  # fmt: skip
    return figures


BENCHMARK = Benchmark(NAME, "metric points/s through the HTTP write API", SIZES, measure)

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))

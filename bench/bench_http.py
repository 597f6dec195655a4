"""The HTTP ingest benchmark: ``python bench/bench_http.py [--points N] [--batch N]``.

Starts a real ``chachaml serve`` on 127.0.0.1 over a fresh SQLite store and pushes metric
points through ``POST /api/w/runs/{id}/metrics`` with httpx, each request carrying an
``Idempotency-Key`` like the Python client's. Two body formats: ``points`` (the documented
``{"metrics": [{"key", "value", "step", "timestamp"}]}`` list) and ``packed`` (base64 int64/
float64 arrays, what ``CHACHAML_STORE=http://...`` sends). Bodies are encoded before the
clock starts, so the figure is the server's ingest rate; every point is checked as stored.
One client, then 4 concurrent clients (threads, one run and one connection each). Target:
>= 200,000 points/s from one client.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

TARGET = 200_000
TOKEN = "bench-http-token"
FORMATS = ("points", "packed")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(root: Path, store: str | None = None, tokens: str = f"bench:{TOKEN}") -> Iterator[str]:
    """``chachaml serve`` over ``store`` (a fresh SQLite file by default); yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    env["CHACHAML_TOKENS"] = tokens
    store = store or f"sqlite:///{root / 'bench.db'}"
    cmd = [sys.executable, "-m", "chachaml.cli", "serve", "--port", str(port),
           "--store", store, "--artifacts", str(root / "artifacts")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chachaml serve did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
        count = http.get(f"/api/store/runs/{run_id}/metrics").json()["loss"]["count"]
    if count != points:
        raise RuntimeError(f"run {run_id} holds {count} points, not {points}")
    return took


def concurrent(url: str, payloads: list[bytes], points: int, clients: int) -> float:
    """``clients`` threads pushing at once; the aggregate points per second."""
    took: list[float] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            took.append(push(url, payloads, points))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=500_000, help="points per client")
    parser.add_argument("--batch", type=int, default=10_000, help="points per request")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp)) as url:
        push(url, bodies("points", 1_000, 1_000), 1_000)  # warm up
        for fmt in FORMATS:
            payloads = bodies(fmt, args.points, args.batch)
            one = args.points / push(url, payloads, args.points)
            many = concurrent(url, payloads, args.points, args.clients)
            rows.append((fmt, one, many))
    print(f"{args.points:,} points per client, {args.batch:,} per request, SQLite, loopback")
    print(f"{'format':8} {'1 client':>14} {f'{args.clients} clients':>14}  target (1 client)")
    ok = True
    for fmt, one, many in rows:
        met = one >= TARGET
        ok = ok and met
        verdict = "met" if met else "MISSED"
        print(f"{fmt:8} {one:>12,.0f}/s {many:>12,.0f}/s  >= {TARGET:,}/s {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

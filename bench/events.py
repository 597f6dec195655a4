"""The events benchmark: ``python -m bench.events [--quick|--full] [--parts latency ingest
fan-out] [--flushes N] [--points N] [--clients N] [--fanned N]``.

Latency: a real ``chachaml serve`` streams ``GET /api/events?type=run.metrics`` to an SSE
client (a thread of this process); training code logs one point and calls ``flush()``, and
the figure is the time from ``flush()`` returning to the client holding that point's
``run.metrics`` event (zero when the event came first), p50 and p99 over ``flushes`` flushes.
Measured with the training code talking to the server (SQLite: the server's own commit wakes
its reader) and straight to PostgreSQL (the server hears NOTIFY); the one poll-bound path,
another process writing to the server's SQLite file, is measured too.

Ingest: ``log_metric`` points to ``flush()`` on SQLite (and PostgreSQL when available) with
the outbox written, against the same with the store keeping no events, alternated over
``repeats`` fresh stores each: the cost of one ``run.metrics`` event per flushed batch.

Fan-out: one server holding ``clients`` SSE clients while a run flushes ``fanned`` times
(:mod:`bench.fan_out`): the server's memory, and every client receiving every event.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from bench import postgres
from bench.fan_out import fan_out, fan_out_figures
from bench.figures import Figure
from bench.processes import chachaml_serve
from bench.runner import Benchmark, Context, main_one
from bench.targets import TARGETS
from bench.timing import percentile, step
from bench.tracking import log_points, make_client
from chachaml.client.client import Client
from chachaml.records.runs import NewRun
from chachaml.settings import Settings
from chachaml.store import open_store
from chachaml.store.codec import chunk_from_columns

NAME = "events"


PARTS_NAMES = ("latency", "ingest", "fan-out")


@dataclass(frozen=True)
class Size:
    """Flushes timed per path, points per ingest run, ingest runs per mode, the fan-out's size."""

    flushes: int
    points: int
    repeats: int
    clients: int = 1_000  # SSE clients held at once by one server
    fanned: int = 100  # flushes while they listen
    parts: tuple[str, ...] = tuple(PARTS_NAMES)  # which figures to measure
    batch_points: int = 50_000  # the client's flush size (CHACHAML_FLUSH_POINTS)
    batches: int = 40  # batches timed per repeat, half with events, half without


SIZES = {
    "quick": Size(flushes=30, points=100_000, repeats=1, clients=1_000, fanned=20),
    "default": Size(flushes=300, points=1_000_000, repeats=3, clients=1_000, fanned=100),
    "full": Size(flushes=1_000, points=1_000_000, repeats=5, clients=1_000, fanned=300),
}


class Listener:
    """An SSE client in a thread: when each step's ``run.metrics`` event arrived."""

    def __init__(self, url: str) -> None:
        self.arrived: dict[int, float] = {}
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._url = url + "/api/events?type=run.metrics"
        self._stop = False
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the event stream did not open")

    def _listen(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(30.0, read=None)) as http,
            http.stream("GET", self._url) as response,
        ):
            self._ready.set()
            for line in response.iter_lines():
                if self._stop:
                    return
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    at = time.perf_counter()
                    with self._changed:
                        for point in event["data"]["metrics"].values():
                            self.arrived.setdefault(point["step"], at)
                        self._changed.notify_all()

    def wait(self, step_: int, timeout: float = 10.0) -> float:
        """When the event holding ``step_`` arrived (perf_counter seconds)."""
        with self._changed:
            if not self._changed.wait_for(lambda: step_ in self.arrived, timeout):
                raise RuntimeError(f"no run.metrics event for step {step_} within {timeout} s")
            return self.arrived[step_]

    def close(self) -> None:
        """Stop reading (the thread ends with the next line the server sends)."""
        self._stop = True


def flush_latencies(client: Client, listener: Listener, flushes: int) -> list[float]:
    """Milliseconds from each ``flush()`` returning to its event arriving."""
    latencies = []
    pauses = random.Random(0)
    with client.run(experiment="bench-events"):
        for i in range(flushes):
            # a training step's worth of time, so flushes do not fall in step with a poll
            time.sleep(pauses.uniform(0, 0.05))
            client.log_metric("loss", 1.0 / (i + 1), step=i)
            client.flush()
            flushed = time.perf_counter()
            latencies.append(max(0.0, listener.wait(i) - flushed) * 1000)
    return latencies


def latency(server: str, training_store: str, artifacts: Path, flushes: int) -> list[float]:
    """Latencies with the training code writing to ``training_store``."""
    listener = Listener(server)
    client = make_client(training_store, artifacts)
    try:
        flush_latencies(client, listener, min(10, flushes))  # warm up both ends
        return flush_latencies(client, listener, flushes)
    finally:
        client.close()
        listener.close()


def ingest(store: str, artifacts: Path, points: int, keep_events: bool) -> float:
    """Points/s from the first ``log_metric`` to ``flush()``, with or without the outbox."""
    client = Client(store=store, artifacts=str(artifacts), settings=Settings(user="bench"))
    try:
        client.runtime.store.database.keep_events = keep_events  # type: ignore[attr-defined]
        return log_points(client, points).points_per_s
    finally:
        client.close()


def batch_cost(url: str, repeats: int, points: int) -> tuple[float, float]:
    """Median ms of one flushed batch (``log_metrics``) with events and without, interleaved.

    Batch by batch on one store, interleaved, so the machine's load moves both alike: the
    outbox's cost per batch, which the end-to-end ingest figures show only through noise.
    """

    async def go() -> tuple[float, float]:
        store = await open_store(url)
        try:
            run = NewRun(
                id=uuid.uuid4().hex,
                experiment="bench-batches",
                name=None,
                created_by="bench",
                started_at=time.time(),
                heartbeat_timeout=600,
            )
            await store.create_run(run)  # fmt: skip
            times: dict[bool, list[float]] = {True: [], False: []}
            first = 0
            # in a shuffled order: every few batches one costs several times the others
            # (the WAL checkpoint, new pages), and a fixed pattern could put them all on one side
            order = [True, False] * repeats
            random.Random(0).shuffle(order)
            for keep in order:
                store.database.keep_events = keep  # type: ignore[attr-defined]
                steps = range(first, first + points)
                first += points
                chunk = chunk_from_columns(run.id, "loss", steps, [0.5] * points,
                                           [time.time()] * points)  # fmt: skip
                began = time.perf_counter()
                await store.log_metrics([chunk])
                times[keep].append((time.perf_counter() - began) * 1000)
            return statistics.median(times[True]), statistics.median(times[False])
        finally:
            await store.close()

    return anyio.run(go)


def ingest_pair(fresh: Callable[[int], str], workdir: Path, size: Size) -> tuple[float, float]:
    """Median points/s with events and without, in alternating order, each on a fresh store."""
    on: list[float] = []
    off: list[float] = []
    ingest(fresh(-1), workdir / "ingest-artifacts", size.points, True)  # warm up, not counted
    for i in range(size.repeats):
        order = ((True, on), (False, off)) if i % 2 == 0 else ((False, off), (True, on))
        for keep, out in order:
            url = fresh(2 * i + int(keep))
            out.append(ingest(url, workdir / "ingest-artifacts", size.points, keep))
    return statistics.median(on), statistics.median(off)


def _latency_figures(label: str, samples: list[float]) -> list[Figure]:
    target = TARGETS["event latency p99"]
    return [
        Figure(NAME, f"flush() to SSE, {label}, p50", percentile(samples, 50), "ms", "lower"),
        Figure(NAME, f"flush() to SSE, {label}, p99", percentile(samples, 99), "ms", "lower",
               target),
    ]  # fmt: skip


def _latency(size: Size, context: Context) -> list[Figure]:
    work = context.workdir
    figures: list[Figure] = []
    lite = f"sqlite:///{(work / 'events.db').resolve()}"
    with chachaml_serve(work, lite) as server:
        via_server = step(f"SQLite, via the server: {size.flushes} flushes",
                          lambda: latency(server, server, work / "a", size.flushes))  # fmt: skip
        direct = step(f"SQLite, another process on the file: {size.flushes} flushes",
                      lambda: latency(server, lite, work / "a", size.flushes))  # fmt: skip
    figures += _latency_figures("SQLite via the server", via_server)
    figures += _latency_figures("SQLite file written by another process (poll)", direct)
    if postgres.unavailable() is None:
        with postgres.postgres_schema() as (url, _), chachaml_serve(work, url) as server:
            pg = step(f"PostgreSQL, training code on the database: {size.flushes} flushes",
                      lambda: latency(server, url, work / "b", size.flushes))  # fmt: skip
        figures += _latency_figures("PostgreSQL (NOTIFY)", pg)
    else:
        context.notes.append(f"events: PostgreSQL not measured ({postgres.unavailable()})")
    return figures


def _ingest(size: Size, context: Context) -> list[Figure]:
    work = context.workdir
    figures: list[Figure] = []

    def sqlite_file(i: int) -> str:
        return f"sqlite:///{(work / f'ingest-{i}.db').resolve()}"

    batches, per = size.batches * size.repeats, size.batch_points
    on, off = step(f"SQLite, {batches} batches of {per:,} points, events on and off",
                   lambda: batch_cost(sqlite_file(-2), batches, per))  # fmt: skip
    batch_target = TARGETS["events batch cost"]
    figures.append(Figure(NAME, f"SQLite {per:,}-point batch stored, events on", on,
                          "ms", "lower", batch_target, off, "events off"))  # fmt: skip
    on, off = step(f"SQLite ingest, events on and off: {size.points:,} points x{size.repeats}",
                   lambda: ingest_pair(sqlite_file, work, size))  # fmt: skip
    cost = TARGETS["events ingest cost"]
    figures.append(Figure(NAME, f"SQLite ingest of {size.points:,} points, events on", on,
                          "points/s", "higher", cost, off, "events off"))  # fmt: skip
    if postgres.unavailable() is None:
        with postgres.postgres_schema() as (url, _):
            bon, boff = step(f"PostgreSQL, {batches} batches, events on and off",
                             lambda: batch_cost(url, batches, per))  # fmt: skip
            on, off = step(f"PostgreSQL ingest, events on and off: {size.points:,} points",
                           lambda: ingest_pair(lambda _i: url, work, size))  # fmt: skip
        figures.append(Figure(NAME, f"PostgreSQL {per:,}-point batch stored, events on",
                              bon, "ms", "lower", TARGETS["events batch cost"], boff,
                              "events off"))  # fmt: skip
        figures.append(Figure(NAME, f"PostgreSQL ingest of {size.points:,} points, events on",
                              on, "points/s", "higher", cost, off, "events off"))  # fmt: skip
    return figures


def _fan_out(size: Size, context: Context) -> list[Figure]:
    work = context.workdir
    what = f"{size.clients:,} SSE clients, {size.fanned} flushes"
    lite = f"sqlite:///{(work / 'fan-out.db').resolve()}"
    got = step(f"SQLite, {what} through the server",
               lambda: fan_out(work, lite, size.clients, size.fanned, False))  # fmt: skip
    figures = fan_out_figures(NAME, "SQLite, writes through the server", got)
    if postgres.unavailable() is None:
        with postgres.postgres_schema() as (url, _):
            got = step(f"PostgreSQL, {what} straight to the database",
                       lambda: fan_out(work, url, size.clients, size.fanned, True))  # fmt: skip
        figures += fan_out_figures(NAME, "PostgreSQL, writes to the database (NOTIFY)", got)
    return figures


PARTS = dict(zip(PARTS_NAMES, (_latency, _ingest, _fan_out), strict=True))


def measure(size: Size, context: Context) -> list[Figure]:
    """The chosen parts: latency over SQLite and PostgreSQL, ingest with events on and off,
    and one server holding many SSE clients."""
    unknown = sorted(set(size.parts) - set(PARTS))
    if unknown:
        raise ValueError(f"no part {unknown[0]!r} of the events benchmark; there are {list(PARTS)}")
    return [f for name, part in PARTS.items() if name in size.parts for f in part(size, context)]


BENCHMARK = Benchmark(NAME, "flush() to SSE latency, the outbox's ingest cost, SSE fan-out",
                      SIZES, measure)  # fmt: skip

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))

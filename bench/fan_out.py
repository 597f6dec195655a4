"""One ``chachaml serve`` holding many SSE clients while a run logs: memory, and every delivery.

The clients are another process (:mod:`bench.sse_clients`), all following ``/api/events``
from the same event id; a run then flushes one point at a time, a tenth of a second apart,
through the server (SQLite: its own commit wakes the feed) or straight to the database
(PostgreSQL: the server hears NOTIFY). Every client must receive every event of the outbox
from that id on, in order, once: else the measurement raises. The figures are the server's
resident memory (idle, with every client connected, its peak) and the time from each
``flush()`` being called to each client holding that point's event, over every client, and
the server's CPU time per message sent.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio

from bench.figures import Figure
from bench.processes import child_env, module_command, serve_process
from bench.targets import TARGETS
from bench.timing import percentile
from bench.tracking import make_client
from chachaml.records.events import Event
from chachaml.store import open_store
from chachaml.tools.events import PAGE


@dataclass(frozen=True)
class FanOut:
    """One server holding many SSE clients while a run logs: its memory, and what arrived."""

    clients: int
    events: int  # events each client received (all of them: else ``fan_out`` raises)
    idle: int  # the server's RSS before any client, bytes
    held: int  # its RSS with every client connected
    peak: int  # its peak RSS (VmHWM) by the end
    cpu: float  # server CPU seconds from the first flush to the last client done
    latencies: list[float]  # ms from flush() called to a client holding the event, all pairs


async def _head(url: str) -> int:
    """The newest event id of the store at ``url``."""
    store = await open_store(url)
    try:
        return await store.last_event_id()
    finally:
        await store.close()


async def _events_after(url: str, after: int) -> list[Event]:
    """Every event of the store at ``url`` after ``after``."""
    store = await open_store(url)
    try:
        events: list[Event] = []
        while page := await store.read_events(after, PAGE):
            events += page
            after = page[-1].seq
        return events
    finally:
        await store.close()


def _paced_flushes(training_store: str, artifacts: Path, flushes: int) -> dict[int, float]:
    """Log a point and flush, a tenth of a second apart: when each step's flush was called."""
    client = make_client(training_store, artifacts)
    pauses = random.Random(1)
    flushed: dict[int, float] = {}
    try:
        with client.run(experiment="bench-fan-out"):
            for i in range(flushes):
                time.sleep(pauses.uniform(0.05, 0.15))
                client.log_metric("loss", 1.0 / (i + 1), step=i)
                # wall clock: the clients are another process. From the call, not the return:
                # through the server, every client often has the event before flush() returns
                flushed[i] = time.time()
                client.flush()
    finally:
        client.close()
    return flushed


def fan_out(work: Path, store: str, clients: int, flushes: int, direct: bool) -> FanOut:
    """``clients`` SSE clients (one process, :mod:`bench.sse_clients`) on one ``chachaml
    serve`` over ``store`` while a run flushes ``flushes`` times, through the server or, with
    ``direct``, straight to the database. Raises unless every client got every event."""
    out = work / f"fan-out-{uuid.uuid4().hex[:8]}.json"
    after = anyio.run(_head, store)
    with serve_process(work, store) as server:
        idle, _ = server.memory()
        cmd = module_command("bench.sse_clients", server.url, "--clients", str(clients),
                             "--after", str(after), "--out", str(out),
                             "--timeout", str(120 + flushes))  # fmt: skip
        proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            said = proc.stdout.readline().strip()  # the clients time out by themselves
            if said != "ready":
                raise RuntimeError(f"the SSE clients did not all connect: {said or proc.wait()}")
            held, _ = server.memory()
            began = server.cpu()
            flushed = _paced_flushes(store if direct else server.url, work / "fan-out", flushes)
            proc.wait(timeout=180 + flushes)
            _, peak = server.memory()
            cpu = server.cpu() - began
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    got = json.loads(out.read_text())
    expected = anyio.run(_events_after, store, after)
    ids = [e.seq for e in expected]
    wrong = [r for r in got["received"] if [i for i, _ in r] != ids]
    if got["failures"] or wrong or len(got["received"]) != clients:
        raise RuntimeError(f"{len(got['failures'])} clients failed ({got['failures'][:3]}),"
                           f" {len(wrong)} of {clients} missed or repeated events")  # fmt: skip
    steps = {e.seq: p["step"] for e in expected if e.type == "run.metrics"
             for p in e.data["metrics"].values()}  # fmt: skip
    latencies = [max(0.0, at - flushed[steps[i]]) * 1000
                 for r in got["received"] for i, at in r if i in steps]  # fmt: skip
    return FanOut(clients, len(ids), idle, held, peak, cpu, latencies)


def fan_out_figures(benchmark: str, label: str, f: FanOut) -> list[Figure]:
    """The figures of one fan-out, named after ``label`` (the store and the writer's path)."""
    what = f"{f.clients:,} SSE clients, {label}"
    mb = 1024 * 1024
    sent = f.clients * f.events
    return [
        Figure(benchmark, f"{what}: server peak RSS", f.peak / mb, "MB", "lower",
               TARGETS["SSE clients memory"], f.idle / mb, "no clients"),
        Figure(benchmark, f"{what}: server RSS, all connected", f.held / mb, "MB", "lower"),
        Figure(benchmark, f"{what}: events each received (all)", f.events, "events", "higher"),
        Figure(benchmark, f"{what}: flush() to every client, p50", percentile(f.latencies, 50),
               "ms", "lower"),
        Figure(benchmark, f"{what}: flush() to every client, p99", percentile(f.latencies, 99),
               "ms", "lower"),
        Figure(benchmark, f"{what}: server CPU per message sent", f.cpu / sent * 1e6, "µs",
               "lower"),
    ]  # fmt: skip

"""Many writers on one PostgreSQL, the ``ingest`` part of ``python -m bench scale``.

``writers`` processes, each a training loop with its own client and run, log ``points`` points
of one metric at once (they wait at a start line, connected, until every one is ready); the
figure is every point over the time from the first ``log_metric`` until the last ``flush()``
returned. Afterwards each run's history is read back: exactly steps ``0..points-1``, each once,
or the benchmark fails (a lost or duplicated point is a bug, not a slower figure). Issue 22:
8 processes at once >= 2,000,000 points/s in total. The same writers' single-process rate on
the same database is the reference, so a loaded machine shows in both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.figures import Figure
from bench.postgres import postgres_schema
from bench.postgres import unavailable as no_postgres
from bench.processes import child_env
from bench.runner import Context
from bench.targets import TARGETS
from bench.timing import step
from chachaml.client.client import Client
from chachaml.settings import Settings

NAME = "scale"
TARGET = TARGETS["PostgreSQL ingest, many writers"]


# One writer: connect and open its run, say "ready", wait for the start line, log, flush,
# then print its run id, its monotonic start and end (CLOCK_MONOTONIC: one clock for every
# process of the machine) and the CPU seconds it used meanwhile. "loop" logs as a training
# loop does (``log_metric`` per point); "packed" hands the store chunks of 50,000 points
# packed before the start line: the PostgreSQL write path alone, without the Python loop.
WRITER = textwrap.dedent(
    """
    import dataclasses, json, os, sys, time, uuid
    import anyio
    from chachaml.client.client import Client
    from chachaml.settings import Settings
    from chachaml.store.codec import chunk_from_columns
    from chachaml.tools.metrics import log_metrics
    store, artifacts, points, go, mode = sys.argv[1:6]
    points = int(points)
    client = Client(store=store, artifacts=artifacts, settings=Settings(user="bench"))
    log_metric = client.log_metric
    with client.run(experiment="bench-scale-ingest") as run:
        if mode == "packed":
            now, size = time.time(), 50_000
            spans = [(i, min(i + size, points) - i) for i in range(0, points, size)]
            chunks = [chunk_from_columns(run.id, "loss", range(i, i + n), [0.5] * n, [now] * n)
                      for i, n in spans]
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.001)
        start, cpu = time.perf_counter(), time.process_time()
        if mode == "packed":
            for chunk in chunks:
                batch = [dataclasses.replace(chunk, batch=uuid.uuid4().hex)]
                client.op(log_metrics, batch)
        else:
            for _ in range(points):
                log_metric("loss", 0.5)
            client.flush()
        end, cpu = time.perf_counter(), time.process_time() - cpu
    client.close()
    print(json.dumps({"run": run.id, "start": start, "end": end, "cpu": cpu}), flush=True)
    """
)


@dataclass(frozen=True)
class Written:
    """What one writer process reported."""

    run_id: str
    start: float
    end: float
    cpu: float  # the writer's CPU seconds from the start line to its flush


def write_at_once(
    store: str, workdir: Path, writers: int, points: int, mode: str = "loop"
) -> list[Written]:
    """Start ``writers`` processes, release them together, return what each reported."""
    go = workdir / f"go-{mode}-{writers}"
    cmd = [sys.executable, "-c", WRITER, store, str(workdir / "artifacts"), str(points), str(go),
           mode]  # fmt: skip
    procs = [
        subprocess.Popen(
            cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(writers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a writer did not start: {proc.communicate()[1][-2000:]}")
        go.touch()
        written = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"a writer failed: {err[-2000:]}")
            report = json.loads(out.strip().splitlines()[-1])
            written.append(Written(report["run"], report["start"], report["end"], report["cpu"]))
        return written
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def check_exact(client: Client, written: list[Written], points: int) -> None:
    """Raise unless every run holds exactly steps ``0..points-1``, each once."""
    for w in written:
        steps = list(client.metric_history(w.run_id, "loss").steps)
        if len(steps) != points or sorted(steps) != list(range(points)):
            raise RuntimeError(
                f"run {w.run_id}: logged steps 0..{points - 1} but the store holds"
                f" {len(steps)} points, {len(set(steps))} distinct steps"
            )


def rate(written: list[Written], points: int) -> float:
    """Every point over first start to last end."""
    span = max(w.end for w in written) - min(w.start for w in written)
    return len(written) * points / span


def measure(writers: int, points: int, context: Context) -> list[Figure]:
    """``writers`` processes at once beside one alone, logging and handing packed chunks."""
    if (reason := no_postgres()) is not None:
        context.notes.append(f"{NAME} ingest: not measured ({reason})")
        return []
    with postgres_schema() as (url, _schema):
        client = Client(store=url, artifacts=str(context.workdir / "artifacts"),
                        settings=Settings(user="bench"))  # fmt: skip
        try:
            runs: dict[tuple[str, int], list[Written]] = {}
            for mode in ("loop", "packed"):
                for n in (1, writers):
                    runs[mode, n] = step(
                        f"PostgreSQL, {mode}: {n} writer(s), {points:,} points each",
                        partial(write_at_once, url, context.workdir, n, points, mode),
                    )
            step("reading every point back", lambda: check_exact(
                client, [w for ws in runs.values() for w in ws], points))  # fmt: skip
        finally:
            client.close()
    many = runs["loop", writers]
    total = writers * points
    cpu = sum(w.cpu for w in many)
    context.notes.append(
        f"{NAME} ingest: every step of every writer read back once; the {writers} logging"
        f" writers used {cpu:.1f} CPU s in all ({total / cpu:,.0f} points per writer CPU"
        f" second, {len(os.sched_getaffinity(0))} CPUs here shared with PostgreSQL)"
    )
    return [
        Figure(NAME, f"PostgreSQL: ingest, {writers} writer processes, {total:,} points",
               rate(many, points), "points/s", "higher", TARGET,
               rate(runs["loop", 1], points), "1 writer"),
        Figure(NAME, f"PostgreSQL: write path alone (packed chunks), {writers} writers",
               rate(runs["packed", writers], points), "points/s", "higher", None,
               rate(runs["packed", 1], points), "1 writer"),
    ]  # fmt: skip

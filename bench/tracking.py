"""The tracking benchmark: ``python -m bench.tracking [--quick|--full] [--query-sizes N ...]``.

chachaml's ``log_metric`` caller cost, ingest to ``flush()``, runs/s, ``best_run`` and
``search_runs`` over seeded stores, and the peak RSS of a process logging many points; each
beside MLflow on SQLite (:mod:`bench.mlflow_tracking`) when ``mlflow`` is importable (the
``bench`` extra). Every chachaml figure goes through the public ``Client``.
"""

from __future__ import annotations

import importlib.util
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.figures import Figure
from bench.processes import child_env, module_command
from bench.runner import Benchmark, Context, main_one
from bench.seed import Leaderboard, run_values
from bench.targets import TARGETS, query_target
from bench.timing import median_ms, peak_rss_mb, step
from chachaml.client.client import Client
from chachaml.settings import Settings

NAME = "tracking"
API_EXPERIMENT = "bench-api"
THRESHOLD = 0.9
SEARCH_LIMIT = 20


@dataclass(frozen=True)
class Size:
    """How much each part does; MLflow's parts stop at a size or a time budget."""

    log_points: int
    log_repeats: int
    api_runs: int
    query_sizes: tuple[int, ...]
    query_repeats: int
    rss_points: int
    mlflow_calls: int
    mlflow_ingest_points: int
    mlflow_ingest_budget_s: float
    mlflow_runs_budget_s: float
    mlflow_query_runs: int
    mlflow_seed_budget_s: float


SIZES = {
    "quick": Size(100_000, 1, 100, (1_000,), 10, 1_000_000, 50, 20_000, 10.0, 5.0, 500, 15.0),
    "default": Size(
        1_000_000, 3, 1_000, (10_000,), 50, 10_000_000, 300, 1_000_000, 30.0, 10.0, 10_000, 30.0
    ),
    "full": Size(
        1_000_000, 3, 1_000, (10_000, 100_000), 50, 10_000_000, 300, 1_000_000, 240.0, 20.0,
        10_000, 120.0,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class LoggingResult:
    """One run of ``points`` ``log_metric`` calls followed by ``flush()``."""

    points: int
    caller_us: float  # loop time / points, flusher running
    points_per_s: float  # first call until flush() returned


@dataclass(frozen=True)
class QueryResult:
    """Median latencies of ``best_run`` and a ``search_runs`` threshold query."""

    runs: int
    best_run_ms: float
    search_runs_ms: float


@dataclass(frozen=True)
class RssResult:
    """Peak resident memory of a fresh process that logged ``points`` points."""

    points: int
    seconds: float
    peak_rss_mb: float


def make_client(store: str, artifacts: Path) -> Client:
    """A client on ``store`` with default settings."""
    return Client(store=store, artifacts=str(artifacts), settings=Settings(user="bench"))


@contextmanager
def opened(db: Path) -> Iterator[Client]:
    """A client on the SQLite file ``db`` (artifacts beside it), closed afterwards."""
    client = make_client(f"sqlite:///{db.resolve()}", db.with_suffix(".artifacts").resolve())
    try:
        yield client
    finally:
        client.close()


def log_points(client: Client, points: int) -> LoggingResult:
    """Log ``points`` points of one metric in one run, as a training loop would.

    The call is made like ``ml.log_metric(...)``: an attribute looked up on a namespace
    holding the client's bound method. The background flusher runs as it normally does.
    """
    ml = SimpleNamespace(log_metric=client.log_metric)
    with client.run(experiment="bench-logging", name=f"{points}-points") as run:
        start = time.perf_counter()
        for _ in range(points):
            ml.log_metric("loss", 0.5)
        looped = time.perf_counter()
        client.flush()
        stored_at = time.perf_counter()
        stored = client.get_run(run.id).metric_summaries["loss"].count
    if stored != points:
        raise RuntimeError(f"logged {points} points but the store holds {stored}")
    return LoggingResult(points, (looped - start) / points * 1e6, points / (stored_at - start))


def bench_logging(workdir: Path, points: int, repeats: int) -> LoggingResult:
    """The median of ``repeats`` logging runs, each in its own fresh store."""
    results = []
    for i in range(repeats):
        with opened(workdir / f"logging-{i}.db") as client:
            results.append(log_points(client, points))
    return LoggingResult(
        points=points,
        caller_us=statistics.median(r.caller_us for r in results),
        points_per_s=statistics.median(r.points_per_s for r in results),
    )


def create_runs(client: Client, count: int, board: Leaderboard) -> float:
    """Create ``count`` runs with 5 params and 3 metrics each; returns runs per second."""
    rng = random.Random(-1)
    values = [run_values(rng) for _ in range(count)]
    ids = []
    start = time.perf_counter()
    for i, v in enumerate(values):
        with client.run(experiment=API_EXPERIMENT, name=f"api-{i}") as run:
            client.log_params(v.params)
            client.log_metrics(v.metrics)
        ids.append(run.id)
    elapsed = time.perf_counter() - start
    for run_id, v in zip(ids, values, strict=True):
        board.add(run_id, v.metrics["accuracy"])
    return count / elapsed


def time_queries(client: Client, board: Leaderboard, repeats: int) -> QueryResult:
    """Check ``best_run`` and ``search_runs`` over every run against the board, then time them."""
    expected = board.top(SEARCH_LIMIT)
    best = client.best_run("accuracy")
    if best is None or best.run.id != expected[0]:
        found = None if best is None else best.run.id
        raise RuntimeError(f"best_run found {found}, the best seeded run is {expected[0]}")
    if best.value != board.accuracy[expected[0]]:
        raise RuntimeError(f"best_run reports {best.value}, seeded {board.accuracy[expected[0]]}")
    above = [r for r in expected if board.accuracy[r] > THRESHOLD]

    def search() -> list[str]:
        return [r.id for r in client.search_runs("accuracy", ">", THRESHOLD, limit=SEARCH_LIMIT)]

    if search() != above:
        raise RuntimeError("search_runs did not return the best runs above the threshold")
    return QueryResult(
        runs=len(board),
        best_run_ms=median_ms(lambda: client.best_run("accuracy"), repeats),
        search_runs_ms=median_ms(search, repeats),
    )


@dataclass(frozen=True)
class RunsAndQueries:
    """Run creation rate and the query latencies at each store size."""

    runs_per_s: float
    queries: list[QueryResult]


def bench_runs_and_queries(
    context: Context, api_runs: int, sizes: tuple[int, ...], repeats: int
) -> RunsAndQueries:
    """At each size, a copy of the seeded store; in the first, ``api_runs`` runs are made
    through the API (timed), so that its queries read both kinds of run."""
    runs_per_s = 0.0
    queries = []
    for n, size in enumerate(sizes):
        db = context.workdir / f"queries-{size}.db"
        board = context.catalogue.copy(size, db)
        with opened(db) as client:
            if n == 0:
                runs_per_s = create_runs(client, api_runs, board)
            queries.append(time_queries(client, board, repeats))
    return RunsAndQueries(runs_per_s, queries)


def rss_child(points: int, workdir: Path) -> RssResult:
    """In a fresh process: log ``points`` points in one run, flush, report peak RSS."""
    start = time.perf_counter()
    with opened(workdir / "rss.db") as client:
        log_points(client, points)
    return RssResult(points=points, seconds=time.perf_counter() - start, peak_rss_mb=peak_rss_mb())


def bench_rss(points: int) -> RssResult:
    """Run :func:`rss_child` in a subprocess (so nothing else counts towards its memory)."""
    with tempfile.TemporaryDirectory(prefix="chachaml-rss-") as tmp:
        cmd = module_command("bench.tracking", "--rss-child", str(points), tmp)
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if out.returncode != 0:
        raise RuntimeError(f"the logging process failed:\n{out.stderr}")
    return RssResult(**json.loads(out.stdout))


def has_mlflow() -> bool:
    """Whether MLflow can be measured in this interpreter (``pip install -e .[bench]``)."""
    return importlib.util.find_spec("mlflow") is not None


def measure(size: Size, context: Context) -> list[Figure]:
    """chachaml's figures, then MLflow's references when MLflow is importable."""
    log = step(
        f"log_metric x {size.log_points:,}, then flush (x{size.log_repeats})",
        lambda: bench_logging(context.workdir, size.log_points, size.log_repeats),
    )
    runs = step(
        f"{size.api_runs:,} runs, then queries at {', '.join(map(str, size.query_sizes))} runs",
        lambda: bench_runs_and_queries(
            context, size.api_runs, size.query_sizes, size.query_repeats
        ),
    )
    rss = step(f"peak RSS of a process logging {size.rss_points:,} points",
               lambda: bench_rss(size.rss_points))  # fmt: skip
    ref: dict[str, Any] = {}
    if has_mlflow():
        from bench import mlflow_tracking

        ref = mlflow_tracking.measure(size, context.workdir, context.notes)
    else:
        context.notes.append("MLflow not measured: not importable (pip install -e '.[bench]')")
    figures = [
        Figure(NAME, "log_metric, caller cost", log.caller_us, "µs", "lower",
               TARGETS["log_metric caller cost"], ref.get("caller_us"), "MLflow"),
        Figure(NAME, f"ingest of {log.points:,} points to flush", log.points_per_s, "points/s",
               "higher", TARGETS["ingest to flush"], ref.get("points_per_s"), "MLflow"),
        Figure(NAME, "runs created (5 params, 3 metrics)", runs.runs_per_s, "runs/s", "higher",
               None, ref.get("runs_per_s"), "MLflow"),
    ]  # fmt: skip
    for i, (seeded, q) in enumerate(zip(size.query_sizes, runs.queries, strict=True)):
        # MLflow reaches one size in its budget; it is the reference of the first size.
        best, search = (
            (ref.get("best_run_ms"), ref.get("search_runs_ms")) if i == 0 else (None, None)
        )
        # judged by the seeded size (the first also holds the API-made runs: stricter)
        target = query_target(seeded)
        figures += [
            Figure(NAME, f"best_run, {q.runs:,} runs", q.best_run_ms, "ms", "lower", target,
                   best, "MLflow"),
            Figure(NAME, f"search_runs accuracy > {THRESHOLD}, {q.runs:,} runs", q.search_runs_ms,
                   "ms", "lower", target, search, "MLflow"),
        ]  # fmt: skip
    figures.append(
        Figure(NAME, f"peak RSS logging {rss.points:,} points", rss.peak_rss_mb, "MB", "lower",
               TARGETS["peak RSS"], ref.get("peak_rss_mb"), "MLflow")
    )  # fmt: skip
    return figures


BENCHMARK = Benchmark(NAME, "log_metric, ingest, runs/s, queries, peak RSS; MLflow beside",
                      SIZES, measure)  # fmt: skip

if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss-child"]:
        print(json.dumps(asdict(rss_child(int(sys.argv[2]), Path(sys.argv[3])))))
    else:
        sys.exit(main_one(BENCHMARK))

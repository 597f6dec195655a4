"""MLflow's side of the tracking benchmark, on a SQLite backend in a temporary directory.

MLflow is slow enough that every part runs to a size *or* a time budget, whichever comes
first, and reports the size it reached. Only MLflow's public API is used.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_tracking import (
    SEARCH_LIMIT,
    THRESHOLD,
    Leaderboard,
    QueryResult,
    median_ms,
    peak_rss_mb,
    run_values,
)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

BATCH = 1000  # MLflow's limit of metrics per log_batch call
QUERY_BUDGET_S = 10.0  # per query; MLflow's best-run query can take most of a second


@dataclass(frozen=True)
class CallResult:
    """Caller-side cost of ``calls`` ``mlflow.log_metric`` calls."""

    calls: int
    caller_us: float


@dataclass(frozen=True)
class IngestResult:
    """``log_batch`` ingest of ``points`` points (fewer than asked if the budget ran out)."""

    points: int
    seconds: float
    points_per_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class RunsAndQueries:
    """Run creation rate, and the query latencies over the runs the seeding budget allowed."""

    runs_per_s: float
    queries: QueryResult


def quiet() -> None:
    """Keep MLflow's and alembic's INFO chatter (database creation, migrations) off stderr."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def use_sqlite(workdir: Path, experiment: str) -> str:
    """Point MLflow at a SQLite file in ``workdir``; returns a new experiment's id."""
    quiet()
    mlflow.set_tracking_uri(f"sqlite:///{(workdir / 'mlflow.db').resolve()}")
    artifacts = (workdir / "mlflow-artifacts").resolve()
    exp_id: str = mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    return exp_id


def log_metric_calls(workdir: Path, calls: int, budget_s: float) -> CallResult:
    """Time ``mlflow.log_metric`` in a loop (one point per call, steps counted as we go)."""
    exp_id = use_sqlite(workdir, "bench-log-metric")
    with mlflow.start_run(experiment_id=exp_id):
        start = time.perf_counter()
        deadline = start + budget_s
        done = 0
        while done < calls and time.perf_counter() < deadline:
            mlflow.log_metric("loss", 0.5, step=done)
            done += 1
        elapsed = time.perf_counter() - start
    return CallResult(calls=done, caller_us=elapsed / done * 1e6)


def ingest_child(points: int, budget_s: float, workdir: Path) -> IngestResult:
    """In a fresh process: log ``points`` points of one metric with ``log_batch``."""
    exp_id = use_sqlite(workdir, "bench-ingest")
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    start = time.perf_counter()
    deadline = start + budget_s
    done = 0
    while done < points and time.perf_counter() < deadline:
        now = int(time.time() * 1000)
        size = min(BATCH, points - done)
        batch = [Metric("loss", 0.5, now, step) for step in range(done, done + size)]
        client.log_batch(run_id, metrics=batch)
        done += size
    elapsed = time.perf_counter() - start
    client.set_terminated(run_id)
    return IngestResult(
        points=done, seconds=elapsed, points_per_s=done / elapsed, peak_rss_mb=peak_rss_mb()
    )


def bench_ingest(points: int, budget_s: float) -> IngestResult:
    """Run :func:`ingest_child` in a subprocess, so its peak RSS is its own."""
    with tempfile.TemporaryDirectory(prefix="mlflow-ingest-") as tmp:
        out = subprocess.run(
            [sys.executable, __file__, str(points), str(budget_s), tmp],
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        raise RuntimeError(f"the MLflow ingest process failed:\n{out.stderr}")
    return IngestResult(**json.loads(out.stdout))


def seed_runs(
    client: Any, exp_id: str, count: int, budget_s: float, rng: random.Random, board: Leaderboard
) -> None:
    """Add up to ``count`` runs with MlflowClient (3 calls a run), within ``budget_s``."""
    deadline = time.perf_counter() + budget_s
    for i in range(count):
        if time.perf_counter() >= deadline:
            return
        v = run_values(rng)
        run_id = client.create_run(exp_id, run_name=f"seeded-{i}").info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, x, now, 0) for k, x in v.metrics.items()],
            params=[Param(k, str(p)) for k, p in v.params.items()],
        )
        client.set_terminated(run_id)
        board.add(run_id, v.metrics["accuracy"])


def bench_runs_and_queries(
    workdir: Path,
    api_runs: int,
    runs_budget_s: float,
    query_runs: int,
    seed_budget_s: float,
    repeats: int,
    seed: int = 1,
) -> RunsAndQueries:
    """Create runs with the fluent API (timed), seed more, then time the two queries."""
    rng = random.Random(seed)
    board = Leaderboard()
    exp_id = use_sqlite(workdir, "bench-queries")
    start = time.perf_counter()
    deadline = start + runs_budget_s
    while len(board) < api_runs and time.perf_counter() < deadline:
        v = run_values(rng)
        with mlflow.start_run(experiment_id=exp_id, run_name=f"api-{len(board)}") as run:
            mlflow.log_params(v.params)
            mlflow.log_metrics(v.metrics)
        board.add(run.info.run_id, v.metrics["accuracy"])
    runs_per_s = len(board) / (time.perf_counter() - start)
    seed_runs(MlflowClient(), exp_id, query_runs - len(board), seed_budget_s, rng, board)

    def best() -> Any:
        return mlflow.search_runs(
            experiment_ids=[exp_id], order_by=["metrics.accuracy DESC"], max_results=1
        )

    def search() -> Any:
        return mlflow.search_runs(
            experiment_ids=[exp_id],
            filter_string=f"metrics.accuracy > {THRESHOLD}",
            max_results=SEARCH_LIMIT,
        )

    expected = board.top(1)[0]
    if best()["run_id"].tolist() != [expected]:
        raise RuntimeError(f"MLflow's best run is not the best seeded run {expected}")
    above = {r for r, x in board.accuracy.items() if x > THRESHOLD}
    found = search()["run_id"].tolist()
    if len(found) != min(SEARCH_LIMIT, len(above)) or not set(found) <= above:
        raise RuntimeError("MLflow's search_runs did not return runs above the threshold")
    return RunsAndQueries(
        runs_per_s=runs_per_s,
        queries=QueryResult(
            runs=len(board),
            best_run_ms=median_ms(best, repeats, QUERY_BUDGET_S),
            search_runs_ms=median_ms(search, repeats, QUERY_BUDGET_S),
        ),
    )


if __name__ == "__main__":
    result = ingest_child(int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(asdict(result)))

"""MLflow's side of the tracking benchmark, on a SQLite backend, measured in the same run.

Imported only when ``mlflow`` is importable in this interpreter (the ``bench`` extra). MLflow
is slow enough that every part runs to a size *or* a time budget, whichever comes first, and
the notes say what size it reached. Only MLflow's public API is used.
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
from typing import TYPE_CHECKING, Any

from bench.processes import child_env, module_command
from bench.seed import Leaderboard, run_values
from bench.timing import median_ms, peak_rss_mb, step
from bench.tracking import SEARCH_LIMIT, THRESHOLD

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

if TYPE_CHECKING:
    from bench.tracking import Size

BATCH = 1000  # MLflow's limit of metrics per log_batch call
QUERY_BUDGET_S = 10.0  # per query; MLflow's best-run query can take most of a second


@dataclass(frozen=True)
class IngestResult:
    """``log_batch`` ingest of ``points`` points (fewer than asked if the budget ran out)."""

    points: int
    seconds: float
    points_per_s: float
    peak_rss_mb: float


def use_sqlite(workdir: Path, experiment: str) -> str:
    """Point MLflow at a SQLite file in ``workdir``; returns a new experiment's id."""
    for name in ("mlflow", "alembic"):  # database creation and migration chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    workdir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{(workdir / 'mlflow.db').resolve()}")
    artifacts = (workdir / "mlflow-artifacts").resolve()
    exp_id: str = mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    return exp_id


def log_metric_calls(workdir: Path, calls: int, budget_s: float) -> tuple[int, float]:
    """Calls made and µs per ``mlflow.log_metric`` call (one point each, steps counted)."""
    exp_id = use_sqlite(workdir, "bench-log-metric")
    with mlflow.start_run(experiment_id=exp_id):
        start = time.perf_counter()
        done = 0
        while done < calls and time.perf_counter() < start + budget_s:
            mlflow.log_metric("loss", 0.5, step=done)
            done += 1
        elapsed = time.perf_counter() - start
    return done, elapsed / done * 1e6


def ingest_child(points: int, budget_s: float, workdir: Path) -> IngestResult:
    """In a fresh process: log ``points`` points of one metric with ``log_batch``."""
    client = MlflowClient()
    run_id = client.create_run(use_sqlite(workdir, "bench-ingest")).info.run_id
    start = time.perf_counter()
    done = 0
    while done < points and time.perf_counter() < start + budget_s:
        now = int(time.time() * 1000)
        size = min(BATCH, points - done)
        client.log_batch(
            run_id, metrics=[Metric("loss", 0.5, now, s) for s in range(done, done + size)]
        )
        done += size
    elapsed = time.perf_counter() - start
    client.set_terminated(run_id)
    return IngestResult(done, elapsed, done / elapsed, peak_rss_mb())


def bench_ingest(points: int, budget_s: float) -> IngestResult:
    """Run :func:`ingest_child` in a subprocess, so its peak RSS is its own."""
    with tempfile.TemporaryDirectory(prefix="mlflow-ingest-") as tmp:
        cmd = module_command("bench.mlflow_tracking", str(points), str(budget_s), tmp)
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    if out.returncode != 0:
        raise RuntimeError(f"the MLflow ingest process failed:\n{out.stderr}")
    return IngestResult(**json.loads(out.stdout))


def runs_and_queries(workdir: Path, size: Size) -> tuple[float, int, float, float]:
    """Runs/s with the fluent API, then seeding to a size, then the two queries' medians."""
    rng = random.Random(1)
    board = Leaderboard()
    exp_id = use_sqlite(workdir, "bench-queries")
    start = time.perf_counter()
    while len(board) < size.api_runs and time.perf_counter() < start + size.mlflow_runs_budget_s:
        v = run_values(rng)
        with mlflow.start_run(experiment_id=exp_id, run_name=f"api-{len(board)}") as run:
            mlflow.log_params(v.params)
            mlflow.log_metrics(v.metrics)
        board.add(run.info.run_id, v.metrics["accuracy"])
    runs_per_s = len(board) / (time.perf_counter() - start)
    client = MlflowClient()
    deadline = time.perf_counter() + size.mlflow_seed_budget_s
    while len(board) < size.mlflow_query_runs and time.perf_counter() < deadline:
        v = run_values(rng)
        run_id = client.create_run(exp_id, run_name=f"seeded-{len(board)}").info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, x, now, 0) for k, x in v.metrics.items()],
            params=[Param(k, str(p)) for k, p in v.params.items()],
        )
        client.set_terminated(run_id)
        board.add(run_id, v.metrics["accuracy"])

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

    if best()["run_id"].tolist() != board.top(1):
        raise RuntimeError("MLflow's best run is not the best run it was given")
    above = {r for r, x in board.accuracy.items() if x > THRESHOLD}
    found = search()["run_id"].tolist()
    if len(found) != min(SEARCH_LIMIT, len(above)) or not set(found) <= above:
        raise RuntimeError("MLflow's search_runs did not return runs above the threshold")
    repeats = size.query_repeats
    return (
        runs_per_s,
        len(board),
        median_ms(best, repeats, QUERY_BUDGET_S),
        median_ms(search, repeats, QUERY_BUDGET_S),
    )


def measure(size: Size, workdir: Path, notes: list[str]) -> dict[str, float]:
    """MLflow's figures under the names of chachaml's, with notes on the sizes reached."""
    print("  MLflow", file=sys.stderr)
    calls, caller_us = step(
        f"mlflow.log_metric x {size.mlflow_calls:,}",
        lambda: log_metric_calls(workdir / "mlflow-calls", size.mlflow_calls, 5.0),
    )
    ingest = step(
        f"log_batch of {size.mlflow_ingest_points:,} points"
        f" (budget {size.mlflow_ingest_budget_s:.0f} s)",
        lambda: bench_ingest(size.mlflow_ingest_points, size.mlflow_ingest_budget_s),
    )
    runs_per_s, runs, best_ms, search_ms = step(
        f"runs, seeding to {size.mlflow_query_runs:,}"
        f" (budget {size.mlflow_seed_budget_s:.0f} s), queries",
        lambda: runs_and_queries(workdir / "mlflow-runs", size),
    )
    notes.append(
        f"MLflow {mlflow.__version__} on SQLite: log_metric over {calls:,} calls; log_batch"
        f" ingest and peak RSS: {ingest.points:,} points in {ingest.seconds:.1f} s, in a fresh"
        f" process; queries over {runs:,} runs"
    )
    return {
        "caller_us": caller_us,
        "points_per_s": ingest.points_per_s,
        "peak_rss_mb": ingest.peak_rss_mb,
        "runs_per_s": runs_per_s,
        "best_run_ms": best_ms,
        "search_runs_ms": search_ms,
    }


if __name__ == "__main__":
    result = ingest_child(int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(asdict(result)))

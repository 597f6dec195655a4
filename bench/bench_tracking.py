"""chachaml's side of the tracking benchmark: logging, ingest, run creation, queries, memory.

Every figure goes through the public ``Client`` API except the bulk seeding of the query
store, which writes the rows the store itself would write (schema from the store's own
migrations, chunks and summaries from its own codec) so that 100,000 runs take seconds.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chachaml.client.client import Client
from chachaml.settings import Settings
from chachaml.store.codec import make_chunk
from chachaml.store.rows import encode_param

EXPERIMENT = "bench-queries"
THRESHOLD = 0.9
SEARCH_LIMIT = 20
HEARTBEAT_TIMEOUT = 32.0  # what a client with the default 10 s heartbeat records


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


@dataclass(frozen=True)
class RunValues:
    """What one benchmark run logs: 5 params and 3 metrics."""

    params: dict[str, Any]
    metrics: dict[str, float]


def make_client(workdir: Path, name: str) -> Client:
    """A client on its own SQLite file and artifact root under ``workdir``, default settings."""
    return Client(
        store=f"sqlite:///{(workdir / f'{name}.db').resolve()}",
        artifacts=str((workdir / f"{name}-artifacts").resolve()),
        settings=Settings(user="bench"),
    )


def store_path(client: Client) -> Path:
    """The database file of a client's SQLite store."""
    return Path(client.settings.store_url.removeprefix("sqlite:///"))


@contextmanager
def opened(workdir: Path, name: str) -> Iterator[Client]:
    """``make_client`` that closes the client afterwards."""
    client = make_client(workdir, name)
    try:
        yield client
    finally:
        client.close()


def peak_rss_mb() -> float:
    """This program's peak resident set size so far, in MB (10^6 bytes); Linux only.

    Read from ``VmHWM`` in ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` would also
    count the peak of the parent process a subprocess was forked from.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmHWM line in /proc/self/status")


def run_values(rng: random.Random) -> RunValues:
    """Plausible hyper-parameters and final metrics of one training run."""
    return RunValues(
        params={
            "lr": round(rng.uniform(1e-4, 1e-1), 6),
            "batch_size": rng.choice([16, 32, 64, 128, 256]),
            "optimizer": rng.choice(["adam", "adamw", "sgd"]),
            "epochs": rng.randint(1, 50),
            "dropout": round(rng.uniform(0.0, 0.5), 3),
        },
        metrics={
            "accuracy": rng.uniform(0.5, 1.0),
            "loss": rng.uniform(0.01, 2.0),
            "f1": rng.uniform(0.4, 1.0),
        },
    )


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
    return LoggingResult(
        points=points,
        caller_us=(looped - start) / points * 1e6,
        points_per_s=points / (stored_at - start),
    )


def bench_logging(workdir: Path, points: int, repeats: int) -> LoggingResult:
    """The median of ``repeats`` logging runs, each in its own fresh store."""
    results = []
    for i in range(repeats):
        with opened(workdir, f"logging-{i}") as client:
            results.append(log_points(client, points))
    return LoggingResult(
        points=points,
        caller_us=statistics.median(r.caller_us for r in results),
        points_per_s=statistics.median(r.points_per_s for r in results),
    )


class Leaderboard:
    """The runs of the query experiment by accuracy, to check query answers against."""

    def __init__(self) -> None:
        self.accuracy: dict[str, float] = {}

    def add(self, run_id: str, accuracy: float) -> None:
        """Record one run's final accuracy."""
        self.accuracy[run_id] = accuracy

    def top(self, n: int) -> list[str]:
        """Ids of the ``n`` runs with the highest accuracy, best first."""
        return heapq.nlargest(n, self.accuracy, key=self.accuracy.__getitem__)

    def __len__(self) -> int:
        return len(self.accuracy)


def create_runs(client: Client, count: int, rng: random.Random, board: Leaderboard) -> float:
    """Create ``count`` runs with 5 params and 3 metrics each; returns runs per second."""
    values = [run_values(rng) for _ in range(count)]
    ids = []
    start = time.perf_counter()
    for i, v in enumerate(values):
        with client.run(experiment=EXPERIMENT, name=f"api-{i}") as run:
            client.log_params(v.params)
            client.log_metrics(v.metrics)
        ids.append(run.id)
    elapsed = time.perf_counter() - start
    for run_id, v in zip(ids, values, strict=True):
        board.add(run_id, v.metrics["accuracy"])
    return count / elapsed


def seed_runs(db: Path, count: int, rng: random.Random, board: Leaderboard) -> None:
    """Insert ``count`` completed runs into the query experiment in one transaction.

    The rows are those an API-made run leaves (see ``SQLiteStore.create_run``, ``log_params``,
    ``log_metrics`` and ``end_run``): params encoded by the store's ``encode_param``, one
    chunk per metric packed by ``make_chunk``, and its metric summary. The experiment must
    exist already. Seeded runs started in the past, 30 s apart, older than the existing ones.
    """
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout = 60000")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("BEGIN IMMEDIATE")
        (exp_id,) = con.execute(
            "SELECT id FROM experiments WHERE name = ?", (EXPERIMENT,)
        ).fetchone()
        (oldest,) = con.execute(
            "SELECT coalesce(min(started_at), ?) FROM runs", (time.time(),)
        ).fetchone()
        environment = json.dumps({"python": sys.version.split()[0], "seeded": True})
        runs: list[tuple[Any, ...]] = []
        params: list[tuple[str, str, str]] = []
        chunks: list[tuple[Any, ...]] = []
        summaries: list[tuple[Any, ...]] = []
        for i in range(count):
            run_id = uuid.uuid4().hex
            started = oldest - 30.0 * (count - i)
            ended = started + 20.0
            v = run_values(rng)
            runs.append(
                (run_id, exp_id, f"seeded-{i}", "bench", started, ended, ended, environment)
            )
            params.extend((run_id, k, encode_param(p)) for k, p in v.params.items())
            for key, value in v.metrics.items():
                c = make_chunk(run_id, key, [(0, value, ended - 1.0)])
                chunks.append((run_id, key, c.count, c.steps, c.values, c.timestamps))
                summaries.append(
                    (
                        run_id,
                        key,
                        c.last_value,
                        c.last_step,
                        c.last_time,
                        c.min_value,
                        c.max_value,
                        c.count,
                    )
                )
            board.add(run_id, v.metrics["accuracy"])
        con.executemany(
            "INSERT INTO runs (id, experiment_id, name, status, created_by, started_at,"
            " ended_at, heartbeat_at, heartbeat_timeout, environment)"
            f" VALUES (?, ?, ?, 'completed', ?, ?, ?, ?, {HEARTBEAT_TIMEOUT}, ?)",
            runs,
        )
        con.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)", params)
        con.executemany(
            "INSERT INTO metric_chunks (run_id, key, count, steps, vals, times)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            chunks,
        )
        con.executemany(
            "INSERT INTO metric_summary (run_id, key, last_value, last_step, last_time,"
            " min_value, max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            summaries,
        )
        con.execute("COMMIT")
    finally:
        con.close()


def median_ms(call: Callable[[], object], repeats: int, budget_s: float = math.inf) -> float:
    """Median wall time of ``call`` in ms, after a warm-up call; fewer calls past the budget."""
    call()
    deadline = time.perf_counter() + budget_s
    times: list[float] = []
    while len(times) < repeats and (not times or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def time_queries(client: Client, board: Leaderboard, repeats: int) -> QueryResult:
    """Check ``best_run`` and ``search_runs`` against the leaderboard, then time them."""
    expected = board.top(SEARCH_LIMIT)
    best = client.best_run("accuracy", experiment=EXPERIMENT)
    if best is None or best.run.id != expected[0]:
        found = None if best is None else best.run.id
        raise RuntimeError(f"best_run found {found}, the best seeded run is {expected[0]}")
    if best.value != board.accuracy[expected[0]]:
        raise RuntimeError(f"best_run reports {best.value}, seeded {board.accuracy[expected[0]]}")
    above = [r for r in expected if board.accuracy[r] > THRESHOLD]

    def search() -> list[str]:
        found = client.search_runs(
            "accuracy", ">", THRESHOLD, experiment=EXPERIMENT, limit=SEARCH_LIMIT
        )
        return [r.id for r in found]

    if search() != above:
        raise RuntimeError("search_runs did not return the best runs above the threshold")
    return QueryResult(
        runs=len(board),
        best_run_ms=median_ms(lambda: client.best_run("accuracy", experiment=EXPERIMENT), repeats),
        search_runs_ms=median_ms(search, repeats),
    )


@dataclass(frozen=True)
class RunsAndQueries:
    """Run creation rate and the query latencies at each store size."""

    runs_per_s: float
    queries: list[QueryResult]


def bench_runs_and_queries(
    workdir: Path, api_runs: int, sizes: list[int], repeats: int, seed: int = 1
) -> RunsAndQueries:
    """Create ``api_runs`` runs through the API (timed), then grow the store to each size.

    The API-made runs stay in the query experiment, so the queries read both kinds of run.
    """
    rng = random.Random(seed)
    board = Leaderboard()
    with opened(workdir, "queries") as client:
        runs_per_s = create_runs(client, api_runs, rng, board)
        queries = []
        for size in sizes:
            if size > len(board):
                seed_runs(store_path(client), size - len(board), rng, board)
            queries.append(time_queries(client, board, repeats))
    return RunsAndQueries(runs_per_s=runs_per_s, queries=queries)


def rss_child(points: int, workdir: Path) -> RssResult:
    """In a fresh process: log ``points`` points in one run, flush, report peak RSS."""
    start = time.perf_counter()
    with opened(workdir, "rss") as client:
        log_points(client, points)
    return RssResult(points=points, seconds=time.perf_counter() - start, peak_rss_mb=peak_rss_mb())


def bench_rss(points: int) -> RssResult:
    """Run :func:`rss_child` in a subprocess (so nothing else counts towards its memory)."""
    with tempfile.TemporaryDirectory(prefix="chachaml-rss-") as tmp:
        out = subprocess.run(
            [sys.executable, __file__, str(points), tmp], capture_output=True, text=True
        )
    if out.returncode != 0:
        raise RuntimeError(f"the logging process failed:\n{out.stderr}")
    return RssResult(**json.loads(out.stdout))


if __name__ == "__main__":
    print(json.dumps(asdict(rss_child(int(sys.argv[1]), Path(sys.argv[2])))))

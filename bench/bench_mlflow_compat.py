"""The MLflow protocol benchmark: ``python -m bench.bench_mlflow_compat [--quick|--full]``.

The same MLflow client code (``MlflowClient`` over MLflow's own REST store) against
``mlflow server`` (SQLite backend, started here from the installed ``mlflow`` package on a
free port, with its default workers and without its job runner) and against ``chachaml serve``
(SQLite), both running at once. Each figure alternates between the two servers call by call
(or block by block), so the load other work puts on the machine falls on both alike:

- ``log_batch``: points of one metric in batches of 1,000 (MLflow's limit per call), also
  to a server that does no work (:mod:`bench.null_responder`): the client's own floor, which
  bounds the ratio any server could reach (:mod:`bench.mlflow_log_batch`);
- runs created per second: ``create_run``, one ``log_batch`` of 5 params and 3 metrics,
  ``set_terminated``;
- ``search_runs`` ordered by a metric over the runs of one experiment, a page of 100, its
  best run checked against the seeded values;
- ``get_metric_history`` of every point the ``log_batch`` part logged.

The searched runs are seeded into each database before its server starts, the same runs on
both sides (ids, 5 text params, 3 metrics at step 0): MLflow's through its own ORM tables
(its ``log_batch`` path takes ~80 ms a run, 13 minutes for 10,000), chachaml's through its
store's operations. MLflow is slow enough that its ``log_batch`` and runs parts stop at a
time budget; the notes say what size they reached.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.figures import Figure
from bench.mlflow_log_batch import BATCH, Target, log_batch_bodies, log_batches, post_batches
from bench.null_responder import null_responder
from bench.processes import Served, child_env, free_port, module_command, serve_process
from bench.runner import Benchmark, Context, main_one
from bench.seed import BLOCK, Leaderboard, point, run_id, run_values
from bench.targets import TARGETS
from bench.timing import step
from chachaml.records.runs import NewRun
from chachaml.store import open_store

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # an error fails, not waits
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # a line per run

NAME = "mlflow_compat"
SEARCHED = "search"  # the experiment the ordered search reads
Seeded = tuple[str, dict[str, str], dict[str, float]]  # run id, params as text, metrics


@dataclass(frozen=True)
class Size:
    """Points logged and read back, runs created, runs searched, repeats, MLflow's budget."""

    points: int
    runs: int
    search_runs: int
    page: int
    repeats: int
    budget_s: float  # per MLflow part: log_batch and runs stop there
    workers: int | None = None  # mlflow server's --workers; None: its default


SIZES = {
    "quick": Size(points=5_000, runs=20, search_runs=300, page=100, repeats=3, budget_s=30.0),
    "default": Size(
        points=100_000, runs=200, search_runs=10_000, page=100, repeats=10, budget_s=120.0
    ),
    "full": Size(
        points=100_000, runs=1_000, search_runs=10_000, page=100, repeats=30, budget_s=600.0
    ),
}


def has_mlflow() -> str | None:
    """Why the benchmark cannot run here, if MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return "mlflow is not importable (pip install -e '.[bench]')"
    return None


# -- seeding the searched runs, the same on both sides ----------------------------------------


def seeded_values(
    count: int,
) -> tuple[Leaderboard, list[tuple[str, dict[str, str], dict[str, float]]]]:
    """The searched runs: id, params as the text MLflow logs, metrics; and their leaderboard."""
    board, runs = Leaderboard(), []
    for i in range(count):
        v = run_values(random.Random(i))
        runs.append((run_id(i), {k: str(p) for k, p in v.params.items()}, v.metrics))
        board.add(run_id(i), v.metrics["accuracy"])
    return board, runs


def seed_mlflow(db: Path, artifacts: Path, count: int) -> None:
    """Create MLflow's database (its own migrations) and insert the searched runs in bulk."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():  # its SQLAlchemy use warns of deprecations, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(f"sqlite:///{db}", artifacts.as_uri())  # type: ignore[no-untyped-call]
        exp_id = int(store.create_experiment(SEARCHED))  # type: ignore[no-untyped-call]
    _, runs = seeded_values(count)
    anchor = int((time.time() - 86_400) * 1000)
    tables: dict[Any, list[dict[str, Any]]] = {
        t: [] for t in (SqlRun, SqlTag, SqlParam, SqlMetric, SqlLatestMetric)
    }
    for i, (rid, params, metrics) in enumerate(runs):
        start = anchor - 30_000 * (i + 1)
        tables[SqlRun].append(
            {
                "run_uuid": rid,
                "name": f"run-{i}",
                "source_type": "LOCAL",
                "source_name": "",
                "entry_point_name": "",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": start,
                "end_time": start + 20_000,
                "source_version": "",
                "lifecycle_stage": "active",
                "experiment_id": exp_id,
                "artifact_uri": f"{artifacts.as_uri()}/{exp_id}/{rid}/artifacts",
            }
        )
        tables[SqlTag].append({"run_uuid": rid, "key": "mlflow.runName", "value": f"run-{i}"})
        tables[SqlParam] += [{"run_uuid": rid, "key": k, "value": p} for k, p in params.items()]
        for table in (SqlMetric, SqlLatestMetric):
            tables[table] += [
                {
                    "run_uuid": rid,
                    "key": k,
                    "value": x,
                    "timestamp": start + 19_000,
                    "step": 0,
                    "is_nan": False,
                }
                for k, x in metrics.items()
            ]
    with store.engine.begin() as conn:
        for table, rows in tables.items():
            for first in range(0, len(rows), 5_000):
                conn.execute(table.__table__.insert(), rows[first : first + 5_000])
    store.engine.dispose()


def seed_chachaml(url: str, count: int) -> None:
    """The searched runs through chachaml's store, as MLflow's log_batch would leave them."""
    _, runs = seeded_values(count)
    anchor = time.time() - 86_400

    async def body() -> None:
        store = await open_store(url)
        try:
            await store.create_experiment(SEARCHED)
            for first in range(0, len(runs), BLOCK):
                block = list(enumerate(runs))[first : first + BLOCK]
                for i, (rid, params, _) in block:
                    start = anchor - 30.0 * (i + 1)
                    await store.create_run(
                        NewRun(
                            id=rid,
                            experiment=SEARCHED,
                            name=f"run-{i}",
                            created_by="bench",
                            started_at=start,
                            heartbeat_timeout=32.0,
                        )
                    )
                    await store.log_params(rid, params)
                await store.log_metrics(
                    [
                        point(rid, k, x, anchor - 30.0 * (i + 1) + 19.0)
                        for i, (rid, _, metrics) in block
                        for k, x in metrics.items()
                    ]
                )
                for i, (rid, _, _) in block:
                    await store.end_run(rid, "completed", None, anchor - 30.0 * (i + 1) + 20.0)
        finally:
            await store.close()

    anyio.run(body)


# -- the servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def mlflow_server(root: Path, db: Path, workers: int | None = None) -> Iterator[Served]:
    """``mlflow server`` over the SQLite file ``db`` on a free port, once it answers.

    Without MLflow 3's job runner (a process and seven Huey consumers for its GenAI jobs):
    nothing here uses it, and on a 2-core box it would take CPU from both servers measured.
    """
    port = free_port()
    cmd = module_command(
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--artifacts-destination",
        str(root / "mlflow-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(["--workers", str(workers)] if workers else []),
    )
    log = root / f"mlflow-{port}.log"
    env = child_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    with log.open("wb") as err:  # its own session: the workers stop with it
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=err, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(timeout=1) as probe:  # one client: each new one costs ~25 ms of CPU
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if probe.get(url + "/health").status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-2000:]
                    raise RuntimeError(f"mlflow server did not start:\n{tail}")
                time.sleep(0.1)
        yield Served(url, proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the client code, the same for both -------------------------------------------------------


def clients(urls: dict[str, str]) -> dict[str, Any]:
    """One ``MlflowClient`` per server."""
    from mlflow import MlflowClient

    return {name: MlflowClient(tracking_uri=url) for name, url in urls.items()}


def experiment_ids(client: Any, name: str) -> str:
    """The id of experiment ``name`` on the client's server, created if needed."""
    found = client.get_experiment_by_name(name)
    return str(found.experiment_id if found else client.create_experiment(name))


def create_runs(
    clients: dict[str, Any], runs: int, budget_s: float
) -> dict[str, tuple[int, float]]:
    """Runs with 5 params and 3 metrics, in blocks of 10 alternating servers: made, seconds."""
    from mlflow.entities import Metric, Param

    exps = {n: experiment_ids(c, "runs") for n, c in clients.items()}
    made = dict.fromkeys(clients, 0)
    took = dict.fromkeys(clients, 0.0)
    rng = random.Random(7)
    while True:
        going = [
            n for n in clients if made[n] < runs and not (n == "MLflow" and took[n] > budget_s)
        ]
        if not going:
            break
        values = [run_values(rng) for _ in range(10)]
        for name in going:
            client = clients[name]
            began = time.perf_counter()
            for v in values:
                rid = client.create_run(exps[name]).info.run_id
                now = int(time.time() * 1000)
                client.log_batch(
                    rid,
                    metrics=[Metric(k, x, now, 0) for k, x in v.metrics.items()],
                    params=[Param(k, str(p)) for k, p in v.params.items()],
                )
                client.set_terminated(rid)
            took[name] += time.perf_counter() - began
            made[name] += len(values)
    return {n: (made[n], took[n]) for n in clients}


def interleaved_ms(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each call, after a warm-up, the calls alternating repeat by repeat."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {n: [] for n in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            began = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - began)
    return {n: statistics.median(t) * 1e3 for n, t in times.items()}


def searches(clients: dict[str, Any], board: Leaderboard, size: Size) -> dict[str, float]:
    """``search_runs`` ordered by accuracy, a page; the best runs checked on each server."""
    exps = {n: experiment_ids(c, SEARCHED) for n, c in clients.items()}
    best = board.top(size.page)

    def search(name: str) -> Callable[[], object]:
        def call() -> object:
            found = clients[name].search_runs(
                [exps[name]], order_by=["metrics.accuracy DESC"], max_results=size.page
            )
            ids = [r.info.run_id for r in found]
            if ids[:5] != best[:5] or len(ids) != min(size.page, len(board)):
                raise RuntimeError(f"{name}'s search_runs did not return the best runs first")
            return found

        return call

    return interleaved_ms({n: search(n) for n in clients}, size.repeats)


def histories(clients: dict[str, Any], runs: dict[str, Target], repeats: int) -> dict[str, float]:
    """``get_metric_history`` of every logged point, its length checked on each server."""

    def read(name: str) -> Callable[[], object]:
        rid, sent = runs[name].run_id, runs[name].points

        def call() -> object:
            got = clients[name].get_metric_history(rid, "loss")
            if len(got) != sent:
                raise RuntimeError(f"{name} returned {len(got)} of {sent} points")
            return got

        return call

    return interleaved_ms({n: read(n) for n in clients}, repeats)


def port_of(url: str) -> int:
    """The port of a ``http://host:port`` URL."""
    return int(url.rsplit(":", 1)[1])


def ingest_targets(clients: dict[str, Any], servers: dict[str, Served]) -> dict[str, Target]:
    """A run to log into on each server, the server's CPU clock (all its processes)."""
    return {
        name: Target(
            client,
            client.create_run(experiment_ids(client, "ingest")).info.run_id,
            port_of(servers[name].url),
            servers[name].tree_cpu,
        )
        for name, client in clients.items()
    }


def floor_notes(ingest: dict[str, Target], encode_ms: float) -> list[str]:
    """Each target's log_batch calls, and the ratio the client's own floor leaves possible."""
    ml, ch, floor = (ingest[n] for n in ("MLflow", "chachaml", "floor"))
    ml_ms, ch_ms, floor_ms = (t.ms(t.wall_s) for t in (ml, ch, floor))
    return [
        f"{NAME}: log_batch of {BATCH:,} points against {name}: {t.describe()}"
        for name, t in (("MLflow", ml), ("chachaml", ch), ("a responder doing no work", floor))
    ] + [
        f"{NAME}: the client's floor is {floor_ms:.1f} ms a call ({encode_ms:.1f} ms of it"
        f" building and encoding the body), so through this client no server can pass"
        f" {ml_ms / floor_ms:.1f}x MLflow's server ({ml_ms:.1f} ms a call); chachaml measured"
        f" {ml_ms / ch_ms:.1f}x, {ch_ms - floor_ms:.1f} ms a call above the floor"
    ]


def measure(size: Size, context: Context) -> list[Figure]:
    """Seed both databases, start both servers, then every figure on both, interleaved."""
    root = context.workdir
    mlflow_db, chachaml_db = root / "mlflow.db", root / "chachaml.db"
    step(
        f"seed {size.search_runs:,} runs into MLflow's database",
        lambda: seed_mlflow(mlflow_db, root / "mlflow-artifacts", size.search_runs),
    )
    step(
        f"seed {size.search_runs:,} runs into chachaml's database",
        lambda: seed_chachaml(f"sqlite:///{chachaml_db}", size.search_runs),
    )
    board, _ = seeded_values(size.search_runs)
    with (
        mlflow_server(root, mlflow_db, size.workers) as ml_server,
        serve_process(root, f"sqlite:///{chachaml_db}") as ch_server,
        null_responder() as floor_server,
    ):
        urls = {"MLflow": ml_server.url, "chachaml": ch_server.url}
        both = clients(urls)
        ingest = ingest_targets(both, {"MLflow": ml_server, "chachaml": ch_server})
        ingest["floor"] = Target(clients({"floor": floor_server.url})["floor"], "0" * 32,
                                 port_of(floor_server.url), floor_server.cpu)  # fmt: skip
        step(
            f"log_batch of {size.points:,} points, batches of {BATCH:,}, and to a responder"
            " that does no work",
            lambda: log_batches(ingest, size.points, size.budget_s),
        )
        for name in urls:
            both[name].set_terminated(ingest[name].run_id)
        began = time.perf_counter()
        bodies = log_batch_bodies(size.points)
        encode_ms = (time.perf_counter() - began) / len(bodies) * 1e3  # the client's own part
        runs = {n: both[n].create_run(experiment_ids(both[n], "ingest")).info.run_id for n in urls}
        served = step(f"log-batch, the same {len(bodies)} bodies pre-encoded, over HTTP",
                      lambda: post_batches(runs, urls, bodies, size.budget_s))  # fmt: skip
        made = step(
            f"{size.runs:,} runs with 5 params and 3 metrics",
            lambda: create_runs(both, size.runs, size.budget_s),
        )
        search_ms = step(
            f"search_runs ordered by a metric over {size.search_runs:,} runs (x{size.repeats})",
            lambda: searches(both, board, size),
        )
        repeats = max(1, size.repeats // 3)
        history_ms = step(
            f"get_metric_history of the logged points (x{repeats})",
            lambda: histories(both, ingest, repeats),
        )
    rate = {n: t.points / t.wall_s for n, t in ingest.items()}
    server_rate = {n: sent / took for n, (sent, took) in served.items()}
    runs_per_s = {n: count / took for n, (count, took) in made.items()}
    context.notes.append(
        f"{NAME}: MLflow log_batch reached {ingest['MLflow'].points:,} points and runs"
        f" {made['MLflow'][0]:,} (budget {size.budget_s:.0f} s each); get_metric_history read"
        f" {ingest['MLflow'].points:,} points from MLflow, {ingest['chachaml'].points:,} from"
        f" chachaml; search_runs pages of {size.page}; mlflow server with"
        f" {f'{size.workers} worker(s)' if size.workers else 'its default workers'}, no job runner"
    )
    context.notes += floor_notes(ingest, encode_ms)
    ch, ml = "chachaml", "MLflow"

    def vs(name: str, mine: dict[str, float], unit: str, target: str) -> Figure:
        better = TARGETS[target].better
        return Figure(NAME, name, mine[ch], unit, better, TARGETS[target], mine[ml], ml)

    return [
        vs(f"log_batch, {BATCH:,} points per call", rate, "points/s",
           "MLflow protocol, no slower (rate)"),
        Figure(NAME, "log_batch client floor: a server doing no work", rate["floor"],
               "points/s", "higher", None, rate[ml], ml),
        vs("log-batch served (bodies pre-encoded)", server_rate, "points/s",
           "MLflow protocol log_batch"),
        vs("runs created, 5 params + 3 metrics", runs_per_s, "runs/s",
           "MLflow protocol, no slower (rate)"),
        vs(f"search_runs by a metric, {size.search_runs:,} runs", search_ms, "ms",
           "MLflow protocol ordered search"),
        vs(f"get_metric_history, {ingest[ch].points:,} points", history_ms, "ms",
           "MLflow protocol, no slower (latency)"),
    ]  # fmt: skip


BENCHMARK = Benchmark(
    NAME,
    "the same MLflow client against mlflow server and chachaml serve",
    SIZES,
    measure,
    has_mlflow,
)

if __name__ == "__main__":
    sys.exit(main_one(BENCHMARK))

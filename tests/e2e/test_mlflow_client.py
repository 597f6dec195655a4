"""The real ``mlflow`` client, unmodified, against a real ``chachaml serve`` (issue 19).

Only ``MLFLOW_TRACKING_URI`` (and, in team mode, ``MLFLOW_TRACKING_TOKEN``) points it at
chachaml. Each test runs on SQLite and on PostgreSQL. The client runs in a child process so
that its settings (environment, module state) never leak into other tests.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chachaml.store import open_store
from chachaml.tools import runs as run_ops
from tests.support.serve_proc import ServeProcess
from tests.support.services import postgres_schema


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chachaml.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(store_url, tmp_path / "artifacts", {"CHACHAML_USER": "keyboard"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def run_client(script: str, env: dict[str, str]) -> Any:
    """Run an MLflow client script in a child process; returns what it printed as JSON."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHACHAML_"))}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=clean | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


FLUENT = """
    import json, math
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    mlflow.set_experiment("mlflow-users")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 4, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": float("nan")}, step=4)
        mlflow.set_tags({"team": "vision", "mlflow.note.content": "first try"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.95)
    client = MlflowClient()
    client.log_batch(
        parent.info.run_id,
        metrics=[Metric("batch", float(i), 1_750_000_000_000 + i, i) for i in range(3000)],
        params=[Param("seed", "7")],
        tags=[RunTag("stage", "done")],
    )
    failed = client.create_run(mlflow.get_experiment_by_name("mlflow-users").experiment_id)
    client.log_metric(failed.info.run_id, "acc", 0.2)
    client.set_terminated(failed.info.run_id, status="FAILED")
    try:
        client.log_param(parent.info.run_id, "lr", "0.5")
        changed = "no error"
    except mlflow.exceptions.MlflowException as exc:
        changed = exc.error_code
    try:
        client.get_run("0" * 32)
        missing = "no error"
    except mlflow.exceptions.MlflowException as exc:
        missing = exc.error_code

    run = client.get_run(parent.info.run_id)
    history = client.get_metric_history(parent.info.run_id, "batch")
    found = mlflow.search_runs(
        experiment_names=["mlflow-users"],
        filter_string="metrics.acc > 0.5 AND params.lr = '0.01'",
        order_by=["metrics.acc DESC"],
        output_format="list",
    )
    ordered = mlflow.search_runs(
        experiment_names=["mlflow-users"], order_by=["metrics.acc ASC"], output_format="list"
    )
    paged = client.search_runs(
        [run.info.experiment_id], max_results=2, order_by=["attributes.start_time ASC"]
    )
    rest = client.search_runs(
        [run.info.experiment_id], max_results=2, page_token=paged.token,
        order_by=["attributes.start_time ASC"],
    )
    frame = mlflow.search_runs(experiment_names=["mlflow-users"])
    client.delete_run(child.info.run_id)
    after_delete = len(client.search_runs([run.info.experiment_id]))
    client.restore_run(child.info.run_id)
    print(json.dumps({
        "parent": parent.info.run_id,
        "child": child.info.run_id,
        "failed": failed.info.run_id,
        "status": run.info.status,
        "name": run.info.run_name,
        "params": run.data.params,
        "metrics": {k: (None if math.isnan(v) else v) for k, v in run.data.metrics.items()},
        "tags": {k: v for k, v in run.data.tags.items() if k in ("team", "stage",
                 "mlflow.note.content", "mlflow.runName")},
        "history": [len(history), history[0].step, history[-1].value, history[1].timestamp],
        "found": [r.info.run_id for r in found],
        "ordered": [r.info.run_id for r in ordered],
        "pages": [[r.info.run_id for r in paged], [r.info.run_id for r in rest], rest.token],
        "frame": [len(frame), sorted(c for c in frame.columns if c.startswith("metrics."))],
        "after_delete": after_delete,
        "changed": changed,
        "missing": missing,
        "loss_history": [m.value for m in client.get_metric_history(parent.info.run_id, "loss")],
    }))
"""


def test_fluent_and_client_logging_round_trips_and_is_chachaml_data(
    server: ServeProcess, store_url: str
) -> None:
    got = run_client(FLUENT, {"MLFLOW_TRACKING_URI": server.url})
    parent, child, failed = got["parent"], got["child"], got["failed"]
    assert len(parent) == 32 and all(c in "0123456789abcdef" for c in parent)
    assert got["status"] == "FINISHED" and got["name"] == "parent"
    assert got["params"] == {"lr": "0.01", "depth": "4", "optimizer": "adam", "seed": "7"}
    assert got["metrics"] == {"loss": 0.2, "acc": 0.9, "f1": None, "batch": 2999.0}
    assert got["tags"] == {
        "team": "vision", "stage": "done", "mlflow.note.content": "first try",
        "mlflow.runName": "parent",
    }  # fmt: skip
    assert got["history"] == [3000, 0, 2999.0, 1_750_000_000_001]
    assert got["loss_history"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert got["found"] == [parent]
    assert got["ordered"] == [failed, parent, child]
    first, second, token = got["pages"]
    assert first == [parent, child] and second == [failed] and token is None
    assert got["frame"][0] == 3
    assert got["frame"][1] == ["metrics.acc", "metrics.batch", "metrics.f1", "metrics.loss"]
    assert got["after_delete"] == 2
    assert got["changed"] == "INVALID_PARAMETER_VALUE"
    assert got["missing"] == "RESOURCE_DOES_NOT_EXIST"

    async def native() -> None:  # what MCP tools, the UI and the Python API read
        store = await open_store(store_url)
        try:
            run = await run_ops.get_run(store, parent)
            assert (run.experiment, run.name, run.status) == ("mlflow-users", "parent", "completed")
            assert run.note == "first try"
            assert run.created_by == getpass.getuser()  # MLflow's mlflow.user, without tokens
            assert run.children == [child]
            assert (await run_ops.get_run(store, child)).parent_id == parent
            assert (await run_ops.get_run(store, failed)).status == "failed"
            series = await run_ops.metric_history(store, parent, "batch")
            assert len(series.steps) == 3000 and series.values[-1] == 2999.0
            best = await run_ops.best_run(store, "acc", experiment="mlflow-users")
            assert best is not None and best.run.id == child
        finally:
            await store.close()

    anyio.run(native)


NATIVE_READ = """
    import json
    from mlflow import MlflowClient
    client = MlflowClient()
    exp = client.get_experiment_by_name("native")
    run = client.get_run("{run_id}")
    runs = client.search_runs([exp.experiment_id], filter_string="metrics.acc >= 0.5")
    print(json.dumps({{
        "experiment": [exp.name, exp.experiment_id == run.info.experiment_id],
        "name": run.info.run_name, "user": run.info.user_id, "status": run.info.status,
        "params": run.data.params, "metrics": run.data.metrics,
        "history": [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "acc")],
        "found": [r.info.run_id for r in runs],
    }}))
"""


def test_a_natively_logged_run_reads_through_the_mlflow_client(
    server: ServeProcess, store_url: str
) -> None:
    async def log_natively() -> str:
        store = await open_store(store_url)
        try:
            new = run_ops.new_run("native", "logged-by-chachaml", created_by="ana")
            await run_ops.start_run(store, new, {"lr": 0.1, "layers": 3, "fast": True})
            from chachaml.store.codec import make_chunk

            points = [(0, 0.25, 1.0), (1, 0.5, 2.0), (2, 0.75, 3.0)]
            await store.log_metrics([make_chunk(new.id, "acc", points)])
            await run_ops.end_run(store, new.id, "completed")
            return new.id
        finally:
            await store.close()

    run_id = anyio.run(log_natively)
    got = run_client(NATIVE_READ.format(run_id=run_id), {"MLFLOW_TRACKING_URI": server.url})
    assert got["experiment"] == ["native", True]
    assert (got["name"], got["user"], got["status"]) == ("logged-by-chachaml", "ana", "FINISHED")
    assert got["params"] == {"lr": "0.1", "layers": "3", "fast": "True"}
    assert got["metrics"] == {"acc": 0.75}
    assert got["history"] == [[0, 0.25], [1, 0.5], [2, 0.75]]
    assert got["found"] == [run_id]


TEAM = """
    import json
    import mlflow
    mlflow.set_experiment("team")
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5)
    print(json.dumps({"user": mlflow.get_run(run.info.run_id).info.user_id}))
"""

ANONYMOUS = """
    import json
    import mlflow
    try:
        mlflow.search_experiments()
        print(json.dumps("no error"))
    except mlflow.exceptions.MlflowException as exc:
        print(json.dumps(exc.error_code))
"""


def test_team_mode_takes_mlflow_tracking_token(store_url: str, tmp_path: Path) -> None:
    proc = ServeProcess(store_url, tmp_path / "artifacts", {"CHACHAML_TOKENS": "ada:ada-secret"})
    proc.start()
    try:
        env = {"MLFLOW_TRACKING_URI": proc.url}
        got = run_client(TEAM, env | {"MLFLOW_TRACKING_TOKEN": "ada-secret"})
        assert got == {"user": "ada"}
        assert run_client(ANONYMOUS, env) == "UNAUTHENTICATED"
        wrong = run_client(ANONYMOUS, env | {"MLFLOW_TRACKING_TOKEN": "nope"})
        assert wrong == "UNAUTHENTICATED"
    finally:
        proc.stop()

"""The real ``mlflow`` client, unmodified, against a real ``chachaml serve`` (issue 19).

Only ``MLFLOW_TRACKING_URI`` (and, in team mode, ``MLFLOW_TRACKING_TOKEN``) points it at
chachaml. Each protocol test runs on SQLite and on PostgreSQL (scikit-learn autologging, an
integration rather than a protocol group, on SQLite). The client runs in a child process so
that its settings (environment, module state) never leak into other tests.
"""

from __future__ import annotations

import getpass
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chachaml.store import open_store
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import metrics as metric_ops
from chachaml.tools import runs as run_ops
from tests.support.fork_scripts import ONE_WORKER, shared_runner
from tests.support.fork_server import ServerFactory
from tests.support.schema_pool import SchemaPool
from tests.support.serve_proc import ServeProcess

pytestmark = ONE_WORKER


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, schema_pool: SchemaPool
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chachaml.db'}"
    else:
        with schema_pool.schema() as url:
            yield url


@pytest.fixture
def server(store_url: str, tmp_path: Path, server_factory: ServerFactory) -> Iterator[ServeProcess]:
    env = {"CHACHAML_USER": "keyboard"}
    proc = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def run_client(script: str, env: dict[str, str]) -> Any:
    """Run an MLflow client script in a child process; returns what it printed as JSON.

    The child is forked from a helper that has imported ``mlflow`` already (no import cost).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHACHAML_"))}
    done = shared_runner().run(
        textwrap.dedent(script),
        clean | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **env},
        timeout=300,  # the autolog round trip alone is ~45 s on an idle 2-core box
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
    workspaces = client._tracking_client.store.supports_workspaces  # MLflow 3's server-info
    print(json.dumps({
        "workspaces": workspaces,
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
    assert got["workspaces"] is False  # server-info answered (a 404 made the client raise)

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
            series = await metric_ops.metric_history(store, parent, "batch")
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
    import json, os
    import mlflow

    def refusal():
        try:
            mlflow.search_experiments()
            return "no error"
        except mlflow.exceptions.MlflowException as exc:
            return exc.error_code

    # MLflow reads the token from the environment at every request
    os.environ["MLFLOW_TRACKING_TOKEN"] = "ada-secret"
    mlflow.set_experiment("team")
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5)
    user = mlflow.get_run(run.info.run_id).info.user_id
    del os.environ["MLFLOW_TRACKING_TOKEN"]
    anonymous = refusal()
    os.environ["MLFLOW_TRACKING_TOKEN"] = "nope"
    print(json.dumps({"user": user, "anonymous": anonymous, "wrong": refusal()}))
"""


def test_team_mode_takes_mlflow_tracking_token(
    store_url: str, tmp_path: Path, server_factory: ServerFactory
) -> None:
    env = {"CHACHAML_TOKENS": "ada:ada-secret"}
    proc = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    proc.start()
    try:
        got = run_client(TEAM, {"MLFLOW_TRACKING_URI": proc.url})
        assert got == {"user": "ada", "anonymous": "UNAUTHENTICATED", "wrong": "UNAUTHENTICATED"}
    finally:
        proc.stop()


ARTIFACTS_AND_MODELS = """
    import json, os, tempfile
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient()
    mlflow.set_experiment("artifacts")
    X, y = load_iris(return_X_y=True)
    with mlflow.start_run() as run:
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, "a.txt"), "w") as fh:
            fh.write("hello")
        os.makedirs(os.path.join(folder, "sub", "deep"))
        with open(os.path.join(folder, "sub", "deep", "b.csv"), "w") as fh:
            fh.write("x,y\\n1,2\\n")
        mlflow.log_artifact(os.path.join(folder, "a.txt"))
        mlflow.log_artifacts(folder, artifact_path="tree")
        mlflow.log_dict({"k": [1, 2]}, "conf/d.json")
        mlflow.log_text("some text", "notes/t.txt")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        mlflow.log_figure(fig, "plots/fig.png")
        mlflow.log_metric("acc", 0.5)
        clf = LogisticRegression(max_iter=300).fit(X, y)
        # given requirements: inferring them costs a 15 s subprocess (autolog below infers)
        info = mlflow.sklearn.log_model(clf, name="model", pip_requirements=["scikit-learn"])
    rid = run.info.run_id
    by_run = mlflow.sklearn.load_model(f"runs:/{rid}/model")
    by_id = mlflow.sklearn.load_model(f"models:/{info.model_id}")
    logged = client.get_logged_model(info.model_id)
    found = client.search_logged_models([run.info.experiment_id], filter_string="name = 'model'")
    download = mlflow.artifacts.download_artifacts(f"runs:/{rid}/tree")
    deep = "tree/sub/deep"
    print(json.dumps({
        "run": rid,
        "artifact_uri": run.info.artifact_uri,
        "top": [(f.path, f.is_dir) for f in client.list_artifacts(rid)],
        "nested": [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(rid, deep)],
        "text": mlflow.artifacts.load_text(f"runs:/{rid}/notes/t.txt"),
        "dict": mlflow.artifacts.load_dict(f"runs:/{rid}/conf/d.json"),
        "downloaded": sorted(
            os.path.relpath(os.path.join(d, f), download)
            for d, _, fs in os.walk(download) for f in fs
        ),
        "model_id": info.model_id,
        "model": [logged.name, logged.source_run_id, str(logged.status), logged.artifact_location],
        "found": [m.model_id for m in found],
        "same": [bool((by_run.predict(X) == clf.predict(X)).all()),
                 bool((by_id.predict(X) == clf.predict(X)).all())],
        "acc_history": [(m.step, m.value) for m in client.get_metric_history(rid, "acc")],
    }))
"""

AUTOLOG = """
    import json
    import mlflow
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient()
    X, y = load_iris(return_X_y=True)
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog()
    auto = LogisticRegression(max_iter=300, C=0.5).fit(X, y)
    auto_run = mlflow.last_active_run()
    auto_data = client.get_run(auto_run.info.run_id).data
    reloaded = mlflow.sklearn.load_model(f"runs:/{auto_run.info.run_id}/model")
    print(json.dumps({
        "auto_run": auto_run.info.run_id,
        "auto_params": {k: auto_data.params[k] for k in ("C", "max_iter")},
        "auto_metrics": sorted(auto_data.metrics),
        "auto_same": bool((reloaded.predict(X) == auto.predict(X)).all()),
        "auto_files": sorted(f.path for f in client.list_artifacts(auto_run.info.run_id)),
    }))
"""


def test_artifacts_and_logged_models_round_trip(server: ServeProcess, store_url: str) -> None:
    got = run_client(ARTIFACTS_AND_MODELS, {"MLFLOW_TRACKING_URI": server.url})
    rid = got["run"]
    assert got["artifact_uri"].startswith("mlflow-artifacts:/")
    assert got["top"] == [["a.txt", False], ["conf", True], ["model", True], ["notes", True],
                          ["plots", True], ["tree", True]]  # fmt: skip
    assert got["nested"] == [["tree/sub/deep/b.csv", False, 8]]
    assert (got["text"], got["dict"]) == ("some text", {"k": [1, 2]})
    assert got["downloaded"] == ["a.txt", "sub/deep/b.csv"]
    model_id = got["model_id"]
    name, source, status, location = got["model"]
    assert (name, source, status) == ("model", rid, "READY")
    assert location.endswith(f"/{rid}/artifacts/model")
    assert got["found"] == [model_id]
    assert got["same"] == [True, True]
    assert got["acc_history"] == [[0, 0.5]]  # log_model's model-linked copy is not a new point

    async def native() -> None:  # chachaml's own listing, best_run and load_artifact see it all
        store = await open_store(store_url)
        try:
            names = {a.name for a in await artifact_ops.list_artifacts(store, rid)}
            assert {"a.txt", "tree/sub/deep/b.csv", "conf/d.json", "notes/t.txt",
                    "plots/fig.png", "model/MLmodel"} <= names  # fmt: skip
            assert f".mlflow/logged-models/{model_id}.json" in names
            art = await store.get_artifact(rid, "plots/fig.png")
            assert art.content_type == "image/png" and art.size > 1000
        finally:
            await store.close()

    anyio.run(native)


# An integration, not a protocol group: it needs no second database, and its requirements
# inference (a subprocess importing scikit-learn again) makes it the costliest client script.
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sklearn_autologging_round_trip(server: ServeProcess, store_url: str) -> None:
    got = run_client(AUTOLOG, {"MLFLOW_TRACKING_URI": server.url})
    auto = got["auto_run"]
    assert got["auto_params"] == {"C": "0.5", "max_iter": "300"}
    assert "training_accuracy_score" in got["auto_metrics"]
    assert got["auto_same"] is True
    assert {"model", "estimator.html", "training_confusion_matrix.png"} <= set(got["auto_files"])

    async def native() -> None:  # chachaml's own run, best_run and artifacts see it all
        store = await open_store(store_url)
        try:
            run = await run_ops.get_run(store, auto)
            assert run.experiment == "autolog" and run.status == "completed"
            assert run.params["C"] == "0.5"
            best = await run_ops.best_run(store, "training_accuracy_score", experiment="autolog")
            assert best is not None and best.run.id == auto
            assert "model/model.pkl" in {a.name for a in run.artifacts}
        finally:
            await store.close()

    anyio.run(native)


TEAM_ARTIFACTS = """
    import json, os
    import mlflow
    from mlflow import MlflowClient
    mlflow.set_experiment("team-artifacts")
    with mlflow.start_run() as run:  # as ada: a write token
        mlflow.log_text("from ada", "w.txt")
    os.environ["MLFLOW_TRACKING_TOKEN"] = "rita-secret"  # read per request: now rita, read only
    try:
        MlflowClient().log_text(run.info.run_id, "from a reader", "r.txt")
        refused = "no error"
    except Exception as exc:
        refused = str(exc)[:300]
    files = [f.path for f in MlflowClient().list_artifacts(run.info.run_id)]
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/w.txt")
    print(json.dumps({"refused": refused, "files": files, "text": text}))
"""


def test_team_mode_artifact_uploads_need_a_write_token(
    store_url: str, tmp_path: Path, server_factory: ServerFactory
) -> None:
    tokens = "ada:ada-secret,rita:rita-secret:read"
    env = {"CHACHAML_TOKENS": tokens}
    proc = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    proc.start()
    try:
        env = {"MLFLOW_TRACKING_URI": proc.url, "MLFLOW_TRACKING_TOKEN": "ada-secret"}
        got = run_client(TEAM_ARTIFACTS, env)
    finally:
        proc.stop()
    assert "403" in got["refused"] and "rita" in got["refused"], got
    assert (got["files"], got["text"]) == (["w.txt"], "from ada")


REPLICAS = """
    import json
    from mlflow import MlflowClient
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    a, b = MlflowClient("{a}"), MlflowClient("{b}")
    out = {{}}
    exp_id = a.create_experiment("before", tags={{"team": "vision"}})
    run_id = a.create_run(exp_id).info.run_id
    a.log_metric(run_id, "acc", 0.25, step=1)
    a.log_metric(run_id, "acc", 0.75, step=3, timestamp=1_750_000_000_123)
    a.set_terminated(run_id)
    b.get_experiment_by_name("before")  # the second replica reads it before the rename
    b.search_runs([exp_id], order_by=["metrics.acc DESC"])
    a.rename_experiment(exp_id, "after")
    out["renamed"] = [b.get_experiment(exp_id).name, b.get_experiment_by_name("before"),
                      b.get_experiment_by_name("after").experiment_id == exp_id]
    a.set_experiment_tag(exp_id, "stage", "dev")
    a.delete_experiment_tag(exp_id, "team")
    out["tags"] = b.get_experiment(exp_id).tags
    (found,) = b.search_runs([exp_id], order_by=["metrics.acc DESC"])
    out["latest"] = [(m.key, m.value, m.step, m.timestamp) for m in found.data._metric_objs]
    a.delete_experiment(exp_id)
    out["deleted"] = [
        b.get_experiment(exp_id).lifecycle_stage,
        [e.name for e in b.search_experiments()],
        [e.name for e in b.search_experiments(view_type=ViewType.DELETED_ONLY)],
        len(b.search_runs([exp_id])),
        len(b.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)),
    ]
    try:
        b.create_experiment("after")
    except MlflowException as exc:
        out["name_reuse"] = exc.error_code
    try:
        b.create_run(exp_id)
    except MlflowException as exc:
        out["log_into_deleted"] = exc.error_code
    b.restore_experiment(exp_id)
    out["restored"] = [a.get_experiment(exp_id).lifecycle_stage, len(a.search_runs([exp_id]))]
    print(json.dumps(out))
"""


def test_experiments_change_on_one_replica_and_read_at_once_on_another(
    server: ServeProcess, store_url: str, tmp_path: Path, server_factory: ServerFactory
) -> None:
    env = {"CHACHAML_USER": "keyboard"}
    other = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    other.start()
    try:
        got = run_client(REPLICAS.format(a=server.url, b=other.url), {})
    finally:
        other.stop()
    assert got["renamed"] == ["after", None, True]
    assert got["tags"] == {"stage": "dev"}
    assert got["latest"] == [["acc", 0.75, 3, 1_750_000_000_123]]
    stage, active, deleted, runs, deleted_runs = got["deleted"]
    assert (stage, deleted, runs, deleted_runs) == ("deleted", ["after"], 0, 1)
    assert "after" not in active
    assert got["name_reuse"] == "RESOURCE_ALREADY_EXISTS"
    assert got["log_into_deleted"] == "INVALID_PARAMETER_VALUE"
    assert got["restored"] == ["active", 1]

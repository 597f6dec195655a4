"""The real ``mlflow`` client registers MLflow 3 logged models in chachaml and loads them back.

``mlflow.sklearn.log_model`` makes a logged model on the run; ``mlflow.register_model`` takes
it by ``runs:/<run>/model`` or by MLflow 3's ``models:/<model id>``, and
``mlflow.pyfunc.load_model`` loads every registry URI (version, alias, stage) through
``get_model_version_download_uri`` and the artifact proxy. On SQLite and PostgreSQL; the
server, store and client-runner fixtures are those of ``test_mlflow_client``.
"""

from __future__ import annotations

import anyio

from chachaml.store import open_store
from chachaml.tools import registry as registry_ops
from tests.e2e.test_mlflow_client import run_client, server, store_url  # noqa: F401 (fixtures)
from tests.support.fork_scripts import ONE_WORKER
from tests.support.serve_proc import ServeProcess

pytestmark = ONE_WORKER

CLIENT = """
    import json
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    client = MlflowClient()
    mlflow.set_experiment("registered")
    with mlflow.start_run() as run:
        clf = LogisticRegression().fit(X, y)
        # given requirements: inferring them costs a 15 s subprocess
        info = mlflow.sklearn.log_model(clf, name="model", pip_requirements=["scikit-learn"])
    rid = run.info.run_id
    by_run = mlflow.register_model(f"runs:/{rid}/model", "by-run")
    by_id = mlflow.register_model(f"models:/{info.model_id}", "by-id")
    client.set_registered_model_alias("by-id", "champion", "1")
    client.transition_model_version_stage("by-id", "1", "Production")
    try:
        client.create_model_version("by-id", f"models:/{info.model_id}", run_id="0" * 32)
        wrong_run = "no error"
    except MlflowException as exc:
        wrong_run = exc.error_code
    try:
        mlflow.register_model("models:/m-" + "0" * 32 + "-00000000", "by-id")
        missing = "no error"
    except MlflowException as exc:
        missing = exc.error_code
    want = clf.predict(X).tolist()
    loaded = {
        uri: mlflow.pyfunc.load_model(uri).predict(X).tolist() == want
        for uri in ("models:/by-run/1", "models:/by-id/1", "models:/by-id@champion",
                    "models:/by-id/Production", "models:/by-id/latest")
    }
    print(json.dumps({
        "run": rid,
        "model_id": info.model_id,
        "by_run": [by_run.version, by_run.run_id, by_run.source],
        "by_id": [by_id.version, by_id.run_id, by_id.source],
        "uris": [client.get_model_version_download_uri("by-run", "1"),
                 client.get_model_version_download_uri("by-id", "1")],
        "errors": [wrong_run, missing],
        "loaded": loaded,
    }))
"""


def test_logged_models_register_by_run_or_model_id_and_load_by_every_registry_uri(
    server: ServeProcess,  # noqa: F811 (a fixture)
    store_url: str,  # noqa: F811 (a fixture)
) -> None:
    got = run_client(CLIENT, {"MLFLOW_TRACKING_URI": server.url})
    rid, model_id = got["run"], got["model_id"]
    folder = got["uris"][0]
    assert folder.startswith("mlflow-artifacts:/") and folder.endswith(f"/{rid}/artifacts/model")
    assert got["by_run"] == ["1", rid, folder]  # the client sends the folder's proxy URI
    assert got["by_id"] == ["1", rid, f"models:/{model_id}"]  # MLflow 3's default source
    assert got["uris"] == [folder, folder]  # a logged model's version: its folder on the run
    assert got["errors"] == ["INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"]
    assert got["loaded"] == dict.fromkeys(got["loaded"], True) and len(got["loaded"]) == 5

    async def native() -> None:  # chachaml's registry holds them as versions of the run
        store = await open_store(store_url)
        try:
            model = await registry_ops.get_model(store, "by-id")
            (version,) = model.versions
            assert (version.run_id, version.artifact, version.stage) == (
                rid, "model", "production",
            )  # fmt: skip
            assert model.aliases == {"champion": 1}
            assert version.metrics == {}  # the run logged no metric
        finally:
            await store.close()

    anyio.run(native)

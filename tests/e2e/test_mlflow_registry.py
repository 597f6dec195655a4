"""The real ``mlflow`` client's model registry calls against a real ``chachaml serve`` (issue 19).

On SQLite and PostgreSQL, with only ``MLFLOW_TRACKING_URI`` pointing the client at chachaml:
registered models and versions made through ``MlflowClient`` (and ``mlflow.register_model``)
are chachaml's models, and models registered natively read back through the client. The
server, store and client-runner fixtures are those of ``test_mlflow_client``.
"""

from __future__ import annotations

import anyio

from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops
from tests.e2e.test_mlflow_client import run_client, server, store_url  # noqa: F401 (fixtures)
from tests.support.fork_scripts import ONE_WORKER
from tests.support.serve_proc import ServeProcess

pytestmark = ONE_WORKER

CLIENT = """
    import json
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    def code(call, *args, **kwargs):
        try:
            call(*args, **kwargs)
            return "no error"
        except MlflowException as exc:
            return exc.error_code

    client = MlflowClient()
    mlflow.set_experiment("registry")
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.9)
    rid = run.info.run_id
    made = client.create_registered_model("mlflow-model", tags={"task": "digits"},
                                          description="# Digits")
    dup = code(client.create_registered_model, "mlflow-model")
    missing = code(client.get_registered_model, "nope")
    source = f"runs:/{rid}/model"
    v1 = client.create_model_version("mlflow-model", source, rid, tags={"k": "v"},
                                     description="first")
    v2 = client.create_model_version("mlflow-model", source, rid)
    v3 = client.create_model_version("mlflow-model", source, rid)
    client.transition_model_version_stage("mlflow-model", "1", "Staging")
    client.transition_model_version_stage("mlflow-model", "2", "Staging",
                                          archive_existing_versions=True)
    client.transition_model_version_stage("mlflow-model", "1", "Production")
    client.transition_model_version_stage("mlflow-model", 3, "production")
    stages = {v.version: v.current_stage
              for v in client.search_model_versions("name = 'mlflow-model'")}
    bad_stage = code(client.transition_model_version_stage, "mlflow-model", "1", "Prod")
    latest = [(v.version, v.current_stage)
              for v in client.get_latest_versions("mlflow-model", stages=["Production"])]
    client.set_registered_model_alias("mlflow-model", "champion", "3")
    by_alias = client.get_model_version_by_alias("mlflow-model", "champion")
    client.set_registered_model_tag("mlflow-model", "owner", "ml")
    client.delete_registered_model_tag("mlflow-model", "task")
    client.set_model_version_tag("mlflow-model", "3", "checked", "yes")
    client.delete_model_version_tag("mlflow-model", "1", "k")
    client.update_registered_model("mlflow-model", description="# Digits v2")
    client.update_model_version("mlflow-model", "3", description="the best")
    uri = client.get_model_version_download_uri("mlflow-model", "3")
    copied = mlflow.register_model("models:/mlflow-model/3", "mlflow-copy")
    client.delete_model_version("mlflow-model", "2")
    v4 = client.create_model_version("mlflow-model", source, rid)
    got = client.get_registered_model("mlflow-model")
    pages = client.search_registered_models(max_results=2)
    rest = client.search_registered_models(max_results=2, page_token=pages.token)
    native = client.get_registered_model("native-model")
    native_alias = client.get_model_version_by_alias("native-model", "champion")
    native_latest = client.get_latest_versions("native-model", stages=["Production"])
    native_uri = client.get_model_version_download_uri("native-model", "1")
    client.rename_registered_model("mlflow-copy", "mlflow-renamed")
    renamed = client.get_registered_model("mlflow-renamed")
    client.delete_registered_model("mlflow-renamed")
    gone = code(client.get_registered_model, "mlflow-renamed")
    print(json.dumps({
        "run": rid,
        "made": [made.name, made.description, made.tags],
        "errors": [dup, missing, bad_stage, gone],
        "versions": [v1.version, v2.version, v3.version, v4.version, v1.description,
                     v1.tags, v1.source, v1.run_id, v1.status],
        "stages": stages,
        "latest": latest,
        "alias": [by_alias.version, list(by_alias.aliases)],
        "uri": uri,
        "copied": [copied.name, copied.version, copied.source, copied.run_id],
        "got": [got.description, got.tags, got.aliases,
                sorted((v.version, v.current_stage) for v in got.latest_versions)],
        "pages": [[m.name for m in pages], [m.name for m in rest], rest.token],
        "native": [native.description, native.tags, native.aliases,
                   native_alias.version, native_alias.source, native_alias.run_id,
                   [v.version for v in native_latest], native_uri],
        "renamed": [renamed.name, [v.source for v in renamed.latest_versions]],
    }))
"""


def test_the_mlflow_client_drives_chachamls_registry_both_ways(
    server: ServeProcess,  # noqa: F811 (a fixture)
    store_url: str,  # noqa: F811 (a fixture)
) -> None:
    async def register_natively() -> str:
        store = await open_store(store_url)
        artifacts = open_artifact_store(str(server.artifacts))
        try:
            new = run_ops.new_run("native", "trained-natively", created_by="ana")
            await run_ops.start_run(store, new, {"lr": 0.1})
            await artifact_ops.put_bytes(store, artifacts, new.id, "model.pkl", b"weights",
                                         content_type="application/octet-stream",
                                         serializer="bytes")  # fmt: skip
            await run_ops.end_run(store, new.id, "completed")
            await registry_ops.register_model(store, "native-model", new.id, "model.pkl", "ana")
            await registry_ops.promote(store, "native-model", 1, "production", "ana")
            await registry_ops.set_alias(store, "native-model", "champion", 1, "ana")
            await registry_ops.set_model_tags(store, "native-model", {"team": "core"})
            await registry_ops.set_model_note(store, "native-model", "# Native")
            return new.id
        finally:
            await store.close()

    native_run = anyio.run(register_natively)
    got = run_client(CLIENT, {"MLFLOW_TRACKING_URI": server.url})
    rid = got["run"]
    assert got["made"] == ["mlflow-model", "# Digits", {"task": "digits"}]
    assert got["errors"] == [
        "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE",
        "RESOURCE_DOES_NOT_EXIST",
    ]  # fmt: skip
    assert got["versions"] == [
        "1", "2", "3", "4", "first", {"k": "v"}, f"runs:/{rid}/model", rid, "READY",
    ]  # fmt: skip
    # v2 archived v1 out of staging; v3 into production archived v1 (one production version)
    assert got["stages"] == {"3": "Production", "2": "Staging", "1": "Archived"}
    assert got["latest"] == [["3", "Production"]]
    assert got["alias"] == ["3", ["champion"]]
    assert got["uri"] == f"runs:/{rid}/model"
    assert got["copied"] == ["mlflow-copy", "1", f"runs:/{rid}/model", rid]
    assert got["got"] == [
        "# Digits v2", {"owner": "ml"}, {"champion": "3"},
        [["1", "Archived"], ["3", "Production"], ["4", "None"]],
    ]  # fmt: skip
    assert got["pages"] == [["mlflow-copy", "mlflow-model"], ["native-model"], ""]
    native_source = f"runs:/{native_run}/model.pkl"
    assert got["native"] == [
        "# Native", {"team": "core"}, {"champion": "1"}, "1", native_source, native_run, ["1"],
        native_source,
    ]  # fmt: skip
    assert got["renamed"] == ["mlflow-renamed", [f"runs:/{rid}/model"]]

    async def read_natively() -> None:  # what MCP tools, the UI and the Python API read
        store = await open_store(store_url)
        try:
            model = await registry_ops.get_model(store, "mlflow-model")
            assert (model.note, model.tags, model.aliases) == (
                "# Digits v2", {"owner": "ml"}, {"champion": 3},
            )  # fmt: skip
            assert model.production_version == 3
            stages = {v.version: v.stage for v in model.versions}
            assert stages == {4: "none", 3: "production", 1: "archived"}
            best = model.versions[1]
            assert (best.description, best.tags, best.run_id) == (
                "the best",
                {"checked": "yes"},
                rid,
            )
            assert best.metrics == {"acc": 0.9}
            names = {m.name for m in await registry_ops.list_models(store)}
            assert names == {"mlflow-model", "native-model"}
        finally:
            await store.close()

    anyio.run(read_natively)

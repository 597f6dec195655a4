"""MLflow 3's logged models in process: create, get, finalize, tags, params, search, outputs.

The real client logs and loads models in ``tests/e2e/test_mlflow_client.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chachaml.store import ServerStore
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import runs as run_ops
from tests.support.mcp_seed import MID, OLD, open_seeded
from tests.support.mlflow_app import serving

pytestmark = pytest.mark.anyio
API = "/api/2.0/mlflow"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    async with open_seeded(tmp_path) as opened:
        yield opened


@pytest.fixture
async def web(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(store, tmp_path) as client:
        yield client


async def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def exp_of(web: httpx.AsyncClient, run_id: str) -> str:
    got = await ok(await web.get(f"{API}/runs/get?run_id={run_id}"))
    exp_id: str = got["run"]["info"]["experiment_id"]
    return exp_id


async def create(web: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    model: dict[str, Any] = (await ok(await web.post(f"{API}/logged-models", json=body)))["model"]
    return model


def pairs(items: list[dict[str, str]]) -> dict[str, str]:
    return {p["key"]: p["value"] for p in items}


async def test_a_model_lives_on_its_run_and_reads_back(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    exp_id = await exp_of(web, MID)
    model = await create(web, experiment_id=exp_id, name="clf", source_run_id=MID,
                         model_type="sklearn", params=[{"key": "C", "value": "0.5"}],
                         tags=[{"key": "mlflow.user", "value": "ada"}])  # fmt: skip
    info = model["info"]
    model_id = info["model_id"]
    assert model_id.startswith(f"m-{MID}-")
    assert info["status"] == "LOGGED_MODEL_PENDING" and info["source_run_id"] == MID
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{MID}/artifacts/clf"
    assert pairs(model["data"]["params"]) == {"C": "0.5"}
    assert {m["key"] for m in model["data"]["metrics"]} >= {"acc"}  # its run's metrics

    # the client uploads the model's files through the proxy: they are the run's artifacts
    folder = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    assert (await web.put(f"{PROXY}/{folder}/MLmodel", content=b"flavors: {}")).status_code == 200
    names = {a.name for a in await artifact_ops.list_artifacts(store, MID)}
    assert "clf/MLmodel" in names
    assert f".mlflow/logged-models/{model_id}.json" in names  # its record
    assert (await run_ops.get_run(store, MID)).tags[f"mlflow.loggedModel.{model_id}"] == "clf"
    root = await ok(await web.get(PROXY, params={"path": f"{exp_id}/{MID}/artifacts"}))
    assert ".mlflow" not in {f["path"] for f in root["files"]}  # MLflow sees its own files

    ready = {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
    finalized = await web.patch(f"{API}/logged-models/{model_id}", json=ready)
    assert (await ok(finalized))["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    tags = {"model_id": model_id, "tags": [{"key": "stage", "value": "try"}]}
    await ok(await web.patch(f"{API}/logged-models/{model_id}/tags", json=tags))
    await ok(await web.delete(f"{API}/logged-models/{model_id}/tags/mlflow.user"))
    params = {"model_id": model_id, "params": [{"key": "penalty", "value": "l2"}]}
    await ok(await web.post(f"{API}/logged-models/{model_id}/params", json=params))
    got = (await ok(await web.get(f"{API}/logged-models/{model_id}")))["model"]
    assert pairs(got["info"]["tags"]) == {"stage": "try"}
    assert pairs(got["data"]["params"]) == {"C": "0.5", "penalty": "l2"}
    assert got["info"]["last_updated_timestamp_ms"] >= info["creation_timestamp_ms"]
    outputs = {"run_id": MID, "models": [{"model_id": model_id, "step": 0}]}
    await ok(await web.post(f"{API}/runs/outputs", json=outputs))


async def test_a_model_logged_outside_a_run_gets_a_run_of_its_own(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    model = await create(web, experiment_id="0", name="loose")
    model_id, where = model["info"]["model_id"], model["info"]["artifact_uri"]
    assert "source_run_id" not in model["info"]  # as MLflow says of an external model
    run_id = where.removeprefix("mlflow-artifacts:/").split("/")[1]
    holder = await run_ops.get_run(store, run_id)
    assert (holder.experiment, holder.name, holder.status) == ("default", "loose", "running")
    failed = {"model_id": model_id, "status": 3}  # protobuf's number: UPLOAD_FAILED
    answer = await ok(await web.patch(f"{API}/logged-models/{model_id}", json=failed))
    assert answer["model"]["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"
    assert (await run_ops.get_run(store, run_id)).status == "failed"


async def test_search_filters_orders_and_pages(web: httpx.AsyncClient) -> None:
    exp_id = await exp_of(web, MID)
    made = [
        await create(
            web,
            experiment_id=exp_id,
            name=name,
            source_run_id=run,
            params=[{"key": "depth", "value": depth}],
        )
        for name, run, depth in [("model", MID, "3"), ("model", OLD, "5"), ("scaler", MID, "1")]
    ]
    ids = [m["info"]["model_id"] for m in made]

    async def search(**body: Any) -> dict[str, Any]:
        return await ok(await web.post(f"{API}/logged-models/search",
                                       json={"experiment_ids": [exp_id], **body}))  # fmt: skip

    def found(answer: dict[str, Any]) -> list[str]:
        return [m["info"]["model_id"] for m in answer["models"]]

    assert found(await search()) == ids[::-1]  # newest first
    assert found(await search(filter="name = 'model'")) == [ids[1], ids[0]]
    both = f"name = 'model' AND source_run_id = '{OLD}'"
    assert found(await search(filter=both)) == [ids[1]]
    assert found(await search(filter="params.depth = '1'")) == [ids[2]]
    assert found(await search(filter="status = 'PENDING'", max_results=10)) == ids[::-1]
    assert found(await search(filter="status = 'LOGGED_MODEL_READY'")) == []
    by_name = [{"field_name": "name"}, {"field_name": "creation_timestamp", "ascending": True}]
    ordered = await search(order_by=by_name)
    assert found(ordered) == [ids[0], ids[1], ids[2]]
    first = await search(max_results=2)
    rest = await search(max_results=2, page_token=first["next_page_token"])
    assert found(first) + found(rest) == ids[::-1] and "next_page_token" not in rest
    # a deleted model leaves searches; get answers only when asked for deleted ones
    await ok(await web.delete(f"{API}/logged-models/{ids[0]}"))
    assert found(await search(filter="name = 'model'")) == [ids[1]]
    gone = await web.get(f"{API}/logged-models/{ids[0]}")
    assert (gone.status_code, gone.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    kept = await ok(await web.get(f"{API}/logged-models/{ids[0]}?allow_deleted=true"))
    assert kept["model"]["info"]["name"] == "model"


async def test_bad_input_is_a_clear_mlflow_error(web: httpx.AsyncClient) -> None:
    exp_id = await exp_of(web, MID)
    cases = [
        (web.get(f"{API}/logged-models/m-{'0' * 32}-00000000"), 404),
        (web.get(f"{API}/logged-models/not-a-model"), 404),
        (web.post(f"{API}/logged-models", json={"experiment_id": exp_id, "name": "a/b"}), 400),
        (web.post(f"{API}/logged-models", json={"experiment_id": exp_id, "name": "x@y"}), 400),
        (web.post(f"{API}/logged-models", json={"experiment_id": "999"}), 404),
        (web.post(f"{API}/logged-models",
                  json={"experiment_id": exp_id, "source_run_id": "0" * 32}), 404),
        (web.post(f"{API}/logged-models",
                  json={"experiment_id": "0", "source_run_id": MID}), 400),  # not its experiment
        (web.post(f"{API}/logged-models/search",
                  json={"experiment_ids": [exp_id], "filter": "name ="}), 400),
        (web.post(f"{API}/logged-models/search",
                  json={"experiment_ids": [exp_id], "datasets": [{"dataset_name": "d"}]}), 400),
        (web.post(f"{API}/runs/outputs",
                  json={"run_id": MID, "models": [{"model_id": f"m-{MID}-00000000"}]}), 404),
        (web.post(f"{API}/runs/log-model", json={"run_id": MID, "model_json": "{nope"}), 400),
        (web.post(f"{API}/runs/log-model", json={"run_id": "0" * 32, "model_json": "{}"}), 404),
    ]  # fmt: skip
    for pending, status in cases:
        answer = await pending
        assert answer.status_code == status, (answer.request.url, answer.text)
        assert set(answer.json()) == {"error_code", "message"}
    logged = await web.post(f"{API}/runs/log-model", json={"run_id": MID, "model_json": "{}"})
    assert logged.status_code == 200

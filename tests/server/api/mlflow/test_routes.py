"""MLflow's tracking protocol in process: shapes, errors, access, search and native data.

The app runs over the seeded store of ``tests/support/mcp_seed.py`` (runs logged natively),
driven with the JSON an MLflow client sends (``httpx.ASGITransport``). The real client is
driven against a real server in ``tests/e2e/test_mlflow_client.py``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from chachaml.server.access import AccessConfig
from chachaml.server.api.mlflow.metrics import Heartbeats
from chachaml.server.app import create_app
from chachaml.server.errors import MLFLOW_STATUS, is_mlflow
from chachaml.store import ServerStore
from chachaml.tools import metrics as metric_ops
from chachaml.tools import runs as run_ops
from tests.support.mcp_seed import IRIS, MID, NEW, OLD, open_seeded
from tests.support.mlflow_app import BASE, serving

pytestmark = pytest.mark.anyio
API = "/api/2.0/mlflow"
TOKEN = "ada-token"
READER = "rita-token"


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


async def mnist_id(web: httpx.AsyncClient) -> str:
    got = await ok(await web.get(f"{API}/experiments/get-by-name?experiment_name=mnist"))
    exp_id: str = got["experiment"]["experiment_id"]
    return exp_id


# -- errors: MLflow's shape and statuses, never an HTML page -----------------------------------


async def test_errors_take_mlflows_shape_and_status(web: httpx.AsyncClient) -> None:
    cases = [
        (web.get(f"{API}/runs/get?run_id={'0' * 32}"), 404, "RESOURCE_DOES_NOT_EXIST"),
        (web.get(f"{API}/experiments/get?experiment_id=999"), 404, "RESOURCE_DOES_NOT_EXIST"),
        (web.get(f"{API}/runs/get"), 400, "INVALID_PARAMETER_VALUE"),
        (web.post(f"{API}/runs/log-metric", json={"run_id": MID}), 400, "INVALID_PARAMETER_VALUE"),
        (web.post(f"{API}/experiments/create", json={"name": "mnist"}), 400,
         "RESOURCE_ALREADY_EXISTS"),
        (web.post(f"{API}/runs/no-such-thing", json={}), 404, "ENDPOINT_NOT_FOUND"),
        (web.get("/ajax-api/2.0/mlflow/nothing/here"), 404, "ENDPOINT_NOT_FOUND"),
        (web.get(f"{API}/runs/create"), 404, "ENDPOINT_NOT_FOUND"),  # wrong method
        (web.get(f"{API}/traces/x"), 501, "NOT_IMPLEMENTED"),
        (web.get("/api/3.0/mlflow/datasets/x"), 501, "NOT_IMPLEMENTED"),
        (web.get("/ajax-api/3.0/mlflow/nothing"), 404, "ENDPOINT_NOT_FOUND"),
        (web.post("/api/3.0/mlflow/server-info", json={}), 404, "ENDPOINT_NOT_FOUND"),
        (web.put("/api/2.0/mlflow-artifacts/artifacts/x", content=b"1"), 404,
         "RESOURCE_DOES_NOT_EXIST"),
        (web.post("/api/2.0/mlflow-artifacts/mpu/create/x", json={}), 501, "NOT_IMPLEMENTED"),
        (web.post(f"{API}/experiments/delete", json={"experiment_id": "999"}), 404,
         "RESOURCE_DOES_NOT_EXIST"),
        (web.post(f"{API}/runs/search", json={"filter": "metrics.acc >"}), 400,
         "INVALID_PARAMETER_VALUE"),
        (web.post(f"{API}/runs/search", content=b"{not json",
                  headers={"Content-Type": "application/json"}), 400, "INVALID_PARAMETER_VALUE"),
    ]  # fmt: skip
    for pending, status, code in cases:
        answer = await pending
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["error_code"] == code, body
        assert body["message"]


# GET searches whose parameters are all optional: a request without any is a search
NO_INPUT = ("/registered-models/search", "/model-versions/search")


def mlflow_routes(app: Starlette) -> list[tuple[str, str]]:
    return [
        (method, re.sub(r"\{\w+(:\w+)?\}", "x", route.path))
        for route in app.routes
        if isinstance(route, Route) and is_mlflow(route.path)
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]


def mlflow_error(answer: httpx.Response) -> None:
    assert answer.status_code >= 400, (answer.request.url, answer.status_code)
    body = answer.json()
    assert set(body) == {"error_code", "message"}, body
    assert MLFLOW_STATUS[body["error_code"]] == answer.status_code, body


async def test_every_mlflow_route_answers_errors_in_mlflows_shape(
    store: ServerStore, tmp_path: Path
) -> None:
    for access in (AccessConfig(), AccessConfig(tokens=(("ada", TOKEN),))):
        app = create_app(store, access=access)
        routes = mlflow_routes(app)
        assert len(routes) > 50  # both prefixes, every endpoint, the catch-alls
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as web:
            for method, path in routes:
                answer = await web.request(method, path, json=[1])  # never a valid body
                if path.endswith(NO_INPUT) and method == "GET" and access.tokens == ():
                    assert answer.status_code == 200, (path, answer.text)  # needs nothing
                    continue
                if path.endswith("/server-info"):  # public, as in MLflow: no token needed
                    assert answer.status_code == 200, (path, answer.text)
                    assert answer.json()["workspaces_enabled"] is False
                    continue
                mlflow_error(answer)


async def test_changing_a_param_is_mlflows_invalid_parameter_value(
    web: httpx.AsyncClient,
) -> None:
    native = {"run_id": MID, "key": "lr", "value": "0.01"}  # natively the float 0.01
    assert (await web.post(f"{API}/runs/log-parameter", json=native)).status_code == 200
    other = await web.post(f"{API}/runs/log-parameter", json=native | {"value": "0.02"})
    assert other.status_code == 400
    assert other.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    fresh = {"run_id": MID, "key": "seed", "value": "7"}
    assert (await web.post(f"{API}/runs/log-parameter", json=fresh)).status_code == 200
    assert (await web.post(f"{API}/runs/log-parameter", json=fresh)).status_code == 200
    changed = await web.post(f"{API}/runs/log-parameter", json=fresh | {"value": "8"})
    assert changed.status_code == 400
    assert "immutable" in changed.json()["message"]


# -- access: the same layer as every route --------------------------------------------------


async def test_team_mode_needs_a_token_and_refusals_are_mlflow_errors(
    store: ServerStore, tmp_path: Path
) -> None:
    access = AccessConfig(tokens=(("ada", TOKEN), ("rita", READER, "read")))
    async with serving(store, tmp_path, access) as web:
        anonymous = await web.post(f"{API}/runs/search", json={})
        assert anonymous.status_code == 401
        assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
        reader = {"Authorization": f"Bearer {READER}"}
        searched = await ok(await web.post(f"{API}/runs/search", json={}, headers=reader))
        assert len(searched["runs"]) == 4  # a read token may search (a POST that reads)
        refused = await web.post(f"{API}/runs/create", json={}, headers=reader)
        assert refused.status_code == 403
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
        writer = {"Authorization": f"Bearer {TOKEN}"}
        tags = [{"key": "mlflow.user", "value": "mallory"}]
        made = await ok(await web.post(f"{API}/runs/create", json={"tags": tags}, headers=writer))
        assert made["run"]["info"]["user_id"] == "ada"  # the token's user, whatever the tag


async def test_local_mode_takes_the_creator_from_mlflow_user(web: httpx.AsyncClient) -> None:
    tags = [{"key": "mlflow.user", "value": "grace"}]
    made = await ok(await web.post(f"{API}/runs/create", json={"tags": tags}))
    assert made["run"]["info"]["user_id"] == "grace"
    plain = await ok(await web.post(f"{API}/runs/create", json={"user_id": "alan"}))
    assert plain["run"]["info"]["user_id"] == "alan"
    anyone = await ok(await web.post(f"{API}/runs/create", json={}))
    assert anyone["run"]["info"]["user_id"] == "keyboard"


# -- natively logged runs read through MLflow's API, and the other way round ----------------


async def test_a_native_run_reads_as_an_mlflow_run(web: httpx.AsyncClient) -> None:
    exp_id = await mnist_id(web)
    run = (await ok(await web.get(f"{API}/runs/get?run_id={MID}")))["run"]
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] == MID
    assert (info["experiment_id"], info["run_name"], info["user_id"]) == (exp_id, "wider", "ana")
    assert info["status"] == "FINISHED"
    assert info["end_time"] - info["start_time"] == 600_000
    assert info["lifecycle_stage"] == "active"
    data = run["data"]
    assert {m["key"]: (m["value"], m["step"]) for m in data["metrics"]} == {
        "acc": (0.92, 2),
        "loss": (0.3, 2),
    }
    assert {p["key"]: p["value"] for p in data["params"]} == {"lr": "0.01", "depth": "4"}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["reviewed"] == "yes"
    assert tags["mlflow.note.content"] == "Promising: lower lr helps."
    assert tags["mlflow.runName"] == "wider"
    assert tags["mlflow.user"] == "ana"
    (used,) = run["inputs"]["dataset_inputs"]
    assert used["dataset"]["name"] == "mnist-train"
    assert {"key": "mlflow.data.context", "value": "train"} in used["tags"]
    failed = (await ok(await web.get(f"{API}/runs/get?run_id={NEW}")))["run"]["info"]
    assert failed["status"] == "FAILED"


async def test_history_pages_through_every_point(web: httpx.AsyncClient) -> None:
    first = await ok(
        await web.get(f"{API}/metrics/get-history?run_id={MID}&metric_key=acc&max_results=2")
    )
    assert [(m["step"], m["value"]) for m in first["metrics"]] == [(0, 0.6), (1, 0.8)]
    token = first["next_page_token"]
    rest = await ok(
        await web.get(
            f"{API}/metrics/get-history",
            params={"run_id": MID, "metric_key": "acc", "max_results": 2, "page_token": token},
        )
    )
    assert [(m["step"], m["value"]) for m in rest["metrics"]] == [(2, 0.92)]
    assert "next_page_token" not in rest
    never = await ok(await web.get(f"{API}/metrics/get-history?run_id={MID}&metric_key=f1"))
    assert never == {"metrics": []}


async def test_bulk_interval_samples_each_runs_history(web: httpx.AsyncClient) -> None:
    got = await ok(
        await web.get(
            f"{API}/metrics/get-history-bulk-interval",
            params=[("run_ids", OLD), ("run_ids", MID), ("metric_key", "acc"),
                    ("max_results", "2")],
        )
    )  # fmt: skip
    assert [(m["run_id"], m["step"]) for m in got["metrics"]] == [
        (OLD, 0), (OLD, 2), (MID, 0), (MID, 2),
    ]  # fmt: skip


async def test_an_mlflow_run_is_an_ordinary_chachaml_run(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    exp_id = await mnist_id(web)
    tags = [
        {"key": "mlflow.runName", "value": "from-mlflow"},
        {"key": "mlflow.parentRunId", "value": MID},
        {"key": "mlflow.note.content", "value": "a *note*"},
        {"key": "mlflow.source.type", "value": "LOCAL"},
    ]
    body = {"experiment_id": exp_id, "start_time": 1_750_000_000_000, "tags": tags}
    run_id = (await ok(await web.post(f"{API}/runs/create", json=body)))["run"]["info"]["run_id"]
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "acc", "value": 0.5, "timestamp": 1_750_000_001_000, "step": 0},
            {"key": "acc", "value": 0.75, "timestamp": 1_750_000_002_000, "step": 1},
            {"key": "loss", "value": "NaN", "timestamp": 1_750_000_002_000, "step": 1},
        ],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "vision"}],
    }
    await ok(await web.post(f"{API}/runs/log-batch", json=batch))
    inputs = {"run_id": run_id, "datasets": [{
        "tags": [{"key": "mlflow.data.context", "value": "training"}],
        "dataset": {"name": "digits", "digest": "abc123", "source_type": "local",
                    "source": '{"uri": "/data/digits.csv"}', "schema": '{"cols": 64}'},
    }]}  # fmt: skip
    await ok(await web.post(f"{API}/runs/log-inputs", json=inputs))
    end = {"run_id": run_id, "status": "FINISHED", "end_time": 1_750_000_010_000}
    ended = await ok(await web.post(f"{API}/runs/update", json=end))
    assert ended["run_info"]["status"] == "FINISHED"

    native = await run_ops.get_run(store, run_id)
    assert (native.name, native.parent_id, native.note) == ("from-mlflow", MID, "a *note*")
    assert native.experiment == "mnist" and native.status == "completed"
    assert native.started_at.timestamp() == 1_750_000_000.0
    assert native.ended_at is not None and native.ended_at.timestamp() == 1_750_000_010.0
    assert native.params == {"lr": "0.1"}
    assert native.tags == {"mlflow.source.type": "LOCAL", "team": "vision"}
    assert native.metrics == {"acc": 0.75, "loss": None}
    (ds,) = native.datasets
    assert (ds.role, ds.name, ds.digest, ds.source) == (
        "training", "digits", "abc123", '{"uri": "/data/digits.csv"}',
    )  # fmt: skip
    series = await metric_ops.metric_history(store, run_id, "acc")
    assert series.steps == [0, 1] and series.timestamps == [1_750_000_001.0, 1_750_000_002.0]
    back = (await ok(await web.get(f"{API}/runs/get?run_id={run_id}")))["run"]
    assert {"key": "loss", "value": "NaN", "timestamp": 1_750_000_002_000, "step": 1} in back[
        "data"
    ]["metrics"]
    (used,) = back["inputs"]["dataset_inputs"]
    assert used["dataset"]["source_type"] == "local"
    assert used["dataset"]["schema"] == '{"cols": 64}'


async def test_log_batch_groups_mixed_keys_and_refuses_bad_points_as_mlflow_errors(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    body = {"experiment_id": await mnist_id(web)}
    run_id = (await ok(await web.post(f"{API}/runs/create", json=body)))["run"]["info"]["run_id"]
    before = time.time()
    batch = {"run_id": run_id, "metrics": [
        {"key": "a", "value": 1, "timestamp": 1_750_000_001_000, "step": 2},
        {"key": "b", "value": "Infinity"},  # no step: MLflow's 0; no timestamp: now
        {"key": "a", "value": 3.5, "timestamp": 1_750_000_002_000, "step": 3},
    ]}  # fmt: skip
    await ok(await web.post(f"{API}/runs/log-batch", json=batch))
    a = await metric_ops.metric_history(store, run_id, "a")
    assert (a.steps, a.values, a.timestamps) == (
        [2, 3],
        [1.0, 3.5],
        [1_750_000_001.0, 1_750_000_002.0],
    )
    b = await metric_ops.metric_history(store, run_id, "b")
    assert b.steps == [0] and b.values == [math.inf] and before <= b.timestamps[0] <= time.time()

    point = {"key": "a", "value": 1.0, "timestamp": 1, "step": 1}
    refused = [
        (b"{not json", "not valid JSON"),
        (b"", "missing"),
        ({**point, "step": 1 << 63}, "metrics.0.step"),
        ({**point, "key": "k" * 251}, "metrics.0.key"),
        ({**point, "value": "many"}, "metrics.0.value"),
        ({**point, "model_id": 7}, "metrics.0.model_id"),
    ]
    for sent, named in refused:
        content = (
            sent
            if isinstance(sent, bytes)
            else json.dumps({"run_id": run_id, "metrics": [sent]}).encode()
        )
        answer = await web.post(f"{API}/runs/log-batch", content=content,
                                headers={"Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert named in answer.json()["message"], (named, answer.text)


async def test_tags_rename_delete_and_restore(web: httpx.AsyncClient, store: ServerStore) -> None:
    await ok(await web.post(f"{API}/runs/set-tag", json={"run_id": OLD, "key": "k", "value": "v"}))
    rename = {"run_id": OLD, "key": "mlflow.runName", "value": "renamed"}
    await ok(await web.post(f"{API}/runs/set-tag", json=rename))
    await ok(await web.post(f"{API}/runs/update", json={"run_id": OLD, "run_name": "again"}))
    await ok(await web.post(f"{API}/runs/delete-tag", json={"run_id": OLD, "key": "k"}))
    gone = await web.post(f"{API}/runs/delete-tag", json={"run_id": OLD, "key": "k"})
    assert gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    run = await run_ops.get_run(store, OLD)
    assert run.name == "again" and "k" not in run.tags

    await ok(await web.post(f"{API}/runs/delete", json={"run_id": NEW}))
    active = await ok(await web.post(f"{API}/runs/search", json={}))
    assert NEW not in [r["info"]["run_id"] for r in active["runs"]]
    deleted = await ok(await web.post(f"{API}/runs/search", json={"run_view_type": "DELETED_ONLY"}))
    assert [r["info"]["run_id"] for r in deleted["runs"]] == [NEW]
    assert deleted["runs"][0]["info"]["lifecycle_stage"] == "deleted"
    await ok(await web.post(f"{API}/runs/restore", json={"run_id": NEW}))
    assert not (await run_ops.get_run(store, NEW)).archived
    kept = await web.post(f"{API}/runs/delete", json={"run_id": MID})  # a model came from it
    assert kept.status_code == 400 and "registered model" in kept.json()["message"]


# -- search: filters, order, pages ------------------------------------------------------------


async def search(web: httpx.AsyncClient, **body: Any) -> list[str]:
    got = await ok(await web.post(f"{API}/runs/search", json=body))
    return [r["info"]["run_id"] for r in got["runs"]]


async def test_search_filters_and_orders_like_mlflow(web: httpx.AsyncClient) -> None:
    exp = await mnist_id(web)
    assert await search(web, experiment_ids=[exp]) == [NEW, MID, OLD]  # newest first
    assert await search(web, experiment_ids=[exp], filter="metrics.acc > 0.5") == [MID, OLD]
    assert await search(web, filter="params.lr = '0.01'") == [NEW, MID]
    assert await search(web, filter="attributes.status = 'FAILED'") == [NEW]
    assert await search(web, filter="attributes.user_id = 'bo'") == [IRIS]
    assert await search(web, filter="tags.`mlflow.runName` LIKE 'w%'") == [MID]
    assert await search(web, filter="attributes.run_name IN ('svm', 'deeper')") == [IRIS, NEW]
    assert await search(web, order_by=["metrics.acc DESC"]) == [IRIS, MID, OLD, NEW]
    assert await search(web, order_by=["params.depth ASC"]) == [OLD, MID, NEW, IRIS]
    ordered = await search(web, filter="metrics.acc > 0", order_by=["metrics.acc ASC"])
    assert ordered == [NEW, OLD, MID, IRIS]
    assert await search(web, order_by=["attributes.start_time ASC"]) == [OLD, MID, NEW, IRIS]
    iris = await ok(await web.get(f"{API}/experiments/get-by-name?experiment_name=iris"))
    both = [exp, iris["experiment"]["experiment_id"]]
    assert await search(web, experiment_ids=both, order_by=["metrics.loss"]) == [
        MID, OLD, NEW, IRIS,
    ]  # fmt: skip


@pytest.mark.parametrize("order_by", [[], ["metrics.acc DESC"]])
async def test_search_pages_with_tokens(web: httpx.AsyncClient, order_by: list[str]) -> None:
    everything = await search(web, order_by=order_by)
    seen: list[str] = []
    token = None
    while True:
        body: dict[str, Any] = {"max_results": 3, "order_by": order_by}
        if token:
            body["page_token"] = token
        page = await ok(await web.post(f"{API}/runs/search", json=body))
        seen += [r["info"]["run_id"] for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == everything and len(seen) == 4


async def test_experiments_are_created_found_and_searched(web: httpx.AsyncClient) -> None:
    made = await ok(await web.post(f"{API}/experiments/create", json={
        "name": "cifar", "tags": [{"key": "mlflow.note.content", "value": "small images"}],
    }))  # fmt: skip
    exp = await ok(await web.get(f"{API}/experiments/get?experiment_id={made['experiment_id']}"))
    assert exp["experiment"]["name"] == "cifar"
    assert exp["experiment"]["tags"] == [{"key": "mlflow.note.content", "value": "small images"}]
    default = await ok(await web.get(f"{API}/experiments/get?experiment_id=0"))
    assert default["experiment"]["name"] == "default"
    found = await ok(await web.post(f"{API}/experiments/search", json={
        "filter": "attributes.name LIKE '%i%'", "order_by": ["name ASC"], "max_results": 2,
    }))  # fmt: skip
    assert [e["name"] for e in found["experiments"]] == ["cifar", "iris"]
    rest = await ok(await web.post(f"{API}/experiments/search", json={
        "filter": "attributes.name LIKE '%i%'", "order_by": ["name ASC"], "max_results": 2,
        "page_token": found["next_page_token"],
    }))  # fmt: skip
    assert [e["name"] for e in rest["experiments"]] == ["mnist"]
    noted = {"experiment_id": made["experiment_id"], "key": "mlflow.note.content", "value": "v2"}
    await ok(await web.post(f"{API}/experiments/set-experiment-tag", json=noted))
    exp = await ok(await web.get(f"{API}/experiments/get-by-name?experiment_name=cifar"))
    assert exp["experiment"]["tags"] == [{"key": "mlflow.note.content", "value": "v2"}]


def test_a_runs_heartbeat_is_written_at_most_once_a_second_per_server() -> None:
    beats = Heartbeats()
    assert beats.due("r", 100.0) and beats.due("other", 100.2)
    assert not beats.due("r", 100.5)  # a batch half a second later writes no heartbeat
    assert beats.due("r", 101.0) and not beats.due("r", 101.9)
    assert beats.due("r", 50.0)  # the clock went back: written, not held off

"""MLflow's experiment endpoints in process: rename, delete and restore, tags, view types."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chachaml.store import ServerStore
from chachaml.tools import runs as run_ops
from tests.server.api.mlflow.test_routes import API, ok, store, web
from tests.support.mcp_seed import IRIS

pytestmark = pytest.mark.anyio
__all__ = ["store", "web"]  # the fixtures, shared with test_routes


async def post(web: httpx.AsyncClient, path: str, **body: Any) -> dict[str, Any]:
    return await ok(await web.post(f"{API}/experiments/{path}", json=body))


async def error(web: httpx.AsyncClient, path: str, **body: Any) -> tuple[int, str]:
    answer = await web.post(f"{API}/experiments/{path}", json=body)
    return answer.status_code, answer.json()["error_code"]


async def by_name(web: httpx.AsyncClient, name: str) -> httpx.Response:
    return await web.get(f"{API}/experiments/get-by-name", params={"experiment_name": name})


async def names(web: httpx.AsyncClient, **body: Any) -> list[str]:
    found = await post(web, "search", order_by=["name"], **body)
    return [e["name"] for e in found["experiments"]]


async def test_an_experiment_is_renamed_under_its_id(web: httpx.AsyncClient) -> None:
    exp_id = (await post(web, "create", name="cifar"))["experiment_id"]
    await post(web, "update", experiment_id=exp_id, new_name="cifar-10")
    got = await ok(await web.get(f"{API}/experiments/get", params={"experiment_id": exp_id}))
    assert got["experiment"]["name"] == "cifar-10"
    assert (await by_name(web, "cifar")).status_code == 404
    assert await error(web, "update", experiment_id=exp_id, new_name="iris") == (
        400, "RESOURCE_ALREADY_EXISTS",
    )  # fmt: skip
    assert await error(web, "update", experiment_id=exp_id, new_name="") == (
        400, "INVALID_PARAMETER_VALUE",
    )  # fmt: skip
    default = await ok(await web.get(f"{API}/experiments/get", params={"experiment_id": "0"}))
    assert await error(web, "update", experiment_id="0", new_name="mine") == (
        400, "INVALID_PARAMETER_VALUE",
    )  # fmt: skip
    assert default["experiment"]["name"] == "default"
    assert await error(web, "update", experiment_id="999", new_name="x") == (
        404, "RESOURCE_DOES_NOT_EXIST",
    )  # fmt: skip


async def test_a_deleted_experiment_hides_with_its_runs_until_restored(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    iris = (await ok(await by_name(web, "iris")))["experiment"]
    await post(web, "delete", experiment_id=iris["experiment_id"])
    gone = (await ok(await by_name(web, "iris")))["experiment"]  # still found by name
    assert gone["lifecycle_stage"] == "deleted"
    assert await names(web) == ["mnist"]
    assert await names(web, view_type="DELETED_ONLY") == ["iris"]
    assert await names(web, view_type="ALL") == ["iris", "mnist"]
    assert (await run_ops.get_run(store, IRIS)).archived
    runs = await ok(await web.post(f"{API}/runs/search", json={}))
    assert IRIS not in [r["info"]["run_id"] for r in runs["runs"]]
    # MLflow's rules for a deleted experiment: its name stays taken, nothing is logged into
    # it, it is not renamed or tagged, and deleting it again finds no active experiment
    exp_id = iris["experiment_id"]
    assert await error(web, "create", name="iris") == (400, "RESOURCE_ALREADY_EXISTS")
    made = await web.post(f"{API}/runs/create", json={"experiment_id": exp_id})
    assert made.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert await error(web, "update", experiment_id=exp_id, new_name="x") == (
        400, "INVALID_PARAMETER_VALUE",
    )  # fmt: skip
    assert await error(web, "set-experiment-tag", experiment_id=exp_id, key="k", value="v") == (
        400, "INVALID_PARAMETER_VALUE",
    )  # fmt: skip
    assert await error(web, "delete", experiment_id=exp_id) == (404, "RESOURCE_DOES_NOT_EXIST")

    await post(web, "restore", experiment_id=exp_id)
    assert (await ok(await by_name(web, "iris")))["experiment"]["lifecycle_stage"] == "active"
    assert not (await run_ops.get_run(store, IRIS)).archived
    assert await names(web) == ["iris", "mnist"]
    assert await error(web, "restore", experiment_id=exp_id) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_experiment_tags_are_set_shown_searched_and_deleted(web: httpx.AsyncClient) -> None:
    exp_id = (await post(web, "create", name="cifar", tags=[
        {"key": "team", "value": "vision"}, {"key": "mlflow.note.content", "value": "small"},
    ]))["experiment_id"]  # fmt: skip
    await post(web, "set-experiment-tag", experiment_id=exp_id, key="stage", value="dev")
    got = (await ok(await by_name(web, "cifar")))["experiment"]
    assert {t["key"]: t["value"] for t in got["tags"]} == {
        "team": "vision", "stage": "dev", "mlflow.note.content": "small",
    }  # fmt: skip
    assert await names(web, filter="tags.team = 'vision'") == ["cifar"]
    await post(web, "delete-experiment-tag", experiment_id=exp_id, key="team")
    await post(web, "delete-experiment-tag", experiment_id=exp_id, key="mlflow.note.content")
    got = (await ok(await by_name(web, "cifar")))["experiment"]
    assert got["tags"] == [{"key": "stage", "value": "dev"}]
    assert await error(web, "delete-experiment-tag", experiment_id=exp_id, key="team") == (
        404, "RESOURCE_DOES_NOT_EXIST",
    )  # fmt: skip

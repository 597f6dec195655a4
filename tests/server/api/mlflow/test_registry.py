"""MLflow's model registry API in process: shapes, errors, stages, aliases, search, native data.

Over the seeded store of ``tests/support/mcp_seed.py``: model ``digits`` has v1 from OLD
(staging) and v2 from MID (production), both the artifact ``model.bin``, registered
natively. The real client is driven against a real server in
``tests/e2e/test_mlflow_registry.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chachaml.errors import InvalidInput
from chachaml.server.access import AccessConfig
from chachaml.store import ServerStore
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools import registry as registry_ops
from tests.support.mcp_seed import IRIS, MID, OLD, open_seeded
from tests.support.mlflow_app import serving

pytestmark = pytest.mark.anyio
API = "/api/2.0/mlflow"
RM = f"{API}/registered-models"
MV = f"{API}/model-versions"


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


async def fails(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    message: str = body["message"]
    return message


def send(web: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]) -> Any:
    """A request with a JSON body, as MLflow's client sends PATCH and DELETE."""
    return web.request(method, path, json=body)


async def test_a_natively_registered_model_reads_as_an_mlflow_registered_model(
    web: httpx.AsyncClient,
) -> None:
    model = (await ok(await web.get(f"{RM}/get", params={"name": "digits"})))["registered_model"]
    assert (model["name"], model["user_id"]) == ("digits", "ana")
    latest = {v["current_stage"]: v for v in model["latest_versions"]}
    assert {s: v["version"] for s, v in latest.items()} == {"Staging": "1", "Production": "2"}
    v2 = latest["Production"]
    assert (v2["run_id"], v2["source"], v2["status"]) == (MID, f"runs:/{MID}/model.bin", "READY")
    assert v2["creation_timestamp"] <= v2["last_updated_timestamp"]
    got = await ok(await web.get(f"{MV}/get", params={"name": "digits", "version": "1"}))
    assert got["model_version"]["source"] == f"runs:/{OLD}/model.bin"
    uri = await ok(await web.get(f"{MV}/get-download-uri", params={"name": "digits", "version": 2}))
    assert uri == {"artifact_uri": f"runs:/{MID}/model.bin"}
    prod = await ok(await web.post(f"{RM}/get-latest-versions",
                                   json={"name": "digits", "stages": ["production"]}))  # fmt: skip
    assert [v["version"] for v in prod["model_versions"]] == ["2"]
    every = await ok(await web.get(f"{RM}/get-latest-versions", params={"name": "digits"}))
    assert [v["version"] for v in every["model_versions"]] == ["1", "2"]


async def test_errors_take_mlflows_codes(web: httpx.AsyncClient) -> None:
    run_source = {"name": "digits", "source": f"runs:/{OLD}/model.bin"}
    cases = [
        (web.post(f"{RM}/create", json={"name": "digits"}), 400, "RESOURCE_ALREADY_EXISTS"),
        (web.get(f"{RM}/get", params={"name": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST"),
        (web.get(f"{RM}/get"), 400, "INVALID_PARAMETER_VALUE"),
        (web.get(f"{MV}/get", params={"name": "digits", "version": "9"}), 404,
         "RESOURCE_DOES_NOT_EXIST"),
        (web.get(f"{MV}/get", params={"name": "digits", "version": "one"}), 400,
         "INVALID_PARAMETER_VALUE"),
        (web.post(f"{MV}/transition-stage", json={"name": "digits", "version": "1",
                  "stage": "Prod"}), 400, "INVALID_PARAMETER_VALUE"),
        (web.post(f"{MV}/transition-stage", json={"name": "digits", "version": "1",
                  "stage": "Archived", "archive_existing_versions": True}), 400,
         "INVALID_PARAMETER_VALUE"),
        (web.post(f"{MV}/create", json=run_source | {"run_id": MID}), 400,
         "INVALID_PARAMETER_VALUE"),  # the source names another run
        (web.post(f"{MV}/create", json={"name": "digits", "source": "/tmp/model"}), 400,
         "INVALID_PARAMETER_VALUE"),  # the server cannot read the client's disk
        (web.post(f"{MV}/create", json={"name": "digits", "source": "s3://b/m"}), 400,
         "INVALID_PARAMETER_VALUE"),  # no run to register from
        (web.post(f"{MV}/create", json={"name": "digits", "source": f"runs:/{OLD}/../x"}),
         400, "INVALID_PARAMETER_VALUE"),
        (web.post(f"{MV}/create", json={"name": "digits", "source": f"runs:/{'e' * 32}/m"}),
         404, "RESOURCE_DOES_NOT_EXIST"),
        (web.post(f"{RM}/rename", json={"name": "nope", "new_name": "x"}), 404,
         "RESOURCE_DOES_NOT_EXIST"),
        (web.post(f"{RM}/alias", json={"name": "digits", "alias": "production",
                  "version": "1"}), 400, "INVALID_PARAMETER_VALUE"),
        (web.get(f"{RM}/alias", params={"name": "digits", "alias": "gold"}), 404,
         "RESOURCE_DOES_NOT_EXIST"),
        (web.get(f"{RM}/search", params={"filter": "metrics.acc > 1"}), 400,
         "INVALID_PARAMETER_VALUE"),
        (web.get(f"{MV}/search", params={"filter": "name = "}), 400, "INVALID_PARAMETER_VALUE"),
        (web.get(f"{RM}/search", params={"max_results": "0"}), 400, "INVALID_PARAMETER_VALUE"),
        (send(web, "DELETE", f"{MV}/delete", {"name": "digits", "version": "7"}), 404,
         "RESOURCE_DOES_NOT_EXIST"),
        (send(web, "PATCH", f"{RM}/update", {"description": "x"}), 400,
         "INVALID_PARAMETER_VALUE"),  # no name
    ]  # fmt: skip
    for pending, status, code in cases:
        await fails(await pending, status, code)


async def test_a_model_lives_through_mlflows_calls_and_is_chachaml_data(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    tags = [{"key": "task", "value": "iris"}]
    body = {"name": "flowers", "description": "# F", "tags": tags}
    made = await ok(await web.post(f"{RM}/create", json=body))
    assert made["registered_model"]["description"] == "# F"
    assert made["registered_model"]["latest_versions"] == []
    directory = f"mlflow-artifacts:/1/{MID}/artifacts/model"  # an MLflow model directory
    one = await ok(await web.post(f"{MV}/create", json={
        "name": "flowers", "source": directory, "run_id": MID, "description": "dir",
        "tags": [{"key": "k", "value": "v"}],
    }))  # fmt: skip
    assert one["model_version"]["source"] == directory
    assert (one["model_version"]["version"], one["model_version"]["current_stage"]) == ("1", "None")
    file = f"runs:/{OLD}/model.bin"  # exactly one artifact of the run: registered natively
    two = await ok(await web.post(f"{MV}/create", json={"name": "flowers", "source": file}))
    assert (two["model_version"]["run_id"], two["model_version"]["source"]) == (OLD, file)
    run = await ok(await web.get(f"{API}/runs/get", params={"run_id": IRIS}))
    exp_id = run["run"]["info"]["experiment_id"]
    made_model = await ok(await web.post(f"{API}/logged-models", json={
        "experiment_id": exp_id, "name": "clf", "source_run_id": IRIS,
    }))  # fmt: skip
    model_id = made_model["model"]["info"]["model_id"]
    logged = await ok(
        await web.post(
            f"{MV}/create",
            json={
                "name": "flowers",
                "source": f"models:/{model_id}",
                "model_id": model_id,
            },
        )
    )  # MLflow 3's register_model: no run_id, the model's id names its run
    assert logged["model_version"]["model_id"] == model_id
    assert logged["model_version"]["run_id"] == IRIS
    assert logged["model_version"]["source"] == f"models:/{model_id}"
    where = await ok(
        await web.get(f"{MV}/get-download-uri", params={"name": "flowers", "version": "3"})
    )
    assert where == {"artifact_uri": f"mlflow-artifacts:/{exp_id}/{IRIS}/artifacts/clf"}
    for given, status, code in [
        ({"source": f"models:/{model_id}", "run_id": OLD}, 400, "INVALID_PARAMETER_VALUE"),
        ({"source": f"models:/{model_id}", "model_id": "m-other"}, 400,
         "INVALID_PARAMETER_VALUE"),
        ({"source": f"models:/m-{IRIS}-00000000"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"source": "models:/m-0123", "run_id": IRIS}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ]:  # fmt: skip
        await fails(await web.post(f"{MV}/create", json={"name": "flowers", **given}), status, code)
    copy = await ok(
        await web.post(f"{MV}/create", json={"name": "copy", "source": "models:/flowers/2"})
    )
    assert copy["model_version"]["source"] == file  # a copy names the original's source

    native = await registry_ops.get_model(store, "flowers")
    assert (native.note, native.tags, native.created_by) == ("# F", {"task": "iris"}, "keyboard")
    v1, v2 = native.versions[2], native.versions[1]
    assert (v1.serializer, v1.artifact, v1.description, v1.tags) == (
        "mlflow",
        "model",
        "dir",
        {"k": "v"},
    )
    assert v2.serializer != "mlflow" and v2.sha256  # copied and hashed like a native registration
    with pytest.raises(InvalidInput, match="registered through MLflow"):
        await registry_ops.read_model(store, open_artifact_store("unused"), "flowers", 1)

    # stages: one production version, archive_existing for staging
    def move(version: str, stage: str, archive: bool = False) -> Any:
        return web.post(f"{MV}/transition-stage", json={
            "name": "flowers", "version": version, "stage": stage,
            "archive_existing_versions": archive,
        })  # fmt: skip

    await ok(await move("1", "staging"))
    await ok(await move("2", "Staging", archive=True))
    await ok(await move("3", "Production"))
    moved = await ok(await move("2", "Production"))  # without archive_existing: still one
    assert moved["model_version"]["current_stage"] == "Production"
    stages = {v.version: v.stage for v in await registry_ops.model_versions(store, "flowers")}
    assert stages == {1: "archived", 2: "production", 3: "archived"}

    # aliases, tags, descriptions
    await ok(
        await web.post(f"{RM}/alias", json={"name": "flowers", "alias": "champion", "version": "2"})
    )
    by_alias = await ok(
        await web.get(f"{RM}/alias", params={"name": "flowers", "alias": "champion"})
    )
    assert by_alias["model_version"]["aliases"] == ["champion"]
    await ok(
        await web.post(f"{RM}/set-tag", json={"name": "flowers", "key": "owner", "value": "ml"})
    )
    await ok(await send(web, "DELETE", f"{RM}/delete-tag", {"name": "flowers", "key": "task"}))
    await ok(await send(web, "DELETE", f"{RM}/delete-tag", {"name": "flowers", "key": "task"}))
    await ok(
        await web.post(
            f"{MV}/set-tag", json={"name": "flowers", "version": "2", "key": "a", "value": "b"}
        )
    )
    await ok(
        await send(
            web, "DELETE", f"{MV}/delete-tag", {"name": "flowers", "version": "1", "key": "k"}
        )
    )
    await ok(await send(web, "PATCH", f"{RM}/update", {"name": "flowers", "description": "# G"}))
    described = {"name": "flowers", "version": "2", "description": "best"}
    updated = await ok(await send(web, "PATCH", f"{MV}/update", described))
    assert updated["model_version"]["description"] == "best"
    model = (await ok(await web.get(f"{RM}/get", params={"name": "flowers"})))["registered_model"]
    assert model["description"] == "# G"
    assert model["tags"] == [{"key": "owner", "value": "ml"}]
    assert model["aliases"] == [{"alias": "champion", "version": "2"}]
    await ok(await send(web, "DELETE", f"{RM}/alias", {"name": "flowers", "alias": "champion"}))
    assert (await registry_ops.get_model(store, "flowers")).aliases == {}

    # delete a version, rename, delete the model
    await ok(await send(web, "DELETE", f"{MV}/delete", {"name": "flowers", "version": "3"}))
    again = await ok(await web.post(f"{MV}/create", json={"name": "flowers", "source": file}))
    assert again["model_version"]["version"] == "4"  # numbers are never reused
    await fails(await web.post(f"{RM}/rename", json={"name": "flowers", "new_name": "digits"}),
                400, "RESOURCE_ALREADY_EXISTS")  # fmt: skip
    renamed = await ok(
        await web.post(f"{RM}/rename", json={"name": "flowers", "new_name": "irises"})
    )
    assert renamed["registered_model"]["name"] == "irises"
    await ok(await send(web, "DELETE", f"{RM}/delete", {"name": "irises"}))
    await fails(
        await web.get(f"{RM}/get", params={"name": "irises"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )


async def test_search_filters_orders_and_pages(web: httpx.AsyncClient) -> None:
    for name in ("beta", "alpha", "gamma"):
        await ok(
            await web.post(
                f"{RM}/create", json={"name": name, "tags": [{"key": "g", "value": name[0]}]}
            )
        )
    names = await ok(await web.get(f"{RM}/search", params={"max_results": 2}))
    assert [m["name"] for m in names["registered_models"]] == ["alpha", "beta"]
    rest = await ok(
        await web.get(
            f"{RM}/search", params={"max_results": 2, "page_token": names["next_page_token"]}
        )
    )
    assert [m["name"] for m in rest["registered_models"]] == ["digits", "gamma"]
    assert "next_page_token" not in rest
    liked = await ok(
        await web.get(
            f"{RM}/search", params=[("filter", "name LIKE '%a'"), ("order_by", "name DESC")]
        )
    )
    assert [m["name"] for m in liked["registered_models"]] == ["gamma", "beta", "alpha"]
    tagged = await ok(await web.get(f"{RM}/search", params={"filter": "tags.g = 'b'"}))
    assert [m["name"] for m in tagged["registered_models"]] == ["beta"]
    prompts = "tag.`mlflow.prompt.is_prompt` != 'true'"  # what MLflow's client adds
    no_prompts = await ok(await web.get(f"{RM}/search", params={"filter": prompts}))
    assert len(no_prompts["registered_models"]) == 4
    not_b = await ok(await web.get(f"{RM}/search", params={"filter": "tags.g != 'b'"}))
    assert [m["name"] for m in not_b["registered_models"]] == ["alpha", "digits", "gamma"]
    digits = await ok(await web.get(f"{RM}/search", params={"filter": "name = 'digits'"}))
    assert len(digits["registered_models"][0]["latest_versions"]) == 2

    versions = await ok(await web.get(f"{MV}/search", params={"filter": "name = 'digits'"}))
    assert [v["version"] for v in versions["model_versions"]] == ["2", "1"]
    by_run = await ok(await web.get(f"{MV}/search", params={"filter": f"run_id = '{OLD}'"}))
    assert [(v["name"], v["version"]) for v in by_run["model_versions"]] == [("digits", "1")]
    ordered = await ok(await web.get(f"{MV}/search", params=[
        ("filter", "name = 'digits' AND version_number >= 1"), ("order_by", "version_number ASC"),
    ]))  # fmt: skip
    assert [v["version"] for v in ordered["model_versions"]] == ["1", "2"]
    in_list = await ok(
        await web.get(f"{MV}/search", params={"filter": f"run_id IN ('{MID}', 'x')"})
    )
    assert [v["run_id"] for v in in_list["model_versions"]] == [MID]


async def test_a_read_token_reads_the_registry_but_cannot_change_it(
    store: ServerStore, tmp_path: Path
) -> None:
    access = AccessConfig(tokens=(("ada", "ada-token"), ("rita", "rita-token", "read")))
    async with serving(store, tmp_path, access) as web:
        reader = {"Authorization": "Bearer rita-token"}
        latest = await web.post(
            f"{RM}/get-latest-versions", json={"name": "digits"}, headers=reader
        )
        assert len((await ok(latest))["model_versions"]) == 2  # a POST that reads
        refused = await web.post(f"{RM}/create", json={"name": "x"}, headers=reader)
        await fails(refused, 403, "PERMISSION_DENIED")
        gone = await web.request("DELETE", f"{RM}/delete", json={"name": "digits"}, headers=reader)
        await fails(gone, 403, "PERMISSION_DENIED")
        writer = {"Authorization": "Bearer ada-token"}
        made = await web.post(f"{RM}/create", json={"name": "x"}, headers=writer)
        assert (await ok(made))["registered_model"]["user_id"] == "ada"

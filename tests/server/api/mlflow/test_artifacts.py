"""MLflow's artifact proxy in process: listings, downloads, uploads and what it refuses.

The real client uploads and loads through it in ``tests/e2e/test_mlflow_client.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from chachaml.server.access import AccessConfig
from chachaml.server.api.routes import ApiConfig
from chachaml.store import ServerStore
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import runs as run_ops
from tests.support.mcp_seed import open_seeded
from tests.support.mlflow_app import serving

pytestmark = pytest.mark.anyio
RUN = "e" * 32  # a run of the seeded mnist experiment with only the artifacts below
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
NATIVE = {
    "top.json": b'{"a": 1}',
    "plots/loss.png": b"\x89PNG fake",
    "plots/deep/er/x.txt": b"deep",
    "model/MLmodel": b"flavors: {}",
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    async with open_seeded(tmp_path) as opened:
        await run_ops.start_run(
            opened, run_ops.new_run("mnist", "arts", created_by="ana", run_id=RUN)
        )
        artifacts = open_artifact_store(str(tmp_path / "artifacts"))
        for name, data in NATIVE.items():  # logged natively, as chachaml's client does
            await artifact_ops.put_bytes(opened, artifacts, RUN, name, data,
                                         content_type="application/octet-stream",
                                         serializer="bytes")  # fmt: skip
        yield opened


@pytest.fixture
async def web(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(store, tmp_path) as client:
        yield client


async def root(web: httpx.AsyncClient, run_id: str = RUN) -> str:
    """The run's artifact root under the proxy, from the artifact_uri MLflow reports."""
    got = await web.get(f"/api/2.0/mlflow/runs/get?run_id={run_id}")
    uri: str = got.json()["run"]["info"]["artifact_uri"]
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith(f"/{run_id}/artifacts")
    return uri.removeprefix("mlflow-artifacts:/")


async def listing(web: httpx.AsyncClient, path: str) -> list[dict[str, object]]:
    answer = await web.get(PROXY, params={"path": path})
    assert answer.status_code == 200, answer.text
    files: list[dict[str, object]] = answer.json()["files"]
    return files


async def test_natively_logged_artifacts_list_one_folder_level_at_a_time(
    web: httpx.AsyncClient,
) -> None:
    base = await root(web)
    assert await listing(web, base) == [
        {"path": "model", "is_dir": True},
        {"path": "plots", "is_dir": True},
        {"path": "top.json", "is_dir": False, "file_size": 8},
    ]
    assert await listing(web, f"{base}/plots/") == [
        {"path": "deep", "is_dir": True},
        {"path": "loss.png", "is_dir": False, "file_size": 9},
    ]
    assert await listing(web, f"{base}/plots/deep/er") == [
        {"path": "x.txt", "is_dir": False, "file_size": 4},
    ]
    assert await listing(web, f"{base}/top.json") == []  # a file lists nothing, as in MLflow
    assert await listing(web, f"{base}/nothing/here") == []
    old = await web.get("/api/2.0/mlflow/artifacts/list", params={"run_id": RUN, "path": "plots"})
    assert old.json()["root_uri"].endswith(f"/{RUN}/artifacts")
    assert [f["path"] for f in old.json()["files"]] == ["plots/deep", "plots/loss.png"]


async def test_a_download_streams_the_bytes_as_an_attachment(web: httpx.AsyncClient) -> None:
    base = await root(web)
    for name, data in NATIVE.items():
        answer = await web.get(f"{PROXY}/{base}/{name}")
        assert answer.status_code == 200, answer.text
        assert answer.content == data
    answer = await web.get(f"{PROXY}/{base}/plots/loss.png")
    assert answer.headers["content-type"] == "application/octet-stream"  # never rendered
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["x-content-type-options"] == "nosniff"
    folder = await web.get(f"{PROXY}/{base}/plots")
    assert (folder.status_code, folder.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_an_upload_is_an_ordinary_artifact_of_the_run(
    web: httpx.AsyncClient, store: ServerStore, tmp_path: Path
) -> None:
    base = await root(web)
    sent = await web.put(f"{PROXY}/{base}/notes/read me.txt", content=b"hello",
                         headers={"Content-Type": "text/plain"})  # fmt: skip
    assert (sent.status_code, sent.json()) == (200, {})
    again = await web.put(f"{PROXY}/{base}/notes/read me.txt", content=b"hello again")
    assert again.status_code == 200  # the same name replaces, as MLflow's stores do
    found = {a.name: a for a in await artifact_ops.list_artifacts(store, RUN)}
    assert found["notes/read me.txt"].size == len(b"hello again")
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    _, data = await artifact_ops.read_bytes(store, artifacts, RUN, "notes/read me.txt")
    assert data == b"hello again"
    assert (await web.get(f"{PROXY}/{base}/notes/read%20me.txt")).content == b"hello again"

    async def chunks() -> AsyncIterator[
        bytes
    ]:  # no Content-Length: the limit is checked as bytes arrive
        yield b"a" * 1000
        yield b"b" * 1000

    streamed = await web.put(f"{PROXY}/{base}/streamed.bin", content=chunks())
    assert streamed.status_code == 200
    found = {a.name: a for a in await artifact_ops.list_artifacts(store, RUN)}
    assert found["streamed.bin"].size == 2000


@pytest.mark.parametrize(
    "tail",
    [
        "%2E%2E/%2E%2E/escape.txt",  # decoded by the server: ../../escape.txt
        "sub/%2E%2E/x.txt",
        "sub//x.txt",
        "%2E/x.txt",
        "x%01.txt",
        "back%5Cslash.txt",
        ".mlflow/logged-models/forged.json",  # chachaml's own records
    ],
)
async def test_paths_leaving_the_run_or_reserved_are_refused(
    web: httpx.AsyncClient, store: ServerStore, tail: str
) -> None:
    base = await root(web)
    before = len(await artifact_ops.list_artifacts(store, RUN))
    answer = await web.put(f"{PROXY}/{base}/{tail}", content=b"x")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert len(await artifact_ops.list_artifacts(store, RUN)) == before
    if not tail.startswith(".mlflow"):  # reading the reserved folder is no harm
        listed = await web.get(PROXY, params={"path": f"{base}/{unquote(tail)}"})
        assert listed.status_code == 400, listed.text


async def test_unknown_runs_and_other_layouts_are_not_found(web: httpx.AsyncClient) -> None:
    base = await root(web)
    exp_id = base.split("/")[0]
    for path in [
        f"{exp_id}/{'0' * 32}/artifacts/x.txt",  # no such run
        f"{exp_id}/{RUN[:12]}/artifacts/x.txt",  # a prefix is no run's path
        f"{int(exp_id) + 100}/{RUN}/artifacts/x.txt",  # not the run's experiment
        f"{exp_id}/{RUN}/files/x.txt",
        f"{exp_id}/{RUN}",
    ]:
        answer = await web.put(f"{PROXY}/{path}", content=b"x")
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert (await web.get(f"{PROXY}/{path}")).status_code == 404
    assert (
        await web.get(PROXY, params={"path": f"{exp_id}/{'0' * 32}/artifacts"})
    ).status_code == 404


async def test_a_body_over_the_upload_limit_is_refused_before_it_is_stored(
    store: ServerStore, tmp_path: Path
) -> None:
    async with serving(store, tmp_path, api=ApiConfig(max_upload_bytes=1000)) as web:
        base = await root(web)
        answer = await web.put(f"{PROXY}/{base}/big.bin", content=b"x" * 1001)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"y" * 400

        streamed = await web.put(f"{PROXY}/{base}/big2.bin", content=chunks())
        fits = await web.put(f"{PROXY}/{base}/fits.bin", content=b"z" * 1000)
    for refused in (answer, streamed):
        assert refused.status_code == 400, refused.text  # not 429: MLflow's client retries that
        assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "larger than 1000 bytes" in refused.json()["message"]
    assert fits.status_code == 200
    names = {a.name for a in await artifact_ops.list_artifacts(store, RUN)}
    assert "fits.bin" in names and not {"big.bin", "big2.bin"} & names


async def test_team_mode_uploads_need_a_write_token(store: ServerStore, tmp_path: Path) -> None:
    tokens = (("ada", "ada-token"), ("rita", "rita-token", "read"))
    async with serving(store, tmp_path, AccessConfig(tokens=tokens)) as web:
        ada = {"Authorization": "Bearer ada-token"}
        rita = {"Authorization": "Bearer rita-token"}
        got = await web.get(f"/api/2.0/mlflow/runs/get?run_id={RUN}", headers=ada)
        base = got.json()["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
        url = f"{PROXY}/{base}/team.txt"
        anonymous = await web.put(url, content=b"x")
        reader = await web.put(url, content=b"x", headers=rita)
        writer = await web.put(url, content=b"x", headers=ada | {"Content-Type": "text/plain"})
        read_back = await web.get(url, headers=rita)
        listed = await web.get(PROXY, params={"path": base}, headers=rita)
    assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "UNAUTHENTICATED")
    assert (reader.status_code, reader.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert writer.status_code == 200 and read_back.content == b"x"
    assert {"path": "team.txt", "is_dir": False, "file_size": 1} in listed.json()["files"]


async def test_deletes_and_cloud_transfers_answer_not_implemented(web: httpx.AsyncClient) -> None:
    base = await root(web)
    for answer in [
        await web.delete(f"{PROXY}/{base}/top.json"),
        await web.post(f"/api/2.0/mlflow-artifacts/mpu/create/{base}/x", json={}),
        await web.get(f"/api/2.0/mlflow-artifacts/presigned/{base}/top.json"),
    ]:
        assert answer.status_code == 501, answer.text
        assert answer.json()["error_code"] == "NOT_IMPLEMENTED"
    assert (await web.get(f"{PROXY}/{base}/top.json")).status_code == 200

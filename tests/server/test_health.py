"""``/healthz`` and ``/readyz``: liveness, and readiness of the store and artifact store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chachaml.server.app import create_app
from chachaml.settings import S3Settings
from chachaml.store import ServerStore, open_store
from chachaml.store.artifacts import ArtifactStore, LocalArtifactStore, open_artifact_store


async def get(store: ServerStore, artifacts: ArtifactStore, path: str) -> httpx.Response:
    app = create_app(store, artifacts=artifacts)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.get(path)


@pytest.mark.anyio
async def test_healthz_says_the_process_is_up(store: ServerStore, tmp_path: Path) -> None:
    response = await get(store, LocalArtifactStore(tmp_path), "/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.anyio
async def test_readyz_checks_the_store_and_the_artifact_store(
    store: ServerStore, tmp_path: Path
) -> None:
    response = await get(store, LocalArtifactStore(tmp_path / "artifacts"), "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"store": "ok", "artifacts": "ok"}}


@pytest.mark.anyio
async def test_readyz_is_503_with_the_reason_when_the_bucket_is_unreachable(
    store: ServerStore,
) -> None:
    settings = S3Settings(endpoint="http://127.0.0.1:9", access_key_id="k", secret_access_key="s")
    nowhere = open_artifact_store("s3://bucket/x", settings)
    response = await get(store, nowhere, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["store"] == "ok"
    assert "cannot reach the S3 endpoint http://127.0.0.1:9" in body["checks"]["artifacts"]


@pytest.mark.anyio
async def test_readyz_is_503_when_the_store_is_closed(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'c.db'}")
    await store.close()
    response = await get(store, LocalArtifactStore(tmp_path), "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["store"] != "ok"
    assert response.json()["checks"]["artifacts"] == "ok"

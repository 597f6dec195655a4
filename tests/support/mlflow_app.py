"""chachaml's app in process, driven with the JSON an MLflow client sends (httpx, no socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from chachaml.server.access import AccessConfig
from chachaml.server.api.routes import ApiConfig
from chachaml.server.app import create_app
from chachaml.store import ServerStore
from chachaml.store.artifacts import open_artifact_store

BASE = "http://127.0.0.1:8080"


@asynccontextmanager
async def serving(
    store: ServerStore,
    tmp_path: Path,
    access: AccessConfig | None = None,
    api: ApiConfig | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app over ``store``, artifacts under ``tmp_path / "artifacts"``."""
    app = create_app(
        store,
        artifacts=open_artifact_store(str(tmp_path / "artifacts")),
        access=access or AccessConfig(local_user="keyboard"),
        api=api,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client

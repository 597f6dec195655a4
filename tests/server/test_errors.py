"""One error envelope for every JSON answer: every ``/api`` route, walked, errors the same way.

``{"error": {"status", "code", "message"}}`` (plus ``fields`` for validation errors), with the
same status in the body as on the response, whether the error came from the access layer,
the write and store APIs, the UI's JSON twins or chat. MLflow's protocol under
``/api/2.0/mlflow`` answers in MLflow's own shape instead (``tests/server/api/mlflow/``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from chachaml.server.access import AccessConfig
from chachaml.server.app import create_app
from chachaml.server.errors import CODES, is_mlflow
from chachaml.store import ServerStore
from chachaml.store.artifacts import open_artifact_store
from tests.support.mcp_seed import open_seeded

pytestmark = pytest.mark.anyio
BASE = "http://127.0.0.1"
MISSING = {"run_id": "f" * 32, "name": "no-such", "version": "99", "v1": "98", "v2": "99"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    async with open_seeded(tmp_path) as opened:
        yield opened


def _api_routes(
    store: ServerStore, tmp_path: Path, access: AccessConfig
) -> tuple[Any, list[Route]]:
    app = create_app(
        store, artifacts=open_artifact_store(str(tmp_path / "artifacts")), access=access
    )
    routes = [
        r
        for r in app.routes
        if isinstance(r, Route) and r.path.startswith("/api/") and not is_mlflow(r.path)
    ]
    return app, routes


def _missing(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: MISSING.get(m.group(1), "no-such"), path)


def _check(answer: httpx.Response) -> None:
    assert answer.status_code >= 400, (answer.request.url, answer.status_code)
    error = answer.json()["error"]
    assert error["status"] == answer.status_code
    assert error["code"] == CODES[answer.status_code]
    assert isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"status", "code", "message", "fields"}


async def test_every_api_route_answers_errors_in_one_envelope(
    store: ServerStore, tmp_path: Path
) -> None:
    app, routes = _api_routes(store, tmp_path, AccessConfig())
    checked = 0
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as web:
        for route in routes:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                # a thing that does not exist, or a body that cannot be right
                if "{" in route.path:
                    answer = await web.request(method, _missing(route.path), json=[1])
                else:
                    answer = await web.request(method, route.path + "?limit=-1", json=[1])
                if answer.status_code >= 400:
                    _check(answer)
                    checked += 1
    assert checked >= 40  # most routes are reached with something wrong


async def test_access_errors_use_the_same_envelope_on_every_api_route(
    store: ServerStore, tmp_path: Path
) -> None:
    app, routes = _api_routes(store, tmp_path, AccessConfig(tokens=(("ada", "ada-token-1"),)))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as web:
        for route in routes:
            if route.path == "/api/openapi.json":
                continue
            for method in sorted((route.methods or set()) - {"HEAD"}):
                _check(await web.request(method, _missing(route.path), json={}))


async def test_a_conflict_is_409_on_the_ui_twins_as_on_the_api(
    store: ServerStore, tmp_path: Path
) -> None:
    from chachaml.errors import Conflict
    from chachaml.server.ui.common import guarded

    async def clash(request: Any) -> Any:
        raise Conflict("param lr was logged with another value")

    app, _ = _api_routes(store, tmp_path, AccessConfig())
    app.router.routes.insert(0, Route("/api/clash", guarded(clash)))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as web:
        answer = await web.get("/api/clash")
    assert answer.status_code == 409
    _check(answer)

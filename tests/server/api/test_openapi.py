"""``/api/openapi.json``: a valid OpenAPI 3.1 document listing every ``/api`` route."""

from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from chachaml.server.api.openapi import openapi_path
from chachaml.server.app import create_app
from chachaml.server.errors import is_mlflow
from chachaml.store import ServerStore

pytestmark = pytest.mark.anyio


async def test_the_document_is_valid_openapi_3_1_and_lists_every_api_route(
    store: ServerStore,
) -> None:
    app = create_app(store)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        doc = (await c.get("/api/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    listed = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = {
        (openapi_path(r.path), m)
        for r in app.routes
        if isinstance(r, Route)
        and r.path.startswith("/api/")
        and r.path != "/api/openapi.json"
        and not is_mlflow(r.path)  # MLflow's protocol is documented by MLflow
        for m in (r.methods or {"GET"}) - {"HEAD"}
    }
    assert routes <= listed
    assert not any(is_mlflow(path) for path, _ in listed)
    assert ("/api/w/runs/{run_id}/metrics", "POST") in listed
    create = doc["paths"]["/api/w/runs"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/CreateRun"}
    assert {"401", "403", "422", "413"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])

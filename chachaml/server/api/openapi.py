"""The OpenAPI 3.1 document at ``/api/openapi.json``, built from the endpoint declarations.

Declared endpoints (:class:`~chachaml.server.endpoints.Endpoint`) bring their pydantic request
and response types, whose JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses) become
``components.schemas``. Any other ``/api`` route of the app (the read API's page twins) is
listed from the router with its handler's docstring and a JSON object response, so every
route is in the document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from starlette.routing import BaseRoute, Route

from chachaml.server.api.endpoint import Endpoint
from chachaml.server.errors import CODES, is_mlflow

REF = "#/components/schemas/{model}"
PARAM = re.compile(r"{([^}:]+)(?::([^}]+))?}")
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def openapi_path(path: str) -> str:
    """A Starlette path (``{version:int}``, ``{name:path}``) in OpenAPI form (``{version}``)."""
    return PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _path_params(path: str) -> list[dict[str, Any]]:
    params = []
    for name, convertor in PARAM.findall(path):
        schema = {"type": "integer"} if convertor == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def of(self, kind: Any, mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        schema = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)
        self.components.update(schema.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.components[kind.__name__] = schema
            return {"$ref": REF.format(model=kind.__name__)}
        return schema


def _error(status: int) -> dict[str, Any]:
    return {
        "description": CODES.get(status, "error").replace("_", " "),
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _operation(ep: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": ep.handler.__name__,
        "tags": ["write" if ep.scope == "write" else "read"],
        "security": [{"bearer": []}] if ep.scope == "write" else [{"bearer": []}, {}],
    }
    params = _path_params(ep.path)
    params += [
        {"name": n, "in": "query", "required": req, "schema": {"type": t}} for n, t, req in ep.query
    ]
    if ep.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Retrying with the same key replays the first answer.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            }
        )
    if params:
        op["parameters"] = params
    if ep.body_kind == "json":
        body = {"application/json": {"schema": schemas.of(ep.body, "validation")}}
        cap = f"at most {ep.max_body / (1 << 20):g} MiB (a larger body gets a 413)"
        op["requestBody"] = {"required": True, "description": cap, "content": body}
    elif ep.body_kind == "multipart":
        form = {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                "name": {"type": "string", "description": "artifact name (default: file name)"},
            },
        }
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    elif ep.body_kind == "binary":
        raw = {"type": "string", "contentMediaType": "application/octet-stream"}
        op["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": raw}},
        }
    ok: dict[str, Any] = {"description": "success"}
    if ep.binary_response:
        raw = {"type": "string", "contentMediaType": "application/octet-stream"}
        ok["content"] = {"application/octet-stream": {"schema": raw}}
    elif ep.response is not None:
        ok["content"] = {"application/json": {"schema": schemas.of(ep.response, "serialization")}}
    responses: dict[str, Any] = {str(ep.status): ok}
    statuses = set(ep.errors) | {503}
    if ep.body_kind == "json":
        statuses |= {413, 422}
    if ep.idempotent:
        statuses |= {409}
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    op["responses"] = responses
    return op


def _undeclared(route: Route) -> dict[str, Any]:
    doc = (route.endpoint.__doc__ or route.name or route.path).strip().splitlines()[0]
    op: dict[str, Any] = {
        "summary": doc,
        "operationId": f"{route.name}_{openapi_path(route.path)}".replace("/", "_"),
        "tags": ["read"],
        "security": [{"bearer": []}, {}],
        "responses": {
            "200": {"description": "the page's JSON", "content": {"application/json": {}}},
            "404": _error(404),
            "422": _error(422),
            "503": _error(503),
        },
    }
    params = _path_params(route.path)
    if params:
        op["parameters"] = params
    return op


def build_document(
    endpoints: Iterable[Endpoint], routes: Iterable[BaseRoute], version: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document: declared endpoints, then the app's other ``/api`` routes."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    declared = set()
    for ep in endpoints:
        paths.setdefault(openapi_path(ep.path), {})[ep.method.lower()] = _operation(ep, schemas)
        declared.add(ep.path)
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith("/api/"):
            continue
        if is_mlflow(route.path):  # MLflow's protocol: documented by MLflow, not here
            continue
        if route.path in declared or route.path == "/api/openapi.json":
            continue
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            paths.setdefault(openapi_path(route.path), {})[method.lower()] = _undeclared(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chachaml",
            "version": version,
            "description": "Experiment tracking and model registry: the JSON read API, the"
            " store API under /api/store/v1/ (what a remote Python client reads; versioned) and"
            " the write API under /api/w/. Writes need a bearer token with write scope.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

"""The UI's writes: tag a run, edit its note, promote a model version, set or remove an alias.

Each is a JSON POST (415 otherwise, which a cross-site HTML form cannot send). The access
layer has already refused other origins and, in team mode, callers without a write token or a
signed-in session with its CSRF header; the change is attributed to the caller.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chachaml.server.access import require
from chachaml.server.api.endpoint import read_limited
from chachaml.server.errors import ApiError, from_validation
from chachaml.server.ui.common import SECURITY_HEADERS, jsonable, path_param, store_of
from chachaml.server.ui.markdown import note_html
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops

MAX_BODY_BYTES = 1 << 20
Body = TypeVar("Body", bound=BaseModel)


class TagIn(BaseModel):
    """One tag to set on a run."""

    model_config = ConfigDict(extra="forbid")
    key: str
    value: str


class NoteIn(BaseModel):
    """A run's new markdown note."""

    model_config = ConfigDict(extra="forbid")
    note: str


class PromoteIn(BaseModel):
    """A version to move to a stage, and optionally why."""

    model_config = ConfigDict(extra="forbid")
    version: int
    stage: str
    reason: str | None = None


class AliasIn(BaseModel):
    """An alias to point at a version."""

    model_config = ConfigDict(extra="forbid")
    alias: str
    version: int


class AliasOut(BaseModel):
    """An alias to remove."""

    model_config = ConfigDict(extra="forbid")
    alias: str


async def _accept(request: Request, model: type[Body]) -> tuple[str, Body]:
    """The checks every UI write shares; returns the caller and the validated body."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "send the request body as application/json")
    user = require(request, "write").user
    raw = await read_limited(request, MAX_BODY_BYTES)
    try:
        return user, model.model_validate_json(raw)
    except ValidationError as exc:
        raise from_validation(exc) from None


def _json(data: dict[str, Any]) -> Response:
    return JSONResponse(jsonable(data), headers=SECURITY_HEADERS)


async def add_tag(request: Request) -> Response:
    """Set one tag on a run; answers with all its tags."""
    user, body = await _accept(request, TagIn)
    tags = await run_ops.add_tag(store_of(request), path_param(request, "run_id"), body.key,
                                 body.value, user)  # fmt: skip
    return _json({"tags": tags})


async def set_note(request: Request) -> Response:
    """Replace a run's note; answers with the note and its rendered HTML."""
    user, body = await _accept(request, NoteIn)
    await run_ops.set_note(store_of(request), path_param(request, "run_id"), body.note, user)
    return _json({"note": body.note, "note_html": note_html(body.note)})


async def promote(request: Request) -> Response:
    """Move a model version to a stage as the caller; answers with the version."""
    user, body = await _accept(request, PromoteIn)
    version = await registry_ops.promote(store_of(request), path_param(request, "name"),
                                         body.version, body.stage, user, body.reason)  # fmt: skip
    return _json({"version": version.model_dump(mode="json")})


async def set_alias(request: Request) -> Response:
    """Point an alias at a version (moving it from another) as the caller."""
    user, body = await _accept(request, AliasIn)
    version = await registry_ops.set_alias(store_of(request), path_param(request, "name"),
                                           body.alias, body.version, user)  # fmt: skip
    return _json({"version": version.model_dump(mode="json")})


async def delete_alias(request: Request) -> Response:
    """Remove an alias as the caller; answers with the model's remaining aliases."""
    user, body = await _accept(request, AliasOut)
    store, name = store_of(request), path_param(request, "name")
    await registry_ops.delete_alias(store, name, body.alias, user)
    return _json({"aliases": (await registry_ops.get_model(store, name)).aliases})


def routes() -> list[Route]:
    """The UI's write endpoints (POST only); model names may hold ``/``."""
    return [
        Route("/runs/{run_id}/tags", add_tag, methods=["POST"]),
        Route("/runs/{run_id}/note", set_note, methods=["POST"]),
        Route("/models/{name:path}/promote", promote, methods=["POST"]),
        Route("/models/{name:path}/aliases", set_alias, methods=["POST"]),
        Route("/models/{name:path}/aliases/delete", delete_alias, methods=["POST"]),
    ]

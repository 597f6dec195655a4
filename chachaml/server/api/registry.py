"""Registry writes beside registering and promoting: aliases, model and version tags, notes.

Each endpoint is one call of an operation in :mod:`chachaml.tools.registry`, attributed to the
caller (the token's user; in local mode the ``X-Chachaml-User`` header or the local user).
Registering and promoting live in the write API (:mod:`chachaml.server.api.write`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from chachaml.records.registry import ModelDetail, ModelVersion
from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import Api, Call
from chachaml.tools import registry as registry_ops

api = Api()
MODEL = "/api/w/models/{name}"
ERR = (401, 403, 404, 422)


class SetAlias(m.Body):
    """Point an alias (``champion``, ...) at a version, moving it if it pointed elsewhere."""

    alias: Annotated[str, m.NoNul] = Field(min_length=1, max_length=100)
    version: int = Field(ge=1, lt=2**63)


class DeleteAlias(m.Body):
    """Remove an alias from a model (send ``{}``)."""


class ModelNote(m.Body):
    """A model's markdown note (replaces the previous one)."""

    note: m.Text


class AllTags(BaseModel):
    """Every tag of the model (or version) after the change."""

    tags: dict[str, str]


def _version(call: Call) -> int:
    raw: Any = call.request.path_params["version"]
    return registry_ops.check_version(raw)


@api.route("POST", MODEL + "/aliases", scope="write", body=SetAlias, response=ModelVersion,
           errors=ERR)  # fmt: skip
async def set_alias(call: Call) -> ModelVersion:
    """Point an alias at a version of a model; returns that version."""
    body: SetAlias = call.body
    return await registry_ops.set_alias(
        call.store, call.path("name"), body.alias, body.version, call.user
    )


@api.route("POST", MODEL + "/aliases/{alias}/delete", scope="write", body=DeleteAlias,
           response=m.Ok, errors=ERR)  # fmt: skip
async def delete_alias(call: Call) -> m.Ok:
    """Remove an alias from a model."""
    await registry_ops.delete_alias(call.store, call.path("name"), call.path("alias"), call.user)
    return m.Ok()


@api.route("POST", MODEL + "/tags", scope="write", body=m.Tags, response=AllTags, errors=ERR)
async def set_model_tags(call: Call) -> AllTags:
    """Set (or overwrite) tags on a model; returns all its tags."""
    tags = await registry_ops.set_model_tags(call.store, call.path("name"), call.body.root)
    return AllTags(tags=tags)


@api.route("POST", MODEL + "/versions/{version:int}/tags", scope="write", body=m.Tags,
           response=AllTags, errors=ERR)  # fmt: skip
async def set_model_version_tags(call: Call) -> AllTags:
    """Set (or overwrite) tags on a model version; returns all its tags."""
    name, version = call.path("name"), _version(call)
    tags = await registry_ops.set_model_version_tags(call.store, name, version, call.body.root)
    return AllTags(tags=tags)


@api.route("POST", MODEL + "/note", scope="write", body=ModelNote, response=ModelDetail,
           errors=ERR)  # fmt: skip
async def set_model_note(call: Call) -> ModelDetail:
    """Replace a model's markdown note; returns the model."""
    return await registry_ops.set_model_note(call.store, call.path("name"), call.body.note)

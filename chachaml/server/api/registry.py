"""Registry writes beside registering and promoting: models, aliases, tags, notes, deletes.

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


class CreateModel(m.Body):
    """A model with no versions yet (registering a version also creates its model)."""

    note: m.Text | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class RenameModel(m.Body):
    """A model's new name."""

    new_name: Annotated[str, m.NoNul] = Field(min_length=1, max_length=500)


class Nothing(m.Body):
    """No fields (send ``{}``)."""


class TagKeys(m.Body):
    """Tag keys to delete (keys the model or version does not have are ignored)."""

    keys: list[Annotated[str, m.NoNul]] = Field(max_length=1000)


class VersionDescription(m.Body):
    """A version's description (``null`` clears it)."""

    description: m.Text | None = None


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


@api.route("POST", MODEL + "/create", scope="write", body=CreateModel, response=ModelDetail,
           status=201, errors=(*ERR, 409))  # fmt: skip
async def create_model(call: Call) -> ModelDetail:
    """Create a model with no versions yet; 409 if the name is taken."""
    body: CreateModel = call.body
    return await registry_ops.create_model(
        call.store, call.path("name"), call.user, body.note, body.tags
    )


@api.route("POST", MODEL + "/rename", scope="write", body=RenameModel, response=ModelDetail,
           errors=(*ERR, 409))  # fmt: skip
async def rename_model(call: Call) -> ModelDetail:
    """Rename a model; returns it under its new name."""
    return await registry_ops.rename_model(call.store, call.path("name"), call.body.new_name)


@api.route("POST", MODEL + "/delete", scope="write", body=Nothing, response=m.Ok, errors=ERR)
async def delete_model(call: Call) -> m.Ok:
    """Delete a model with its versions, aliases, tags and history."""
    await registry_ops.delete_model(call.store, call.path("name"))
    return m.Ok()


@api.route("POST", MODEL + "/tags/delete", scope="write", body=TagKeys, response=AllTags,
           errors=ERR)  # fmt: skip
async def delete_model_tags(call: Call) -> AllTags:
    """Delete tags of a model; returns the tags left."""
    tags = await registry_ops.delete_model_tags(call.store, call.path("name"), call.body.keys)
    return AllTags(tags=tags)


@api.route("POST", MODEL + "/versions/{version:int}/delete", scope="write", body=Nothing,
           response=m.Ok, errors=ERR)  # fmt: skip
async def delete_model_version(call: Call) -> m.Ok:
    """Delete a version with its aliases and tags."""
    await registry_ops.delete_model_version(call.store, call.path("name"), _version(call))
    return m.Ok()


@api.route("POST", MODEL + "/versions/{version:int}/description", scope="write",
           body=VersionDescription, response=ModelVersion, errors=ERR)  # fmt: skip
async def set_model_version_description(call: Call) -> ModelVersion:
    """Replace a version's description; returns the version."""
    return await registry_ops.set_model_version_description(
        call.store, call.path("name"), _version(call), call.body.description
    )


@api.route("POST", MODEL + "/versions/{version:int}/tags/delete", scope="write", body=TagKeys,
           response=AllTags, errors=ERR)  # fmt: skip
async def delete_model_version_tags(call: Call) -> AllTags:
    """Delete tags of a version; returns the tags left."""
    name, version = call.path("name"), _version(call)
    tags = await registry_ops.delete_model_version_tags(call.store, name, version, call.body.keys)
    return AllTags(tags=tags)

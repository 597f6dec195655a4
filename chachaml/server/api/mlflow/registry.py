"""MLflow's model registry endpoints over chachaml's registry operations.

Registered models and versions are chachaml's models and versions (the mapping is in
:mod:`~chachaml.server.api.mlflow.registry_entities`). Two differences follow chachaml:

- **One production version.** ``transition-stage`` to ``Production`` archives the previous
  production version whether or not ``archive_existing_versions`` is set (chachaml's
  guarantee, enforced by the database); with it set, the other versions in the target stage
  (``Staging`` too) are archived in the same transaction, as MLflow does.
- **Versions come from runs.** A version's source must name a run (``runs:/``, a run's
  ``mlflow-artifacts:/`` path, a logged model ``models:/<model id>``, whose id names its run)
  or come with ``run_id``. A source naming exactly one artifact of the run is registered as
  chachaml registers natively (copied, hashed, loadable by ``chachaml.load_model``); any other
  source is kept as given, and a logged model's version reads its files from the model's
  folder of its run (``get_model_version_download_uri``: the proxy's path to it, as MLflow
  answers the model's storage location).

Deleting a version removes it (MLflow keeps a tombstone); its number is never given again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from chachaml.errors import Conflict, InvalidInput, NotFound
from chachaml.records.registry import Model, ModelDetail, ModelVersion
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import filters, wire
from chachaml.server.api.mlflow import registry_entities as ent
from chachaml.server.api.mlflow.artifacts import artifact_store
from chachaml.server.api.mlflow.entities import ARTIFACT_ROOT
from chachaml.server.api.mlflow.ids import experiment_id, millis
from chachaml.server.errors import ApiError
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.logged_models import read_logged_model

api = Api()
Answer = dict[str, Any]
NAME = Field(max_length=500)
MODEL_ATTRIBUTES = {
    "name": "name",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "timestamp": "last_updated_timestamp",
}
MODEL_NUMERIC = frozenset({"creation_timestamp", "last_updated_timestamp"})
VERSION_ATTRIBUTES = {
    "name": "name",
    "version_number": "version_number",
    "version": "version_number",
    "run_id": "run_id",
    "source_path": "source_path",
    "current_stage": "current_stage",
    "creation_timestamp": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "timestamp": "last_updated_timestamp",
}
VERSION_NUMERIC = frozenset({"version_number", "creation_timestamp", "last_updated_timestamp"})
MODELS_PAGE, MODELS_CAP = 100, 1000  # MLflow's defaults for searching registered models
VERSIONS_PAGE, VERSIONS_CAP = 10_000, 200_000  # and model versions


def taken(name: str) -> ApiError:
    """MLflow's answer to a name already used by a registered model."""
    return ApiError(
        400, f"Registered Model (name={name}) already exists.", code="RESOURCE_ALREADY_EXISTS"
    )


# request bodies


class ModelRef(wire.Message):
    """A body naming a registered model."""

    name: str = NAME


class CreateModel(ModelRef):
    """``registered-models/create``."""

    tags: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)
    description: str | None = Field(default=None, max_length=100_000)


class UpdateModel(ModelRef):
    """``registered-models/update``."""

    description: str | None = Field(default=None, max_length=100_000)


class RenameModel(ModelRef):
    """``registered-models/rename``."""

    new_name: str = NAME


class ModelTag(ModelRef):
    """``registered-models/set-tag``."""

    key: str = Field(max_length=250)
    value: str = Field(default="", max_length=100_000)


class DeleteModelTag(ModelRef):
    """``registered-models/delete-tag``."""

    key: str = Field(max_length=250)


class SearchBody(wire.Message):
    """A search's parameters (MLflow's client sends them as GET parameters)."""

    filter: str | None = None
    max_results: int | None = None
    order_by: list[str] = Field(default_factory=list, max_length=20)
    page_token: str | None = None


class LatestVersions(ModelRef):
    """``registered-models/get-latest-versions``."""

    stages: list[str] = Field(default_factory=list, max_length=10)


class VersionRef(ModelRef):
    """A body naming one version (MLflow sends the number as a string)."""

    version: str | int


class CreateVersion(ModelRef):
    """``model-versions/create``."""

    source: str = Field(max_length=4096)
    run_id: str | None = Field(default=None, max_length=100)
    tags: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)
    run_link: str | None = None
    description: str | None = Field(default=None, max_length=100_000)
    model_id: str | None = Field(default=None, max_length=100)


class UpdateVersion(VersionRef):
    """``model-versions/update``."""

    description: str | None = Field(default=None, max_length=100_000)


class TransitionStage(VersionRef):
    """``model-versions/transition-stage``."""

    stage: str = Field(max_length=20)
    archive_existing_versions: bool = False


class VersionTag(VersionRef):
    """``model-versions/set-tag``."""

    key: str = Field(max_length=250)
    value: str = Field(default="", max_length=100_000)


class DeleteVersionTag(VersionRef):
    """``model-versions/delete-tag``."""

    key: str = Field(max_length=250)


class SetAlias(VersionRef):
    """``registered-models/alias`` (POST)."""

    alias: str = Field(max_length=256)


class DeleteAlias(ModelRef):
    """``registered-models/alias`` (DELETE)."""

    alias: str = Field(max_length=256)


# helpers


async def _model(call: Call, name: str) -> Answer:
    return {"registered_model": ent.detail(await registry_ops.get_model(call.store, name))}


async def _version(call: Call, name: str, version: int) -> Answer:
    found = await registry_ops.get_model_version(call.store, name, version)
    return {"model_version": ent.model_version(found)}


def _search_params(call: Call) -> SearchBody:
    """A search's parameters, sent as GET parameters by MLflow's client."""
    query = call.request.query_params
    return SearchBody(
        filter=wire.text_param(call, "filter", required=False),
        max_results=wire.int_param(call, "max_results"),
        order_by=query.getlist("order_by")[:20],
        page_token=wire.text_param(call, "page_token", required=False),
    )


def _checked(clauses: list[filters.Clause], what: str) -> list[filters.Clause]:
    for c in clauses:
        if c.kind not in ("attribute", "tag"):
            raise InvalidInput(f"{what} are filtered by their attributes and tags, not {c.kind}s")
    return clauses


def _ordered(found: list[Any], orders: list[str], attributes: dict[str, str],
             value: Callable[[Any, str], Any], what: str) -> list[Any]:  # fmt: skip
    for text in reversed(orders):
        order = filters.parse_order(text, attributes)
        if order.kind != "attribute":
            raise InvalidInput(f"{what} are ordered by their attributes only")
        key = order.key
        found.sort(key=lambda item: value(item, key), reverse=not order.ascending)
    return found


def _page(
    found: list[Any], given: SearchBody, default: int, cap: int
) -> tuple[list[Any], str | None]:
    size = wire.max_results(given.max_results, default, cap)
    offset = wire.page_offset(given.page_token)
    more = offset + size < len(found)
    return found[offset : offset + size], wire.page_token(offset + size) if more else None


def _model_value(model: Model, key: str) -> Any:
    values = {
        "name": model.name,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(model.updated_at),
    }
    return values[key]


def _version_value(ver: ModelVersion, key: str) -> Any:
    values = {
        "name": ver.model,
        "version_number": ver.version,
        "run_id": ver.run_id,
        "source_path": ent.source_of(ver),
        "current_stage": ent.TO_STAGE[ver.stage],
        "creation_timestamp": millis(ver.created_at),
        "last_updated_timestamp": millis(max(ver.created_at, ver.stage_changed_at)),
    }
    return values[key]


def _passes(item: Any, tags: dict[str, str], clauses: list[filters.Clause],
            value: Callable[[Any, str], Any]) -> bool:  # fmt: skip
    for c in clauses:
        have = tags.get(c.key) if c.kind == "tag" else value(item, c.key)
        if have is None and c.kind == "tag" and c.op == "!=":
            continue  # MLflow's registry: a tag a model lacks is != any value (its client
            # adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every search)
        if not filters.compare(c.op, have, c.value):
            return False
    return True


# registered models


@api.route("POST", "/registered-models/create", scope="write", body=CreateModel, response=Answer)
async def create_registered_model(call: Call) -> Answer:
    """Create a registered model; ``RESOURCE_ALREADY_EXISTS`` if the name is taken."""
    body: CreateModel = call.body
    tags = {t.key: t.value for t in body.tags}
    try:
        made = await registry_ops.create_model(
            call.store, body.name, call.user, body.description or None, tags
        )
    except Conflict:
        raise taken(body.name) from None
    return {"registered_model": ent.detail(made)}


@api.route("GET", "/registered-models/get", scope="read", response=Answer)
async def get_registered_model(call: Call) -> Answer:
    """One registered model by name, with its newest version per stage."""
    return await _model(call, wire.required_param(call, "name"))


@api.route("PATCH", "/registered-models/update", scope="write", body=UpdateModel, response=Answer)
async def update_registered_model(call: Call) -> Answer:
    """Replace a registered model's description (chachaml's model note)."""
    body: UpdateModel = call.body
    await registry_ops.get_model(call.store, body.name)
    if body.description is not None:
        await registry_ops.set_model_note(call.store, body.name, body.description)
    return await _model(call, body.name)


@api.route("POST", "/registered-models/rename", scope="write", body=RenameModel, response=Answer)
async def rename_registered_model(call: Call) -> Answer:
    """Rename a registered model; ``RESOURCE_ALREADY_EXISTS`` if the new name is taken."""
    body: RenameModel = call.body
    try:
        renamed = await registry_ops.rename_model(call.store, body.name, body.new_name)
    except Conflict:
        raise taken(body.new_name) from None
    return {"registered_model": ent.detail(renamed)}


@api.route("DELETE", "/registered-models/delete", scope="write", body=ModelRef, response=Answer)
async def delete_registered_model(call: Call) -> Answer:
    """Delete a registered model with its versions (their runs stay)."""
    await registry_ops.delete_model(call.store, call.body.name)
    return {}


async def _search_models(call: Call, given: SearchBody) -> Answer:
    clauses = _checked(
        filters.parse_filter(given.filter, MODEL_ATTRIBUTES, MODEL_NUMERIC), "registered models"
    )
    found = [
        m for m in await registry_ops.list_models(call.store)
        if _passes(m, m.tags, clauses, _model_value)
    ]  # fmt: skip
    found.sort(key=lambda m: m.name)  # MLflow: by name unless told
    found = _ordered(found, given.order_by, MODEL_ATTRIBUTES, _model_value, "registered models")
    page, token = _page(found, given, MODELS_PAGE, MODELS_CAP)
    details: list[ModelDetail] = []
    for model in page:
        try:
            details.append(await registry_ops.get_model(call.store, model.name))
        except NotFound:  # deleted since the listing
            continue
    answer: Answer = {"registered_models": [ent.detail(d) for d in details]}
    if token:
        answer["next_page_token"] = token
    return answer


@api.route("GET", "/registered-models/search", scope="read", response=Answer)
async def search_registered_models(call: Call) -> Answer:
    """Registered models matching a filter (``name``, ``tags.``), ordered, one page at a time."""
    return await _search_models(call, _search_params(call))


async def _latest(call: Call, name: str, stages: list[str]) -> Answer:
    wanted = [ent.stage_of(s) for s in stages]
    versions = await registry_ops.model_versions(call.store, name)
    latest = ent.latest_per_stage(versions)
    chosen = [latest.get(s) for s in dict.fromkeys(wanted)] if wanted else list(latest.values())
    return {"model_versions": [ent.model_version(v) for v in chosen if v is not None]}


@api.route("POST", "/registered-models/get-latest-versions", scope="read", body=LatestVersions,
           response=Answer)  # fmt: skip
async def get_latest_versions(call: Call) -> Answer:
    """The newest version in each stage asked for (every stage if none)."""
    body: LatestVersions = call.body
    return await _latest(call, body.name, body.stages)


@api.route("GET", "/registered-models/get-latest-versions", scope="read", response=Answer)
async def get_latest_versions_get(call: Call) -> Answer:
    """The newest version in each stage asked for, with the request as GET parameters."""
    stages = call.request.query_params.getlist("stages")[:10]
    return await _latest(call, wire.required_param(call, "name"), stages)


@api.route("POST", "/registered-models/set-tag", scope="write", body=ModelTag, response=Answer)
async def set_registered_model_tag(call: Call) -> Answer:
    """Set a tag on a registered model."""
    body: ModelTag = call.body
    await registry_ops.set_model_tags(call.store, body.name, {body.key: body.value})
    return {}


@api.route("DELETE", "/registered-models/delete-tag", scope="write", body=DeleteModelTag,
           response=Answer)  # fmt: skip
async def delete_registered_model_tag(call: Call) -> Answer:
    """Delete a tag of a registered model (a tag it does not have is no error, as in MLflow)."""
    body: DeleteModelTag = call.body
    await registry_ops.delete_model_tags(call.store, body.name, [body.key])
    return {}


@api.route("POST", "/registered-models/alias", scope="write", body=SetAlias, response=Answer)
async def set_registered_model_alias(call: Call) -> Answer:
    """Point an alias at a version, moving it if it pointed elsewhere."""
    body: SetAlias = call.body
    version = ent.version_number(body.version)
    await registry_ops.set_alias(call.store, body.name, body.alias, version, call.user)
    return {}


@api.route("DELETE", "/registered-models/alias", scope="write", body=DeleteAlias, response=Answer)
async def delete_registered_model_alias(call: Call) -> Answer:
    """Remove an alias from a registered model."""
    body: DeleteAlias = call.body
    await registry_ops.delete_alias(call.store, body.name, body.alias, call.user)
    return {}


@api.route("GET", "/registered-models/alias", scope="read", response=Answer)
async def get_model_version_by_alias(call: Call) -> Answer:
    """The version an alias points at."""
    name = wire.required_param(call, "name")
    alias = wire.required_param(call, "alias")
    found = await registry_ops.get_model_version(call.store, name, alias=alias)
    return {"model_version": ent.model_version(found)}


# model versions


async def _logged_model_source(call: Call, body: CreateVersion, source: str,
                               model_id: str) -> ent.Source:  # fmt: skip
    """A ``models:/<model id>`` source read through its logged model: its run and folder."""
    if body.model_id and body.model_id != model_id:
        raise InvalidInput(f"{source!r} names logged model {model_id!r}, not the model_id"
                           f" {body.model_id!r}")  # fmt: skip
    record = await read_logged_model(call.store, artifact_store(call), model_id)
    if body.run_id and body.run_id != record.run_id:
        raise InvalidInput(f"logged model {model_id!r} was logged on run {record.run_id!r}, not"
                           f" the run_id {body.run_id!r}")  # fmt: skip
    return ent.Source(uri=source, run_id=record.run_id, path=record.path)


async def _resolve(call: Call, body: CreateVersion) -> tuple[ent.Source, str | None]:
    """The run, path and stored source of a new version (``None``: a native registration).

    A logged model's ``models:/<model id>`` (MLflow 3's default source) is read through the
    model's record: the version comes from its run, from the model's folder there.
    """
    source = body.source
    run_id: str | None = body.run_id or None
    if source.startswith("models:/") and ent.model_id_of(source) is None:
        name, _, ref = source.removeprefix("models:/").rpartition("/")
        original = await registry_ops.get_model_version(
            call.store, name, ent.version_number(ref)
        )  # MLflow: a copy of a version names the original's run and source
        source = ent.source_of(original)
        if run_id and run_id != original.run_id:
            raise InvalidInput(f"{body.source!r} comes from run {original.run_id!r}, not"
                               f" the run_id {body.run_id!r}")  # fmt: skip
        run_id = original.run_id
    model_id = ent.model_id_of(source)
    if model_id is not None:
        return await _logged_model_source(call, body, source, model_id), source
    read = ent.read_source(source, run_id)
    await run_ops.get_run(call.store, read.run_id)  # RESOURCE_DOES_NOT_EXIST for a missing run
    if read.path is not None:
        names = {a.name for a in await artifact_ops.list_artifacts(call.store, read.run_id)}
        if read.path in names:
            return read, None
    return read, source


@api.route("POST", "/model-versions/create", scope="write", body=CreateVersion, response=Answer)
async def create_model_version(call: Call) -> Answer:
    """Register the next version of a model from a run's model (the model is created if new)."""
    body: CreateVersion = call.body
    read, stored = await _resolve(call, body)
    tags = {t.key: t.value for t in body.tags}
    made = await registry_ops.register_model(
        call.store, body.name, read.run_id, read.path or stored or read.uri, call.user,
        description=body.description or None, tags=tags, source=stored,
    )  # fmt: skip
    return {"model_version": ent.model_version(made)}


@api.route("GET", "/model-versions/get", scope="read", response=Answer)
async def get_model_version(call: Call) -> Answer:
    """One version of a registered model."""
    name = wire.required_param(call, "name")
    return await _version(call, name, ent.version_number(wire.required_param(call, "version")))


@api.route("PATCH", "/model-versions/update", scope="write", body=UpdateVersion, response=Answer)
async def update_model_version(call: Call) -> Answer:
    """Replace a version's description."""
    body: UpdateVersion = call.body
    version = ent.version_number(body.version)
    if body.description is None:
        return await _version(call, body.name, version)
    found = await registry_ops.set_model_version_description(
        call.store, body.name, version, body.description
    )
    return {"model_version": ent.model_version(found)}


@api.route("POST", "/model-versions/transition-stage", scope="write", body=TransitionStage,
           response=Answer)  # fmt: skip
async def transition_model_version_stage(call: Call) -> Answer:
    """Move a version to a stage; Production archives the previous production version."""
    body: TransitionStage = call.body
    moved = await registry_ops.promote(
        call.store, body.name, ent.version_number(body.version), ent.stage_of(body.stage),
        call.user, "MLflow transition-stage",
        archive_existing=body.archive_existing_versions,
    )  # fmt: skip
    return {"model_version": ent.model_version(moved)}


@api.route("DELETE", "/model-versions/delete", scope="write", body=VersionRef, response=Answer)
async def delete_model_version(call: Call) -> Answer:
    """Delete a version with its aliases and tags."""
    body: VersionRef = call.body
    await registry_ops.delete_model_version(call.store, body.name, ent.version_number(body.version))
    return {}


async def _search_versions(call: Call, given: SearchBody) -> Answer:
    clauses = _checked(
        filters.parse_filter(given.filter, VERSION_ATTRIBUTES, VERSION_NUMERIC), "model versions"
    )
    named = [c.value for c in clauses if c.kind == "attribute" and c.key == "name" and c.op == "="]
    if named:  # one model: read only its versions
        names = [str(named[0])]
    else:
        names = [m.name for m in await registry_ops.list_models(call.store)]
    found: list[ModelVersion] = []
    for name in names:
        try:
            found += await registry_ops.model_versions(call.store, name)
        except NotFound:
            continue
    found = [v for v in found if _passes(v, v.tags, clauses, _version_value)]
    found.sort(key=lambda v: (v.model, -v.version))  # MLflow: by name, newest version first
    found = _ordered(found, given.order_by, VERSION_ATTRIBUTES, _version_value, "model versions")
    page, token = _page(found, given, VERSIONS_PAGE, VERSIONS_CAP)
    answer: Answer = {"model_versions": [ent.model_version(v) for v in page]}
    if token:
        answer["next_page_token"] = token
    return answer


@api.route("GET", "/model-versions/search", scope="read", response=Answer)
async def search_model_versions(call: Call) -> Answer:
    """Versions matching a filter (``name``, ``run_id``, ``version_number``, ``tags.``, ...)."""
    return await _search_versions(call, _search_params(call))


@api.route("GET", "/model-versions/get-download-uri", scope="read", response=Answer)
async def get_model_version_download_uri(call: Call) -> Answer:
    """Where a version's model is read from: its source, or its logged model's folder."""
    name = wire.required_param(call, "name")
    version = ent.version_number(wire.required_param(call, "version"))
    found = await registry_ops.get_model_version(call.store, name, version)
    source = ent.source_of(found)
    if ent.model_id_of(source) is None:
        return {"artifact_uri": source}
    run = await run_ops.get_run(call.store, found.run_id)  # MLflow: the model's storage location
    exp = await experiment_ops.get_experiment(call.store, run.experiment)
    folder = f"{ARTIFACT_ROOT}{experiment_id(exp)}/{run.id}/artifacts/{found.artifact}"
    return {"artifact_uri": folder}


@api.route("POST", "/model-versions/set-tag", scope="write", body=VersionTag, response=Answer)
async def set_model_version_tag(call: Call) -> Answer:
    """Set a tag on a version."""
    body: VersionTag = call.body
    version = ent.version_number(body.version)
    await registry_ops.set_model_version_tags(
        call.store, body.name, version, {body.key: body.value}
    )
    return {}


@api.route("DELETE", "/model-versions/delete-tag", scope="write", body=DeleteVersionTag,
           response=Answer)  # fmt: skip
async def delete_model_version_tag(call: Call) -> Answer:
    """Delete a tag of a version (a tag it does not have is no error, as in MLflow)."""
    body: DeleteVersionTag = call.body
    version = ent.version_number(body.version)
    await registry_ops.delete_model_version_tags(call.store, body.name, version, [body.key])
    return {}

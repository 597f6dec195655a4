"""MLflow's experiment endpoints over chachaml's experiment operations.

An MLflow experiment is a chachaml experiment: its id is chachaml's integer id (``"0"`` the
``default`` experiment), MLflow's *deleted* is chachaml's *archived* (the experiment and its
runs leave listings, and come back on restore), and its tags are the experiment's tags except
``mlflow.note.content``, which is its description. As in MLflow, a deleted experiment keeps
its name (creating or renaming onto it is ``RESOURCE_ALREADY_EXISTS``), is found by id and by
name, cannot be renamed, tagged or logged into, and is searched with ``view_type``. The
default experiment keeps its name: it is how ``"0"`` is found.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chachaml.errors import Conflict, InvalidInput, NotFound
from chachaml.records import validation as v
from chachaml.records.runs import Experiment
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import entities, filters, wire
from chachaml.server.api.mlflow.ids import (
    DEFAULT_ID,
    experiment_by_id,
    experiment_id,
    millis,
    require_active,
)
from chachaml.server.errors import ApiError
from chachaml.tools import experiments as experiment_ops

api = Api()
Answer = dict[str, Any]
ATTRIBUTES = {
    "name": "name",
    "experiment_id": "experiment_id",
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}
NUMERIC = frozenset({"creation_time", "last_update_time"})


class CreateExperiment(wire.Message):
    """``experiments/create``."""

    name: str = Field(max_length=250)
    artifact_location: str | None = None
    tags: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)


class ExperimentRef(wire.Message):
    """A body naming one experiment by id."""

    experiment_id: str = Field(max_length=40)


class UpdateExperiment(ExperimentRef):
    """``experiments/update``."""

    new_name: str | None = None


class ExperimentTag(ExperimentRef):
    """``experiments/set-experiment-tag``."""

    key: str = Field(max_length=250)
    value: str = Field(default="", max_length=100_000)


class DeleteExperimentTag(ExperimentRef):
    """``experiments/delete-experiment-tag``."""

    key: str = Field(max_length=250)


class SearchExperiments(wire.Message):
    """``experiments/search``."""

    max_results: int | None = None
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list, max_length=20)
    view_type: int | str | None = None


@api.route("POST", "/experiments/create", scope="write", body=CreateExperiment, response=Answer)
async def create_experiment(call: Call) -> Answer:
    """Create an experiment; ``RESOURCE_ALREADY_EXISTS`` if the name is taken (even deleted)."""
    body: CreateExperiment = call.body
    name = v.name(body.name, "experiment name")
    try:
        found = await experiment_ops.get_experiment(call.store, name)
    except NotFound:
        pass
    else:
        state = " in deleted state (restore it, or pick another name)" if found.archived else ""
        raise ApiError(
            400, f"experiment {name!r} already exists{state}", code="RESOURCE_ALREADY_EXISTS"
        )
    tags = {t.key: t.value for t in body.tags}
    exp = await experiment_ops.create_experiment(
        call.store, name, tags.pop(entities.NOTE, None) or None, call.user
    )
    for key, value in tags.items():
        await experiment_ops.set_experiment_tag(call.store, exp.id, key, value, call.user)
    return {"experiment_id": experiment_id(exp)}


@api.route("GET", "/experiments/get", scope="read", response=Answer)
async def get_experiment(call: Call) -> Answer:
    """One experiment by id, deleted or not."""
    exp_id = wire.required_param(call, "experiment_id")
    exp = await experiment_by_id(call.store, exp_id, brief=False)
    return {"experiment": entities.experiment(exp)}


@api.route("GET", "/experiments/get-by-name", scope="read", response=Answer)
async def get_experiment_by_name(call: Call) -> Answer:
    """One experiment by name, deleted or not."""
    name = wire.required_param(call, "experiment_name")
    exp = await experiment_ops.get_experiment(call.store, name)
    return {"experiment": entities.experiment(exp)}


def _field(exp: Experiment, key: str) -> Any:
    values = {
        "name": exp.name,
        "experiment_id": experiment_id(exp),
        "creation_time": millis(exp.created_at),
        "last_update_time": millis(exp.last_activity or exp.created_at),
    }
    return values[key]


def _passes(exp: Experiment, clauses: list[filters.Clause]) -> bool:
    for c in clauses:
        if c.kind == "attribute":
            have = _field(exp, c.key)
        elif c.kind == "tag":
            have = entities.experiment_tags(exp).get(c.key)
        else:
            raise ApiError(400, f"experiments cannot be filtered by {c.kind}s")
        if not filters.compare(c.op, have, c.value):
            return False
    return True


@api.route("POST", "/experiments/search", scope="read", body=SearchExperiments, response=Answer)
async def search_experiments(call: Call) -> Answer:
    """Experiments matching a filter, ordered, one page at a time (deleted ones by view_type)."""
    body: SearchExperiments = call.body
    include_archived, only_archived = wire.view_type(body.view_type)
    size = wire.max_results(body.max_results, 1000)
    offset = wire.page_offset(body.page_token)
    clauses = filters.parse_filter(body.filter, ATTRIBUTES, NUMERIC)
    found = [] if only_archived else await experiment_ops.list_experiments(call.store)
    if include_archived or only_archived:
        found += await experiment_ops.list_archived_experiments(call.store)
    found = [e for e in found if _passes(e, clauses)]
    found.sort(key=lambda e: (-e.created_at.timestamp(), e.id))  # MLflow: newest first
    for text in reversed(body.order_by):
        order = filters.parse_order(text, ATTRIBUTES)
        if order.kind != "attribute":
            raise ApiError(400, "experiments are ordered by attributes only")
        found.sort(key=lambda e: _field(e, order.key), reverse=not order.ascending)
    page = found[offset : offset + size]
    answer: Answer = {"experiments": [entities.experiment(e) for e in page]}
    if offset + size < len(found):
        answer["next_page_token"] = wire.page_token(offset + size)
    return answer


@api.route(
    "POST", "/experiments/set-experiment-tag", scope="write", body=ExperimentTag, response=Answer
)
async def set_experiment_tag(call: Call) -> Answer:
    """Set an experiment tag: ``mlflow.note.content`` is the experiment's description."""
    body: ExperimentTag = call.body
    exp = require_active(await experiment_by_id(call.store, body.experiment_id))
    if body.key == entities.NOTE:
        await experiment_ops.create_experiment(call.store, exp.name, body.value)
    else:
        await experiment_ops.set_experiment_tag(call.store, exp.id, body.key, body.value, call.user)
    return {}


@api.route(
    "POST",
    "/experiments/delete-experiment-tag",
    scope="write",
    body=DeleteExperimentTag,
    response=Answer,
)
async def delete_experiment_tag(call: Call) -> Answer:
    """Remove an experiment tag (``mlflow.note.content``: the description)."""
    body: DeleteExperimentTag = call.body
    exp = require_active(await experiment_by_id(call.store, body.experiment_id))
    if body.key == entities.NOTE:
        if not exp.description:
            raise NotFound(f"no tag {body.key!r} on experiment {body.experiment_id!r}")
        await experiment_ops.create_experiment(call.store, exp.name, "")
    else:
        await experiment_ops.delete_experiment_tag(call.store, exp.id, body.key, call.user)
    return {}


@api.route("POST", "/experiments/update", scope="write", body=UpdateExperiment, response=Answer)
async def update_experiment(call: Call) -> Answer:
    """Rename an experiment: active ones only, to a name no experiment holds."""
    body: UpdateExperiment = call.body
    if not body.new_name:
        raise InvalidInput("missing value for required parameter 'new_name'")
    exp = await experiment_by_id(call.store, body.experiment_id)
    if exp.archived:
        raise InvalidInput(f"cannot rename experiment {body.experiment_id!r}: it is deleted")
    if experiment_id(exp) == DEFAULT_ID:
        raise InvalidInput("chachaml's default experiment (id 0) keeps its name 'default'")
    try:
        await experiment_ops.rename_experiment(call.store, exp.id, body.new_name, call.user)
    except Conflict as exc:
        raise ApiError(400, str(exc), code="RESOURCE_ALREADY_EXISTS") from None
    return {}


@api.route("POST", "/experiments/delete", scope="write", body=ExperimentRef, response=Answer)
async def delete_experiment(call: Call) -> Answer:
    """Delete (archive) an active experiment and its runs; restorable."""
    exp = await experiment_by_id(call.store, call.body.experiment_id)
    if exp.archived:  # MLflow looks among active experiments only
        raise NotFound(f"no active experiment with id {call.body.experiment_id!r}")
    await experiment_ops.archive_experiment(call.store, exp.id, call.user)
    return {}


@api.route("POST", "/experiments/restore", scope="write", body=ExperimentRef, response=Answer)
async def restore_experiment(call: Call) -> Answer:
    """Restore a deleted experiment and its runs."""
    exp = await experiment_by_id(call.store, call.body.experiment_id)
    if not exp.archived:  # MLflow looks among deleted experiments only
        raise NotFound(f"no deleted experiment with id {call.body.experiment_id!r}")
    await experiment_ops.restore_experiment(call.store, exp.id, call.user)
    return {}

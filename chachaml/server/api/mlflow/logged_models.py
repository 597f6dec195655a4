"""MLflow 3's logged models (``logged-models``, ``runs/outputs``) as artifacts of a run.

How a logged model maps onto chachaml's data:

- **Its files** are artifacts of its run under the model's name (see below for a second
  model of one name): ``model/MLmodel``,
  ``model/model.pkl``, ... Its ``artifact_uri`` is ``mlflow-artifacts:/<experiment id>/<run
  id>/artifacts/<name>``, so MLflow's client uploads them through the artifact proxy
  (:mod:`~chachaml.server.api.mlflow.artifacts`) as ordinary artifacts, and
  ``load_model("runs:/<run id>/<name>")`` finds them among the run's own. A model logged
  without a run gets a run of its own (named after it, ended when the model is finalized).
- **Its record** (name, type, status, tags, params, times) is the JSON artifact
  ``.mlflow/logged-models/<model id>.json`` of the same run, and the run tag
  ``mlflow.loggedModel.<model id>`` (its value the model's name) indexes it, so one query
  over an experiment's runs finds every model in it.
- **Its id** is ``m-<run id>-<8 hex>``: the run is read from the id, so ``get`` is two reads.
- **Its metrics** are its run's latest metrics.

The record, its id and its index are :mod:`chachaml.tools.logged_models`'s (the importer
writes the same shape).

A second model of the same name on one run gets the folder ``<name>-<8 hex of its id>``
(:func:`~chachaml.tools.logged_models.folder_for`), so their files never mix;
``runs:/<run id>/<name>`` loads the first, ``models:/<model id>`` each. ``delete`` marks the
record deleted and drops the index tag; the files stay with the run until the run is deleted.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from chachaml.errors import Conflict, InvalidInput, NotFound
from chachaml.records.runs import EndStatus, RunInfo, RunQuery
from chachaml.server.access import principal_of
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import entities, filters, wire
from chachaml.server.api.mlflow.artifacts import artifact_store
from chachaml.server.api.mlflow.ids import experiment_by_id, experiment_id
from chachaml.server.api.mlflow.runs import RunRef, delivery
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.logged_models import TAG, folder_for, index_logged_model, new_model_id
from chachaml.tools.logged_models import LoggedModel as Record
from chachaml.tools.logged_models import read_logged_model as read
from chachaml.tools.logged_models import write_logged_model as write

api = Api()
Answer = dict[str, Any]
STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
BAD_NAME = ("/", ":", ".", "%", '"', "'", "@")  # MLflow's, and '@' (models:/name@alias)
PAGE = 100
MAX_PAGE = 10_000
ATTRIBUTES = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "model_status",  # not a run status: filters checks those by this key's name
    "source_run_id": "source_run_id",
    "creation_timestamp": "creation_timestamp",
    "creation_time": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "experiment_id": "experiment_id",
}
NUMERIC = frozenset({"creation_timestamp", "last_updated_timestamp"})


class CreateLoggedModel(wire.Message):
    """``POST logged-models``."""

    experiment_id: str = Field(max_length=40)
    name: str | None = Field(default=None, max_length=250)
    model_type: str | None = Field(default=None, max_length=500)
    source_run_id: str | None = Field(default=None, max_length=250)
    params: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)
    tags: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)


class FinalizeLoggedModel(wire.Message):
    """``PATCH logged-models/{id}``: the status (a name or protobuf's number)."""

    status: str | int


class ModelTags(wire.Message):
    """``PATCH logged-models/{id}/tags``."""

    tags: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)


class ModelParams(wire.Message):
    """``POST logged-models/{id}/params``."""

    params: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)


class OrderBy(wire.Message):
    """One ``order_by`` entry of ``logged-models/search``."""

    field_name: str = Field(max_length=300)
    ascending: bool = True
    dataset_name: str | None = None


class SearchLoggedModels(wire.Message):
    """``POST logged-models/search``."""

    experiment_ids: list[str] = Field(default_factory=list, max_length=1000)
    filter: str | None = Field(default=None, max_length=filters.MAX_FILTER)
    datasets: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    max_results: int | None = None
    order_by: list[OrderBy] = Field(default_factory=list, max_length=20)
    page_token: str | None = Field(default=None, max_length=1000)


class ModelOutput(wire.Message):
    """One model of ``runs/outputs``."""

    model_id: str = Field(max_length=300)
    step: int | None = None


class LogOutputs(RunRef):
    """``runs/outputs``."""

    models: list[ModelOutput] = Field(default_factory=list, max_length=1000)


class LogModel(RunRef):
    """``runs/log-model`` (MLflow 2's record of a model logged on a run)."""

    model_json: str = Field(default="{}", max_length=1_000_000)


def now_ms() -> int:
    """The time now in MLflow's epoch milliseconds."""
    return round(time.time() * 1000)


def artifact_uri(record: Record) -> str:
    """Where MLflow's client reads and writes the model's files (the artifact proxy)."""
    return f"{entities.ARTIFACT_ROOT}{record.experiment_id}/{record.run_id}/artifacts/{record.path}"


def entity(record: Record, metrics: list[dict[str, Any]]) -> Answer:
    """A record as MLflow's ``LoggedModel`` message."""
    info: Answer = {
        "model_id": record.model_id,
        "experiment_id": record.experiment_id,
        "name": record.name,
        "creation_timestamp_ms": record.created_ms,
        "last_updated_timestamp_ms": record.updated_ms,
        "artifact_uri": artifact_uri(record),
        "status": record.status,
        "tags": entities.pairs(record.tags),
    }
    for key in ("model_type", "source_run_id", "status_message"):
        if getattr(record, key):
            info[key] = getattr(record, key)
    return {"info": info, "data": {"params": entities.pairs(record.params), "metrics": metrics}}


def checked_name(name: str | None) -> str:
    """A model's name (a random one if none), usable as a folder and in ``models:/``."""
    if name is None or name == "":
        return f"model-{secrets.token_hex(3)}"
    if any(c in name for c in BAD_NAME) or any(ord(c) < 32 for c in name):
        shown = " ".join(BAD_NAME)
        raise InvalidInput(f"invalid model name {name!r}: it may not hold any of {shown}")
    return name


def status_of(given: str | int) -> str:
    """A status from MLflow's enum name or number."""
    if isinstance(given, int) and 1 <= given <= len(STATUSES):
        return STATUSES[given - 1]
    name = str(given).upper()
    if not name.startswith("LOGGED_MODEL_"):
        name = "LOGGED_MODEL_" + name
    if name not in STATUSES:
        raise InvalidInput(f"unknown logged model status {given!r}: one of {', '.join(STATUSES)}")
    return name


async def answer(call: Call, record: Record) -> Answer:
    """``{"model": ...}`` with the run's latest metrics."""
    run = await run_ops.get_run(call.store, record.run_id)
    return {"model": entity(record, entities.latest_metrics(run, run.metric_summaries))}


async def holder_run(call: Call, exp_name: str, name: str, tags: Mapping[str, str]) -> str:
    """A run of its own for a model logged outside any run; its id."""
    creator = call.user
    if principal_of(call.request).via == "local":
        creator = tags.get(entities.USER) or creator
    new = run_ops.new_run(exp_name, name, created_by=creator)
    await run_ops.start_run(call.store, new, delivery=delivery(call))
    return new.id


@api.route("POST", "/logged-models", scope="write", body=CreateLoggedModel, response=Answer)
async def create_logged_model(call: Call) -> Answer:
    """Create a logged model (pending) on its source run, or on a run of its own."""
    body: CreateLoggedModel = call.body
    exp = await experiment_by_id(call.store, body.experiment_id)
    name = checked_name(body.name)
    tags = {t.key: t.value for t in body.tags}
    if body.source_run_id:
        run = await run_ops.get_run(call.store, body.source_run_id)
        if run.id != body.source_run_id:
            raise NotFound(f"no run with id {body.source_run_id!r}")
        exp_id = experiment_id(await experiment_ops.get_experiment(call.store, run.experiment))
        if exp_id != experiment_id(exp):
            raise InvalidInput(f"run {run.id} is in experiment {exp_id}, not {body.experiment_id}")
        run_id, run_tags = run.id, run.tags
    else:
        run_id, run_tags = await holder_run(call, exp.name, name, tags), {}
    stamp = now_ms()
    model_id = new_model_id(run_id)
    folder = folder_for(run_tags, name, model_id)
    record = Record(
        model_id=model_id,
        folder=None if folder == name else folder,
        experiment_id=experiment_id(exp),
        name=name,
        run_id=run_id,
        source_run_id=body.source_run_id or None,
        model_type=body.model_type or None,
        created_ms=stamp,
        updated_ms=stamp,
        tags=tags,
        params={p.key: p.value for p in body.params},
    )
    await write(call.store, artifact_store(call), record)
    await index_logged_model(call.store, record, call.user)
    return await answer(call, record)


@api.route("GET", "/logged-models/{model_id}", scope="read", response=Answer)
async def get_logged_model(call: Call) -> Answer:
    """One logged model (``allow_deleted=true``: a deleted one too)."""
    allow = (call.request.query_params.get("allow_deleted") or "").lower() == "true"
    record = await read(call.store, artifact_store(call), call.path("model_id"),
                        allow_deleted=allow)  # fmt: skip
    return await answer(call, record)


async def _update(call: Call, change: Any) -> Record:
    """Read a model's record, change it, store it (last writer wins, as MLflow's PATCH)."""
    artifacts = artifact_store(call)
    record = await read(call.store, artifacts, call.path("model_id"))
    change(record)
    record.updated_ms = now_ms()
    await write(call.store, artifacts, record)
    return record


@api.route("PATCH", "/logged-models/{model_id}", scope="write", body=FinalizeLoggedModel,
           response=Answer)  # fmt: skip
async def finalize_logged_model(call: Call) -> Answer:
    """Set a model's final status (a run of its own ends with it)."""
    status = status_of(call.body.status)
    record = await _update(call, lambda r: setattr(r, "status", status))
    if record.source_run_id is None and status != "LOGGED_MODEL_PENDING":
        ended: EndStatus = "completed" if status == "LOGGED_MODEL_READY" else "failed"
        with contextlib.suppress(Conflict):  # ended already (finalized twice)
            await run_ops.end_run(call.store, record.run_id, ended, delivery=delivery(call))
    return await answer(call, record)


@api.route("DELETE", "/logged-models/{model_id}", scope="write", response=Answer)
async def delete_logged_model(call: Call) -> Answer:
    """Mark a model deleted and drop it from searches (its files stay with the run)."""
    record = await _update(call, lambda r: setattr(r, "deleted", True))
    with contextlib.suppress(NotFound):
        await run_ops.delete_tag(call.store, record.run_id, TAG + record.model_id)
    return {}


@api.route("PATCH", "/logged-models/{model_id}/tags", scope="write", body=ModelTags,
           response=Answer)  # fmt: skip
async def set_logged_model_tags(call: Call) -> Answer:
    """Set (or overwrite) tags of a model."""
    tags = {t.key: t.value for t in call.body.tags}
    await _update(call, lambda r: r.tags.update(tags))
    return {}


@api.route("DELETE", "/logged-models/{model_id}/tags/{key:path}", scope="write",
           response=Answer)  # fmt: skip
async def delete_logged_model_tag(call: Call) -> Answer:
    """Remove one tag of a model (no error if it has none of that key)."""
    key = call.path("key")
    await _update(call, lambda r: r.tags.pop(key, None))
    return {}


@api.route("POST", "/logged-models/{model_id}/params", scope="write", body=ModelParams,
           response=Answer)  # fmt: skip
async def log_logged_model_params(call: Call) -> Answer:
    """Log params of a model."""
    params = {p.key: p.value for p in call.body.params}
    await _update(call, lambda r: r.params.update(params))
    return {}


@dataclass(frozen=True)
class Found:
    """A model found by search: its record and its run."""

    record: Record
    run: RunInfo


def attribute(record: Record, key: str) -> Any:
    """A model attribute as search compares and orders it."""
    values: dict[str, Any] = {
        "name": record.name,
        "model_id": record.model_id,
        "model_type": record.model_type,
        "model_status": record.status,
        "source_run_id": record.source_run_id,
        "creation_timestamp": record.created_ms,
        "last_updated_timestamp": record.updated_ms,
        "experiment_id": record.experiment_id,
    }
    return values.get(key)


def value_of(found: Found, kind: str, key: str) -> Any:
    """What a clause or ordering of ``kind.key`` reads from a model."""
    if kind == "attribute":
        return attribute(found.record, key)
    if kind == "tag":
        return found.record.tags.get(key)
    if kind == "param":
        return found.record.params.get(key)
    if kind == "metric":
        return found.run.metrics.get(key)
    raise InvalidInput("logged models are not filtered by dataset")


def matches(found: Found, clauses: list[filters.Clause]) -> bool:
    """Whether a model passes every clause (an absent value fails, as in MLflow)."""
    for c in clauses:
        want = c.value
        if c.kind == "attribute" and c.key == "model_status" and isinstance(want, str):
            want = status_of(want)
        if not filters.compare(c.op, value_of(found, c.kind, c.key), want):
            return False
    return True


def name_passes(name: str, clauses: list[filters.Clause]) -> bool:
    """The cheap check on the index tag alone, before a record is read."""
    return all(
        filters.compare(c.op, name, c.value)
        for c in clauses
        if c.kind == "attribute" and c.key == "name" and c.op in ("=", "!=", "LIKE", "ILIKE")
    )


def sort(models: list[Found], order_by: list[OrderBy]) -> list[Found]:
    """Ordered by each ``order_by`` (absent values last), then newest first, as MLflow does."""
    ordered = sorted(models, key=lambda f: (-f.record.created_ms, f.record.model_id))
    for entry in reversed(order_by):
        order = filters.parse_order(entry.field_name, ATTRIBUTES)
        present = [f for f in ordered if value_of(f, order.kind, order.key) is not None]
        absent = [f for f in ordered if value_of(f, order.kind, order.key) is None]
        present.sort(key=lambda f: value_of(f, order.kind, order.key),
                     reverse=not entry.ascending)  # fmt: skip
        ordered = present + absent
    return ordered


@api.route("POST", "/logged-models/search", scope="read", body=SearchLoggedModels,
           response=Answer)  # fmt: skip
async def search_logged_models(call: Call) -> Answer:
    """Logged models of some experiments, filtered and ordered as MLflow's grammar says."""
    body: SearchLoggedModels = call.body
    if body.datasets or any(o.dataset_name for o in body.order_by):
        raise InvalidInput("chachaml does not scope logged models' metrics by dataset")
    clauses = filters.parse_filter(body.filter, ATTRIBUTES, NUMERIC)
    size = wire.max_results(body.max_results, PAGE, MAX_PAGE)
    offset = wire.page_offset(body.page_token)
    artifacts = artifact_store(call)
    models: list[Found] = []
    for exp_id in dict.fromkeys(body.experiment_ids):
        exp = await experiment_by_id(call.store, exp_id)
        runs = await run_ops.query_runs(call.store, RunQuery(experiment=exp.name, limit=None))
        for run in runs:
            for key, name in run.tags.items():
                if key.startswith(TAG) and name_passes(name, clauses):
                    with contextlib.suppress(NotFound):
                        record = await read(call.store, artifacts, key.removeprefix(TAG))
                        found = Found(record, run)
                        if matches(found, clauses):
                            models.append(found)
    page = sort(models, body.order_by)[offset : offset + size]
    out: Answer = {"models": [entity(f.record, entities.latest_metrics(f.run, None)) for f in page]}
    if offset + size < len(models):
        out["next_page_token"] = wire.page_token(offset + size)
    return out


@api.route("POST", "/runs/outputs", scope="write", body=LogOutputs, response=Answer)
async def log_outputs(call: Call) -> Answer:
    """Name models as outputs of a run: each must exist (a model already belongs to its run)."""
    body: LogOutputs = call.body
    await run_ops.get_run(call.store, body.rid)
    for model in body.models:
        await read(call.store, artifact_store(call), model.model_id)
    return {}


@api.route("POST", "/runs/log-model", scope="write", body=LogModel, response=Answer)
async def log_model(call: Call) -> Answer:
    """MLflow 2's model record: checked; the model's files on the run are what chachaml keeps."""
    body: LogModel = call.body
    await run_ops.get_run(call.store, body.rid)
    try:
        parsed = json.loads(body.model_json)
    except ValueError:
        raise InvalidInput("model_json is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidInput("model_json must be a JSON object (an MLmodel's fields)")
    return {}

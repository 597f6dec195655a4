"""MLflow's run endpoints (create, get, update, delete, restore, tags, params, inputs).

Each goes through chachaml's run operations (:mod:`chachaml.tools.runs`), so a run logged by
an MLflow client is an ordinary chachaml run. MLflow's system tags that are chachaml fields
(:data:`~chachaml.server.api.mlflow.entities.FIELD_TAGS`) set those fields:
``mlflow.runName`` the name, ``mlflow.note.content`` the note, ``mlflow.parentRunId`` the
parent and ``mlflow.user`` who created it (without tokens: in team mode a run is the token
user's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from chachaml.errors import Conflict, InvalidInput
from chachaml.records.runs import Run
from chachaml.server.access import principal_of
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import entities, wire
from chachaml.server.api.mlflow.ids import (
    ENDED,
    experiment_by_id,
    experiment_id,
    require_active,
    seconds,
)
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.webhooks import Delivery

api = Api()
Answer = dict[str, Any]
RUN_ID = 250  # chachaml's longest run id; MLflow's are 32 hex characters


class RunRef(wire.Message):
    """A body naming one run (``run_uuid`` is MLflow's older name for ``run_id``)."""

    run_id: str | None = Field(default=None, max_length=RUN_ID)
    run_uuid: str | None = Field(default=None, max_length=RUN_ID)

    @property
    def rid(self) -> str:
        """The run id, whichever field carried it."""
        found = self.run_id or self.run_uuid
        if not found:
            raise InvalidInput("missing value for required parameter 'run_id'")
        return found


class CreateRun(wire.Message):
    """``runs/create``."""

    experiment_id: str | None = Field(default=None, max_length=40)
    user_id: str | None = Field(default=None, max_length=250)
    start_time: int | None = Field(default=None, ge=0, le=253_402_300_799_000)
    tags: list[wire.KeyValue] = Field(default_factory=list, max_length=1000)
    run_name: str | None = Field(default=None, max_length=250)


class UpdateRun(RunRef):
    """``runs/update``."""

    status: str | None = None
    end_time: int | None = Field(default=None, ge=0, le=253_402_300_799_000)
    run_name: str | None = Field(default=None, max_length=250)


class SetTag(RunRef):
    """``runs/set-tag``."""

    key: str = Field(max_length=250)
    value: str = Field(default="", max_length=100_000)


class DeleteTag(RunRef):
    """``runs/delete-tag``."""

    key: str = Field(max_length=250)


class LogParam(RunRef):
    """``runs/log-parameter``."""

    key: str = Field(max_length=250)
    value: str = Field(default="", max_length=8000)


class LogInputs(RunRef):
    """``runs/log-inputs``: datasets (a logged model's inputs are not kept yet)."""

    datasets: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


def delivery(call: Call) -> Delivery:
    """The app's webhook delivery settings (alerts fire on MLflow writes too)."""
    found: Delivery = call.request.app.state.delivery
    return found


async def run_answer(call: Call, run: Run) -> Answer:
    """A run in full as MLflow's ``Run`` message."""
    exp = await experiment_ops.get_experiment(call.store, run.experiment)
    return entities.run(run, experiment_id(exp), run.params, run.metric_summaries)


async def set_tags(call: Call, run_id: str, tags: Mapping[str, str]) -> None:
    """Set tags, the system tags that are chachaml fields setting those fields."""
    plain = {k: val for k, val in tags.items() if k not in entities.FIELD_TAGS}
    for key in (entities.USER, entities.PARENT):
        if key in tags:
            raise InvalidInput(f"tag {key!r} is set when the run is created, not after")
    if entities.RUN_NAME in tags:
        await run_ops.rename_run(call.store, run_id, tags[entities.RUN_NAME])
    if entities.NOTE in tags:
        await run_ops.set_note(call.store, run_id, tags[entities.NOTE], call.user)
    if plain:
        await run_ops.set_tags(call.store, run_id, plain, call.user)


async def log_params(call: Call, run_id: str, params: Mapping[str, str]) -> None:
    """Log params as MLflow does: a value equal to the stored one's text is no change.

    A natively logged ``lr=0.01`` is stored typed (a float); MLflow's client logs the text
    ``"0.01"``, which is the same param to MLflow. Any other value is a conflict.
    """
    try:
        await run_ops.log_params(call.store, run_id, params)
    except Conflict:
        stored = (await run_ops.run_params(call.store, [run_id])).get(run_id, {})
        if any(k in stored and entities.param_text(stored[k]) != val for k, val in params.items()):
            raise
        fresh = {k: val for k, val in params.items() if k not in stored}
        if fresh:
            await run_ops.log_params(call.store, run_id, fresh)


@api.route("POST", "/runs/create", scope="write", body=CreateRun, response=Answer)
async def create_run(call: Call) -> Answer:
    """Start a running run in an experiment (``"0"``: the default experiment)."""
    body: CreateRun = call.body
    exp = require_active(await experiment_by_id(call.store, body.experiment_id or "0"))
    tags = {t.key: t.value for t in body.tags}
    creator = call.user
    if principal_of(call.request).via == "local":  # no tokens: the client says who it is
        creator = tags.get(entities.USER) or body.user_id or call.user
    new = run_ops.new_run(
        exp.name,
        body.run_name or tags.get(entities.RUN_NAME) or None,
        created_by=creator,
        started_at=seconds(body.start_time),
        parent_id=tags.get(entities.PARENT) or None,
        tags={k: val for k, val in tags.items() if k not in entities.FIELD_TAGS},
    )
    await run_ops.start_run(call.store, new, delivery=delivery(call))
    if tags.get(entities.NOTE):
        await run_ops.set_note(call.store, new.id, tags[entities.NOTE], call.user)
    run = await run_ops.get_run(call.store, new.id)
    return {"run": entities.run(run, experiment_id(exp), {}, {})}


@api.route("GET", "/runs/get", scope="read", response=Answer)
async def get_run(call: Call) -> Answer:
    """One run: info, latest metrics, params, tags and dataset inputs."""
    run = await run_ops.get_run(call.store, wire.required_param(call, "run_id", "run_uuid"))
    return {"run": await run_answer(call, run)}


@api.route("POST", "/runs/update", scope="write", body=UpdateRun, response=Answer)
async def update_run(call: Call) -> Answer:
    """Rename a run and/or end it (a run ends once: a second end keeps the first)."""
    body: UpdateRun = call.body
    rid = body.rid
    if body.run_name:
        await run_ops.rename_run(call.store, rid, body.run_name)
    if body.status is not None and body.status.upper() not in ("RUNNING", "SCHEDULED"):
        status = ENDED.get(body.status.upper())
        if status is None:
            raise InvalidInput(f"unknown run status {body.status!r}")
        # already ended: MLflow's client may end a run again (end_run after a failure)
        with contextlib.suppress(Conflict):
            await run_ops.end_run(
                call.store, rid, status, ended_at=seconds(body.end_time), delivery=delivery(call)
            )
    run = await run_ops.get_run(call.store, rid)
    exp = await experiment_ops.get_experiment(call.store, run.experiment)
    return {"run_info": entities.run_info(run, experiment_id(exp))}


@api.route("POST", "/runs/delete", scope="write", body=RunRef, response=Answer)
async def delete_run(call: Call) -> Answer:
    """Delete a run: archived (restorable) until archived runs are removed."""
    await run_ops.delete_run(call.store, call.body.rid)
    return {}


@api.route("POST", "/runs/restore", scope="write", body=RunRef, response=Answer)
async def restore_run(call: Call) -> Answer:
    """Restore a deleted (archived) run."""
    await run_ops.restore_run(call.store, call.body.rid)
    return {}


@api.route("POST", "/runs/set-tag", scope="write", body=SetTag, response=Answer)
async def set_tag(call: Call) -> Answer:
    """Set one tag (``mlflow.runName`` renames the run, ``mlflow.note.content`` its note)."""
    body: SetTag = call.body
    await set_tags(call, body.rid, {body.key: body.value})
    return {}


@api.route("POST", "/runs/delete-tag", scope="write", body=DeleteTag, response=Answer)
async def delete_tag(call: Call) -> Answer:
    """Remove one tag (``mlflow.runName``: the name, ``mlflow.note.content``: the note)."""
    body: DeleteTag = call.body
    if body.key == entities.RUN_NAME:
        await run_ops.rename_run(call.store, body.rid, None)
    elif body.key == entities.NOTE:
        await run_ops.set_note(call.store, body.rid, "", call.user)
    elif body.key in entities.FIELD_TAGS:
        raise InvalidInput(f"tag {body.key!r} is part of the run and cannot be removed")
    else:
        await run_ops.delete_tag(call.store, body.rid, body.key)
    return {}


@api.route("POST", "/runs/log-parameter", scope="write", body=LogParam, response=Answer)
async def log_param(call: Call) -> Answer:
    """Log one param (the same value again is fine; another is INVALID_PARAMETER_VALUE)."""
    body: LogParam = call.body
    await log_params(call, body.rid, {body.key: body.value})
    return {}


@api.route("POST", "/runs/log-inputs", scope="write", body=LogInputs, response=Answer)
async def log_inputs(call: Call) -> Answer:
    """Attach dataset inputs to a run (each as a chachaml dataset record)."""
    body: LogInputs = call.body
    datasets = [entities.dataset_of(d) for d in body.datasets]
    for ds in datasets:
        await run_ops.log_dataset(call.store, body.rid, ds)
    return {}

"""Events: every state change as a CloudEvents 1.0 record, and the payload of each type.

An event is written in the transaction of the change it reports (the store's outbox) and
read back in the order of a store-wide sequence, which is its ``id``; SSE (and later brokers,
webhooks and MCP subscriptions) deliver them from there. Each type's payload is one model
below, listed in :data:`EVENT_TYPES`: that table feeds the README's table, the JSON Schema
the server publishes for each type (:func:`event_schema`) and the store's validation of what
it writes, so they cannot drift.

Besides the CloudEvents attributes an event carries three extension attributes (CloudEvents
names them in lowercase letters and digits): ``experiment``, ``runid`` and ``model``, what
consumers filter on without parsing ``data``.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "chachaml"
TYPE_PATTERN = re.compile(r"^[a-z_.*?]{1,100}$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventData(_Model):
    """The payload of one event type: ``type`` names it, the rest says what it is about."""

    type: ClassVar[str]

    @classmethod
    def summary(cls) -> str:
        """What an event of this type reports (the docstring, for the table and schemas)."""
        return (cls.__doc__ or "").strip()

    def subject(self) -> str:
        """The CloudEvents ``subject``: the path of the thing that changed."""
        raise NotImplementedError

    def run(self) -> str | None:
        """The run this event is about, if any (the ``runid`` extension)."""
        return getattr(self, "run_id", None)

    def model(self) -> str | None:
        """The model this event is about, if any (the ``model`` extension)."""
        return None

    def experiment(self) -> str | None:
        """The experiment, when no run names it (else the store looks it up from the run)."""
        return None


class _RunData(EventData):
    run_id: str

    def subject(self) -> str:
        return f"runs/{self.run_id}"


class RunStarted(_RunData):
    """A run was created (running)."""

    type: ClassVar[str] = "run.started"
    name: str | None = None
    created_by: str | None = None
    parent_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class RunEnded(_RunData):
    """A run ended: its status, duration and latest metric values."""

    type: ClassVar[str] = "run.ended"
    status: str
    error: str | None = None
    duration: float = Field(description="seconds from start to end")
    metrics: dict[str, float | None] = Field(description="each metric's latest value")


class RunKilled(_RunData):
    """A running run's heartbeat went stale (found by the server's sweep, sent once)."""

    type: ClassVar[str] = "run.killed"
    heartbeat_at: float = Field(description="the last heartbeat, epoch seconds")
    heartbeat_timeout: float


class RunTagged(_RunData):
    """Tags of a run were set or one was removed."""

    type: ClassVar[str] = "run.tagged"
    tags: dict[str, str] = Field(default_factory=dict, description="tags set, new values")
    removed: list[str] = Field(default_factory=list, description="tag keys removed")
    user: str | None = None


class RunNoted(_RunData):
    """A run's note was replaced."""

    type: ClassVar[str] = "run.noted"
    note: str
    user: str | None = None


class LatestPoint(_Model):
    """The last point of one metric in a batch."""

    value: float | None
    step: int


class MetricsLogged(_RunData):
    """A batch of metric points was stored: one event per run per batch, never per point."""

    type: ClassVar[str] = "run.metrics"
    metrics: dict[str, LatestPoint] = Field(description="each metric's latest point in the batch")
    counts: dict[str, int] = Field(description="points stored per metric in the batch")


class ExperimentCreated(EventData):
    """An experiment was created (explicitly or by its first run)."""

    type: ClassVar[str] = "experiment.created"
    name: str

    def subject(self) -> str:  # noqa: D102
        return f"experiments/{self.name}"

    def experiment(self) -> str | None:  # noqa: D102
        return self.name


class _ExperimentData(EventData):
    name: str = Field(description="the experiment's name (after the change)")
    user: str | None = Field(default=None, description="who changed it")

    def subject(self) -> str:
        return f"experiments/{self.name}"

    def experiment(self) -> str | None:
        return self.name


class ExperimentRenamed(_ExperimentData):
    """An experiment was renamed (its runs and alert rules follow it)."""

    type: ClassVar[str] = "experiment.renamed"
    previous: str = Field(description="the name it had")


class ExperimentArchived(_ExperimentData):
    """An experiment was archived with its runs (MLflow's delete): out of listings."""

    type: ClassVar[str] = "experiment.archived"


class ExperimentRestored(_ExperimentData):
    """An archived experiment was brought back with its runs."""

    type: ClassVar[str] = "experiment.restored"


class ExperimentTagged(_ExperimentData):
    """A tag of an experiment was set or removed."""

    type: ClassVar[str] = "experiment.tagged"
    tags: dict[str, str] = Field(default_factory=dict, description="tags set, new values")
    removed: list[str] = Field(default_factory=list, description="tag keys removed")


class _ModelData(EventData):
    name: str

    def subject(self) -> str:
        return f"models/{self.name}"

    def model(self) -> str | None:
        return self.name


class ModelVersionRegistered(_ModelData):
    """A model version was registered from an artifact of a run."""

    type: ClassVar[str] = "model.registered"
    version: int
    run_id: str
    artifact: str
    stage: str | None = None
    user: str | None = None

    def subject(self) -> str:  # noqa: D102
        return f"models/{self.name}/versions/{self.version}"


class ModelStageChanged(_ModelData):
    """A model version moved to another stage."""

    type: ClassVar[str] = "model.stage_changed"
    version: int
    from_stage: str | None
    to_stage: str | None
    user: str | None = None
    reason: str | None = None

    def subject(self) -> str:  # noqa: D102
        return f"models/{self.name}/versions/{self.version}"


class ModelAliasSet(_ModelData):
    """An alias of a model was pointed at a version."""

    type: ClassVar[str] = "model.alias_set"
    alias: str
    version: int
    previous: int | None = Field(default=None, description="the version it pointed at before")
    user: str | None = None


class ModelAliasRemoved(_ModelData):
    """An alias of a model was removed."""

    type: ClassVar[str] = "model.alias_removed"
    alias: str
    version: int | None = Field(default=None, description="the version it pointed at")
    user: str | None = None


class AlertFired(EventData):
    """An alert rule fired."""

    type: ClassVar[str] = "alert.fired"
    alert: str
    event_id: int = Field(description="the alert event's id (its history)")
    alert_subject: str = Field(description="what it fired about: a run id or an experiment")
    message: str
    run_id: str | None = None
    experiment_name: str | None = None

    def subject(self) -> str:  # noqa: D102
        return f"alerts/{self.alert}"

    def experiment(self) -> str | None:  # noqa: D102
        return self.experiment_name


class _PipelineData(EventData):
    pipeline_id: str

    def subject(self) -> str:
        return f"pipelines/{self.pipeline_id}"


class PipelineStarted(_PipelineData):
    """A pipeline was created (or resumed) on its run."""

    type: ClassVar[str] = "pipeline.started"
    name: str
    run_id: str
    resumed: bool = False


class PipelineStepChanged(_PipelineData):
    """A pipeline step changed status (running, completed, failed, ...)."""

    type: ClassVar[str] = "pipeline.step_changed"
    step: str
    status: str
    attempt: int | None = None
    run_id: str | None = Field(default=None, description="the run the step runs in")
    error: str | None = None


class PipelineEnded(_PipelineData):
    """A pipeline ended."""

    type: ClassVar[str] = "pipeline.ended"
    status: str
    error: str | None = None
    run_id: str | None = None


class StopRequested(_RunData):
    """Someone asked a running run to stop; its process sees it at its next heartbeat."""

    type: ClassVar[str] = "run.stop_requested"
    reason: str | None = None
    user: str | None = Field(default=None, description="who asked")
    parent_id: str | None = Field(
        default=None, description="asked of this run's parent (a pipeline's run), not of it"
    )


EVENT_TYPES: dict[str, type[EventData]] = {
    kind.type: kind
    for kind in (
        RunStarted,
        RunEnded,
        RunKilled,
        RunTagged,
        RunNoted,
        MetricsLogged,
        StopRequested,
        ExperimentCreated,
        ExperimentRenamed,
        ExperimentArchived,
        ExperimentRestored,
        ExperimentTagged,
        ModelVersionRegistered,
        ModelStageChanged,
        ModelAliasSet,
        ModelAliasRemoved,
        AlertFired,
        PipelineStarted,
        PipelineStepChanged,
        PipelineEnded,
    )
}


class Event(_Model):
    """One event as CloudEvents 1.0 (JSON format) carries it; ``id`` is the store's sequence."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="the store-wide sequence number, as text (SSE's event id)")
    source: str = SOURCE
    type: str = Field(description="one of the types in the events table (run.ended, ...)")
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    experiment: str | None = Field(default=None, description="extension: the experiment")
    runid: str | None = Field(default=None, description="extension: the run")
    model: str | None = Field(default=None, description="extension: the registered model")

    @property
    def seq(self) -> int:
        """The sequence number (``id`` as an integer)."""
        return int(self.id)

    @cached_property
    def json_bytes(self) -> bytes:
        """The event as CloudEvents JSON, encoded once for every stream that sends it."""
        return self.model_dump_json().encode()


class EventFilter(_Model):
    """Which events a consumer wants: type patterns (``run.*``) and the things they are about.

    Every field given must match (an empty ``types`` matches every type).
    """

    types: tuple[str, ...] = ()
    experiment: str | None = None
    run_id: str | None = None
    model: str | None = None

    def matches(self, event: Event) -> bool:
        """Whether ``event`` passes this filter."""
        if self.types and not any(fnmatch.fnmatchcase(event.type, p) for p in self.types):
            return False
        if self.experiment is not None and event.experiment != self.experiment:
            return False
        if self.run_id is not None and event.runid != self.run_id:
            return False
        return self.model is None or event.model == self.model


def check_type_pattern(pattern: str) -> str | None:
    """Why a type pattern is refused (``None``: fine): it must match some known type."""
    if not TYPE_PATTERN.match(pattern):
        return f"event type pattern {pattern!r} may hold only a-z, '_', '.', '*' and '?'"
    if not any(fnmatch.fnmatchcase(t, pattern) for t in EVENT_TYPES):
        known = ", ".join(EVENT_TYPES)
        return f"event type pattern {pattern!r} matches no event type (there are {known})"
    return None


def event_schema(type_: str) -> dict[str, Any]:
    """The JSON Schema of a whole event of this type: the CloudEvents envelope and its data."""
    data = EVENT_TYPES[type_].model_json_schema()
    envelope = Event.model_json_schema()
    envelope["title"] = type_
    envelope["description"] = EVENT_TYPES[type_].summary()
    envelope["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    properties = dict(envelope["properties"])
    properties["type"] = {"const": type_, "type": "string"}
    defs = {**envelope.get("$defs", {}), **data.pop("$defs", {})}
    properties["data"] = data
    envelope["properties"] = properties
    # every attribute is always sent (CloudEvents requires the first four)
    envelope["required"] = list(properties)
    if defs:
        envelope["$defs"] = defs
    return envelope

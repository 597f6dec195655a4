"""The model registry's records: models, versions, audit events and version diffs.

Like :mod:`chachaml.records.runs`, every record is a frozen pydantic model with aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chachaml.records.runs import Dataset, ParamValue

Stage = Literal["none", "staging", "production", "archived"]
STAGES: tuple[str, ...] = ("none", "staging", "production", "archived")
EventKind = Literal["stage", "alias"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelVersion(_Model):
    """One registered version: the exact artifact bytes of a run, a stage, aliases and tags.

    The artifact's URI, hash and serializer are copied at registration, so re-logging an
    artifact of the same name on the run never changes a registered version.
    """

    model: str
    version: int
    stage: Stage
    run_id: str
    artifact: str
    artifact_uri: str
    sha256: str
    serializer: str
    content_type: str
    size: int
    description: str | None = None
    created_by: str
    created_at: datetime
    stage_changed_at: datetime
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict)


class Model(_Model):
    """A registered model as lists show it."""

    name: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    version_count: int
    latest_version: int | None = None
    production_version: int | None = None
    aliases: dict[str, int] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class StageChange(_Model):
    """An audit event: a version's stage changed, or an alias was set, moved or removed.

    For ``kind="stage"``, ``old``/``new`` are stages (``old`` is ``None`` at registration);
    for ``kind="alias"`` they are version numbers as text (``None`` when set or removed).
    """

    model: str
    kind: EventKind
    version: int
    alias: str | None = None
    old: str | None = None
    new: str | None = None
    user: str
    at: datetime
    reason: str | None = None


class ModelDetail(Model):
    """Everything about a model: versions (newest first), note and audit trail (oldest first)."""

    note: str | None = None
    versions: list[ModelVersion] = Field(default_factory=list)
    history: list[StageChange] = Field(default_factory=list)


class NewModelVersion(_Model):
    """What the store needs to register a version of a model (created if new)."""

    model: str
    run_id: str
    artifact: str
    stage: Stage = "none"
    description: str | None = None
    created_by: str
    tags: dict[str, str] = Field(default_factory=dict)


class ParamChange(_Model):
    """A param of the source runs that differs; ``None`` with ``in_vN=False`` means absent."""

    v1: ParamValue = None
    v2: ParamValue = None
    in_v1: bool = True
    in_v2: bool = True


class MetricDelta(_Model):
    """A metric's latest value on each source run and ``v2 - v1`` when both exist."""

    v1: float | None = None
    v2: float | None = None
    delta: float | None = None


class DatasetChange(_Model):
    """A field of the dataset with one role that differs between the two source runs."""

    role: str
    field: str
    v1: str | int | list[str] | None = None
    v2: str | int | list[str] | None = None


class VersionDiff(_Model):
    """Two versions of a model compared through their source runs and artifacts."""

    model: str
    v1: ModelVersion
    v2: ModelVersion
    same_run: bool
    params: dict[str, ParamChange] = Field(default_factory=dict)
    metrics: dict[str, MetricDelta] = Field(default_factory=dict)
    artifact_changed: bool
    datasets: list[DatasetChange] = Field(default_factory=list)
    datasets_v1: list[Dataset] = Field(default_factory=list)
    datasets_v2: list[Dataset] = Field(default_factory=list)

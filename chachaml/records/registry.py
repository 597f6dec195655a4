"""The model registry's records: models, versions, audit events and version diffs.

Like :mod:`chachaml.records.runs`, every record is a frozen pydantic model with aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chachaml.records import display as d
from chachaml.records.display import Html
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

    def __repr__(self) -> str:
        return d.one_line(
            "ModelVersion",
            f"{d.clip(self.model, 40)} v{self.version}",
            self.stage,
            f"run={d.short_id(self.run_id)}",
            d.pairs(self.metrics, 2),
        )

    def _repr_html_(self) -> str:
        title = Html(f"<strong>{d.esc(self.model)} v{self.version}</strong> {d.badge(self.stage)}")
        facts = d.fields(
            [
                ("run", d.code(self.run_id)),
                ("artifact", self.artifact),
                ("size", d.size(self.size)),
                ("sha256", d.code(self.sha256[:16])),
                ("serializer", self.serializer),
                ("description", self.description),
                ("registered by", self.created_by),
                ("registered (UTC)", self.created_at),
                ("stage since (UTC)", self.stage_changed_at),
                ("aliases", self.aliases),
                ("tags", self.tags),
            ]
        )
        metrics = d.section("metrics", d.fields(sorted(self.metrics.items())))
        return d.card(title, facts, metrics if self.metrics else Html(""))


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

    def __repr__(self) -> str:
        prod = f"production=v{self.production_version}" if self.production_version else ""
        return d.one_line(
            type(self).__name__,
            d.clip(self.name, 40),
            f"{self.version_count} versions",
            prod,
            " ".join(f"{a}=v{v}" for a, v in sorted(self.aliases.items())),
        )

    def _repr_html_(self) -> str:
        return d.card(_model_title(self), _model_facts(self))


def _model_title(model: Model) -> Html:
    return Html(f"<strong>model {d.esc(model.name)}</strong>")


def _model_facts(model: Model) -> Html:
    return d.fields(
        [
            ("versions", model.version_count),
            ("latest", f"v{model.latest_version}" if model.latest_version else None),
            ("production", f"v{model.production_version}" if model.production_version else None),
            ("aliases", {a: f"v{v}" for a, v in sorted(model.aliases.items())}),
            ("tags", model.tags),
            ("created by", model.created_by),
            ("created (UTC)", model.created_at),
            ("updated (UTC)", model.updated_at),
        ]
    )


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

    def _repr_html_(self) -> str:
        parts = [_model_facts(self)]
        if self.note:
            parts.append(d.section("note", d.text_block(self.note)))
        if self.versions:
            heads = ["version", "stage", "run", "artifact", "aliases", "by", "registered (UTC)"]
            rows = [
                [
                    v.version,
                    d.badge(v.stage),
                    d.code(d.short_id(v.run_id)),
                    v.artifact,
                    v.aliases,
                    v.created_by,
                    v.created_at,
                ]
                for v in self.versions
            ]
            parts.append(d.section("versions", d.table(heads, rows)))
        if self.history:
            heads = ["at (UTC)", "user", "change", "version", "from", "to", "reason"]
            events = [
                [e.at, e.user, _change(e), e.version, e.old, e.new, e.reason]
                for e in reversed(self.history)
            ]
            parts.append(d.section("history (newest first)", d.table(heads, events)))
        return d.card(_model_title(self), *parts)


class NewModelVersion(_Model):
    """What the store needs to register a version of a model (created if new).

    ``source`` is set for a version registered through MLflow's API from a model location
    that is not one artifact of the run (an MLflow model directory, a logged model): the
    version records it as ``artifact_uri`` (serializer ``mlflow``) and ``artifact`` names the
    path in the run, as MLflow's registry keeps a source without reading it.
    """

    model: str
    run_id: str
    artifact: str
    stage: Stage = "none"
    description: str | None = None
    created_by: str
    tags: dict[str, str] = Field(default_factory=dict)
    source: str | None = None


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

    def __repr__(self) -> str:
        return d.one_line(
            "VersionDiff",
            f"{d.clip(self.model, 40)} v{self.v1.version}->v{self.v2.version}",
            f"{len(self.params)} params differ",
            f"{len(self.metrics)} metrics",
            "artifact changed" if self.artifact_changed else "same artifact",
        )

    def _repr_html_(self) -> str:
        a, b = f"v{self.v1.version}", f"v{self.v2.version}"
        title = Html(f"<strong>{d.esc(self.model)}: {a} → {b}</strong>")
        facts = d.fields(
            [
                ("runs", f"{d.short_id(self.v1.run_id)} → {d.short_id(self.v2.run_id)}"),
                ("same run", self.same_run),
                ("artifact changed", self.artifact_changed),
            ]
        )
        parts = [facts]
        if self.params:
            rows = [
                [k, _side(c.v1, c.in_v1), _side(c.v2, c.in_v2)]
                for k, c in sorted(self.params.items())
            ]
            parts.append(d.section("params that differ", d.table(["param", a, b], rows)))
        if self.metrics:
            deltas = [[k, m.v1, m.v2, m.delta] for k, m in sorted(self.metrics.items())]
            heads = ["metric", a, b, "delta"]
            parts.append(d.section("metrics", d.table(heads, deltas)))
        if self.datasets:
            changes = [[c.role, c.field, c.v1, c.v2] for c in self.datasets]
            heads = ["role", "field", a, b]
            parts.append(d.section("datasets that differ", d.table(heads, changes)))
        return d.card(title, *parts)


def _change(event: StageChange) -> str:
    return event.kind if event.alias is None else f"alias {event.alias}"


def _side(value: ParamValue, present: bool) -> object:
    return value if present else Html("<em>absent</em>")

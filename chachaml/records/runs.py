"""The typed records every query returns (pydantic models, JSON-ready).

Times are timezone-aware UTC datetimes. Metric values are floats; a NaN latest value
reads as ``None`` (SQL stores NaN as NULL) while ``inf``/``-inf`` are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RunStatus = Literal["running", "completed", "failed", "killed"]
EndStatus = Literal["completed", "failed", "killed"]
Direction = Literal["max", "min"]
RunOrder = Literal["started", "name", "experiment", "status", "user", "duration"]
RUN_ORDERS: tuple[str, ...] = ("started", "name", "experiment", "status", "user", "duration")
Op = Literal[">", ">=", "<", "<=", "="]

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "killed")
OPS: tuple[str, ...] = (">", ">=", "<", "<=", "=")

ParamValue = str | int | float | bool | None


@overload
def to_datetime(epoch: float) -> datetime: ...
@overload
def to_datetime(epoch: None) -> None: ...
@overload
def to_datetime(epoch: float | None) -> datetime | None: ...
def to_datetime(epoch: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (``None`` stays ``None``)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Experiment(_Model):
    """An experiment: a named group of runs."""

    id: int
    name: str
    description: str | None = None
    owner: str | None = None
    created_at: datetime
    run_count: int = 0
    last_activity: datetime | None = None


class MetricSummary(_Model):
    """A run's metric at a glance: its latest value (highest step) and range."""

    key: str
    last: float | None
    step: int
    timestamp: datetime
    min: float | None = None
    max: float | None = None
    count: int


class MetricSeries(_Model):
    """The full history of one metric of one run, ordered by step."""

    run_id: str
    key: str
    steps: list[int]
    values: list[float | None]
    timestamps: list[float]


class Dataset(_Model):
    """A dataset a run used, with its role (``train``, ``eval``, ...) and shape."""

    role: str
    name: str | None = None
    n_rows: int | None = None
    n_cols: int | None = None
    features: list[str] = Field(default_factory=list)
    source: str | None = None
    digest: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _storable(self) -> Dataset:
        """No NUL and bounded lengths on every surface (HTTP bodies, ``log_dataset``).

        PostgreSQL cannot store NUL (it failed as a 500) and SQLite would keep it; a dataset
        describes data rather than holding it, so its text has sizes to match.
        """
        from chachaml.records import validation  # validation imports this module

        validation.dataset(self)
        return self


class Artifact(_Model):
    """A stored artifact of a run: name, type, size and content hash."""

    name: str
    content_type: str
    serializer: str
    size: int
    sha256: str
    uri: str
    created_at: datetime


class RunInfo(_Model):
    """A run as lists show it: identity, status, timing, tags and latest metric values."""

    id: str
    experiment: str
    name: str | None
    status: RunStatus
    created_by: str
    started_at: datetime
    ended_at: datetime | None = None
    error: str | None = None
    parent_id: str | None = None
    archived: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        """Wall time from start to end, ``None`` while running."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class Run(RunInfo):
    """Everything about one run: params, metric summaries, note, datasets, artifacts, children."""

    params: dict[str, ParamValue] = Field(default_factory=dict)
    metric_summaries: dict[str, MetricSummary] = Field(default_factory=dict)
    note: str | None = None
    note_by: str | None = None  # who last set the note (the token's user on a server)
    note_at: datetime | None = None
    tag_by: dict[str, str] = Field(default_factory=dict)  # who last set each tag
    datasets: list[Dataset] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
    children: list[str] = Field(default_factory=list)


class BestRun(_Model):
    """The winning run for a metric, with the value and step that won."""

    run: RunInfo
    metric: str
    value: float
    step: int
    direction: Direction


class Comparison(_Model):
    """Runs side by side: every param and metric by run id, and which params differ."""

    runs: list[RunInfo]
    params: dict[str, dict[str, ParamValue]]
    differing_params: list[str]
    metrics: dict[str, dict[str, float | None]]


class Table(_Model):
    """A small table artifact: column headers and rows."""

    headers: list[str]
    rows: list[list[Any]]


class MetricCondition(_Model):
    """``metric op value`` on a run's latest value of the metric."""

    key: str
    op: Op
    value: float


class RunQuery(_Model):
    """A filter over runs; every field narrows the result. Used by every run listing."""

    experiment: str | None = None
    status: RunStatus | None = None
    created_by: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    metric_conditions: list[MetricCondition] = Field(default_factory=list)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    parent_id: str | None = None
    include_archived: bool = False
    only_archived: bool = False
    order_by: RunOrder = "started"  # a run field to sort by; order_by_metric takes precedence
    order_by_metric: str | None = None
    direction: Direction = "max"  # max: newest, largest or Z first; min: the reverse
    limit: int | None = Field(default=100, ge=1, le=1_000_000)  # None: every run
    offset: int = Field(default=0, ge=0, le=2**62)

    @field_validator("since", "until")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        """Aware UTC from 1970 to 9999: what stores hold (a naive time is taken as UTC)."""
        if value is None:
            return None
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            seconds = aware.timestamp()
        except (OverflowError, ValueError):
            seconds = -1.0
        if not 0 <= seconds <= 253_402_300_799.0:
            raise ValueError("must be between 1970-01-01 and 9999-12-31 (UTC)")
        return aware

    @model_validator(mode="after")
    def _no_nul(self) -> RunQuery:
        """Text filters without NUL, which PostgreSQL cannot compare (the same on SQLite)."""
        texts = [self.experiment, self.created_by, self.parent_id, self.order_by_metric]
        texts += [c.key for c in self.metric_conditions]
        texts += [*self.tags, *self.tags.values(), *self.params]
        texts += [x for x in self.params.values() if isinstance(x, str)]
        if any(t is not None and "\x00" in t for t in texts):
            raise ValueError("a filter contains a NUL character (\\x00), which no store accepts")
        return self


@dataclass(frozen=True, slots=True)
class MetricChunk:
    """A batch of points of one metric of one run, packed as the store ingests them.

    ``steps`` is little-endian int64, ``values`` and ``timestamps`` little-endian float64;
    the ``last_*``/``min``/``max`` fields summarise the chunk for the per-run metric summary.
    ``batch`` names the batch a chunk was sent in, so that a batch sent again (a retry after
    a lost reply or a crash) is not stored twice.
    """

    run_id: str
    key: str
    count: int
    steps: bytes
    values: bytes
    timestamps: bytes
    last_value: float | None
    last_step: int
    last_time: float
    min_value: float | None
    max_value: float | None
    batch: str | None = None  # a retried batch with this id (per run) is stored only once


class NewRun(_Model):
    """What the store needs to create a run."""

    id: str
    experiment: str
    name: str | None
    created_by: str
    started_at: float
    parent_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    heartbeat_timeout: float


class ArtifactRecord(_Model):
    """What the store records for a stored artifact."""

    run_id: str
    name: str
    content_type: str
    serializer: str
    size: int
    sha256: str
    uri: str
    created_at: float

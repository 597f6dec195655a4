"""The typed records every query returns (pydantic models, JSON-ready).

Times are timezone-aware UTC datetimes. Metric values are floats; a NaN latest value
reads as ``None`` (SQL stores NaN as NULL) while ``inf``/``-inf`` are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, SupportsIndex, overload

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chachaml.records import display as d
from chachaml.records.display import Html
from chachaml.records.metrics import MetricChunk as MetricChunk  # re-exported: their old home
from chachaml.records.metrics import MetricPoints as MetricPoints
from chachaml.records.metrics import MetricSeries as MetricSeries

RunStatus = Literal["running", "completed", "failed", "killed", "stopped"]
EndStatus = Literal["completed", "failed", "killed", "stopped"]
Direction = Literal["max", "min"]
RunOrder = Literal["started", "name", "experiment", "status", "user", "duration"]
RUN_ORDERS: tuple[str, ...] = ("started", "name", "experiment", "status", "user", "duration")
Op = Literal[">", ">=", "<", "<=", "="]

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "killed", "stopped")
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
    archived: bool = False  # MLflow's "deleted": out of listings, with its runs, restorable
    tags: dict[str, str] = Field(default_factory=dict)

    def __repr__(self) -> str:
        return d.one_line("Experiment", d.clip(self.name, 40), f"runs={self.run_count}")

    def _repr_html_(self) -> str:
        title = Html(f"<strong>experiment {d.esc(self.name)}</strong>")
        return d.card(
            title,
            d.fields(
                [
                    ("description", self.description),
                    ("owner", self.owner),
                    ("runs", self.run_count),
                    ("created (UTC)", self.created_at),
                    ("last activity (UTC)", self.last_activity),
                ]
            ),
        )


class MetricSummary(_Model):
    """A run's metric at a glance: its latest value (highest step) and range."""

    key: str
    last: float | None
    step: int
    timestamp: datetime
    min: float | None = None
    max: float | None = None
    count: int

    def __repr__(self) -> str:
        last = d.num(self.last) or "None"
        return d.one_line("MetricSummary", f"{d.clip(self.key, 40)}={last}", f"n={self.count}")


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


class StopRequest(_Model):
    """Someone asked a running run to stop: who, why and when.

    The run's process sees it at its next heartbeat (``should_stop()`` turns true), and a
    run that then ends as completed is stored as ``stopped``.
    """

    run_id: str
    user: str | None = None
    reason: str | None = None
    requested_at: datetime


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

    def __repr__(self) -> str:
        where = f"{d.clip(self.experiment, 24)}/{d.clip(self.name or '-', 30)}"
        return d.one_line(
            type(self).__name__, d.short_id(self.id), where, self.status, d.pairs(self.metrics)
        )

    def _repr_html_(self) -> str:
        return d.card(_run_title(self), _run_facts(self), _metrics_and_tags(self))


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
    # Liveness: a running run silent past heartbeat_at + heartbeat_timeout reads killed.
    heartbeat_at: datetime | None = None
    heartbeat_timeout: float | None = None
    stop_request: StopRequest | None = None  # who asked the run to stop, why, and when

    def _repr_html_(self) -> str:
        parts = [_run_facts(self)]
        if self.error:
            parts.append(d.section("error", d.text_block(self.error)))
        if self.metric_summaries:
            summaries = sorted(self.metric_summaries.values(), key=lambda m: m.key)
            heads = ["metric", "last", "min", "max", "step", "points"]
            rows = [[m.key, m.last, m.min, m.max, m.step, m.count] for m in summaries]
            parts.append(d.section("metrics", d.table(heads, rows)))
        elif self.metrics:
            parts.append(d.section("metrics", d.fields(sorted(self.metrics.items()))))
        if self.params:
            parts.append(d.section("params", d.fields(sorted(self.params.items()))))
        if self.tags:
            parts.append(d.section("tags", d.fields(sorted(self.tags.items()))))
        if self.note:
            parts.append(d.section("note", d.text_block(self.note)))
        if self.datasets:
            sets = [[x.role, x.name, x.n_rows, x.n_cols, x.source] for x in self.datasets]
            heads = ["role", "name", "rows", "cols", "source"]
            parts.append(d.section("datasets", d.table(heads, sets)))
        if self.artifacts:
            files = [[a.name, a.content_type, d.size(a.size), a.serializer] for a in self.artifacts]
            heads = ["name", "type", "size", "serializer"]
            parts.append(d.section("artifacts", d.table(heads, files)))
        if self.children:
            kids = d.esc(", ".join(d.short_id(c) for c in self.children))
            parts.append(
                d.section(f"child runs ({len(self.children)})", Html(f"<div>{kids}</div>"))
            )
        return d.card(_run_title(self), *parts)


def _run_title(run: RunInfo) -> Html:
    name = d.esc(run.name) if run.name else Html("<em>unnamed</em>")
    return Html(
        f"<strong>{name}</strong> {d.badge(run.status)} in <strong>{d.esc(run.experiment)}</strong>"
        f" · run {d.code(d.short_id(run.id))}"
    )


def _run_facts(run: RunInfo) -> Html:
    return d.fields(
        [
            ("id", d.code(run.id)),
            ("user", run.created_by),
            ("started (UTC)", run.started_at),
            ("duration", d.duration(run.duration_seconds) or None),
            ("parent", d.code(run.parent_id) if run.parent_id else None),
            ("archived", True if run.archived else None),
        ]
    )


def _metrics_and_tags(run: RunInfo) -> Html:
    parts = []
    if run.error:
        parts.append(d.section("error", d.text_block(run.error)))
    if run.metrics:
        parts.append(d.section("metrics", d.fields(sorted(run.metrics.items()))))
    if run.tags:
        parts.append(d.section("tags", d.fields(sorted(run.tags.items()))))
    return Html("".join(parts))


class Runs(list[RunInfo]):
    """A list of runs that shows itself as a table in a notebook.

    Still a plain ``list`` to every caller (``==`` with a list, ``json``, pydantic); slicing
    gives ``Runs`` again so ``runs[:5]`` displays the same way.
    """

    __slots__ = ()

    METRIC_COLUMNS = 8  # like the CLI's table: the most common metrics, then "+N more"

    def __init__(self, runs: Iterable[RunInfo] = ()) -> None:
        super().__init__(runs)

    @overload
    def __getitem__(self, index: SupportsIndex) -> RunInfo: ...
    @overload
    def __getitem__(self, index: slice) -> Runs: ...
    def __getitem__(self, index: SupportsIndex | slice) -> RunInfo | Runs:
        if isinstance(index, slice):
            return Runs(super().__getitem__(index))
        return super().__getitem__(index)

    def __repr__(self) -> str:
        if not self:
            return "Runs([])"
        head = [f"  {r!r}," for r in list.__getitem__(self, slice(0, 5))]
        if len(self) > 5:
            head.append(f"  ... {len(self) - 5} more ({len(self)} runs)")
        return "Runs([\n" + "\n".join(head) + "\n])"

    def _repr_html_(self) -> str:
        counts = Counter(k for r in self for k in r.metrics)
        keys = sorted(k for k, _ in counts.most_common(self.METRIC_COLUMNS))
        rows: list[Sequence[object]] = [
            [
                d.code(d.short_id(r.id)),
                r.experiment,
                r.name,
                d.badge(r.status),
                r.created_by,
                r.started_at,
                d.duration(r.duration_seconds),
                *(r.metrics.get(k) for k in keys),
            ]
            for r in list.__getitem__(self, slice(0, d.ROW_LIMIT))
        ]
        heads = ["id", "experiment", "name", "status", "user", "started (UTC)", "duration", *keys]
        experiments = len({r.experiment for r in self})
        title = f"{len(self)} runs in {experiments} experiment{'s' * (experiments != 1)}"
        if len(counts) > len(keys):
            title += f"; {len(keys)} of {len(counts)} metrics shown"
        return d.card(
            Html(f"<strong>{d.esc(title)}</strong>"), d.table(heads, rows, total=len(self))
        )


class BestRun(_Model):
    """The winning run for a metric, with the value and step that won."""

    run: RunInfo
    metric: str
    value: float
    step: int
    direction: Direction

    def __repr__(self) -> str:
        return d.one_line(
            "BestRun",
            f"{d.clip(self.metric, 30)}={d.num(self.value)} ({self.direction}, step {self.step})",
            d.short_id(self.run.id),
            f"{d.clip(self.run.experiment, 24)}/{d.clip(self.run.name or '-', 30)}",
        )

    def _repr_html_(self) -> str:
        title = Html(
            f"best <strong>{d.esc(self.metric)}</strong> = <strong>{d.esc(d.num(self.value))}"
            f"</strong> ({d.esc(self.direction)}imum, step {self.step})"
        )
        run = Html(f"<div>{_run_title(self.run)}</div>")
        return d.card(title, run, _run_facts(self.run), _metrics_and_tags(self.run))


class Comparison(_Model):
    """Runs side by side: every param and metric by run id, and which params differ."""

    runs: list[RunInfo]
    params: dict[str, dict[str, ParamValue]]
    differing_params: list[str]
    metrics: dict[str, dict[str, float | None]]

    def __repr__(self) -> str:
        differing = ", ".join(self.differing_params[:3])
        more = len(self.differing_params) - 3
        return d.one_line(
            "Comparison",
            f"{len(self.runs)} runs",
            " ".join(d.short_id(r.id)[:8] for r in self.runs[:4]),
            f"differing: {differing}" + (f" +{more}" if more > 0 else ""),
        )

    def _repr_html_(self) -> str:
        heads = [Html("")] + [
            Html(f"{d.code(d.short_id(r.id))}<br>{d.esc(r.name or '')}") for r in self.runs
        ]
        differing = set(self.differing_params)
        order = sorted(self.params, key=lambda k: (k not in differing, k))
        rows: list[list[object]] = [
            [Html(f"<strong>{d.esc(k)} ≠</strong>") if k in differing else d.esc(k)]
            + [self.params[k].get(r.id) for r in self.runs]
            for k in order
        ]
        rows += [
            [Html(f"<em>{d.esc(k)}</em>")] + [self.metrics[k].get(r.id) for r in self.runs]
            for k in sorted(self.metrics)
        ]
        title = (
            f"{len(self.runs)} runs compared: {len(self.differing_params)} of "
            f"{len(self.params)} params differ (≠), {len(self.metrics)} metrics (italic)"
        )
        return d.card(Html(f"<strong>{d.esc(title)}</strong>"), d.table(heads, rows))


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
    experiments: list[str] = Field(default_factory=list, max_length=1000)  # in any of these
    run_ids: list[str] = Field(default_factory=list, max_length=10_000)  # only these runs
    # named one of these (an unnamed run: by its ``mlflow.runName`` tag, as MLflow shows it)
    names: list[str] = Field(default_factory=list, max_length=10_000)
    # children of this run: by parent, or for a run without one by its ``mlflow.parentRunId``
    # tag (an imported run whose parent was not imported keeps the id there)
    parent_ref: str | None = None
    status: RunStatus | None = None
    created_by: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    metric_conditions: list[MetricCondition] = Field(default_factory=list)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    # params whose text is this, whatever their type (MLflow's view: a natively logged 0.1
    # reads "0.1", True "True"): what MLflow's ``params.lr = '0.1'`` asks
    param_texts: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    # only runs without this metric's latest value (absent or NaN) / without this param:
    # the runs an order by the metric or param leaves out, which MLflow lists after the rest
    without_metric: str | None = None
    without_param: str | None = None
    parent_id: str | None = None
    parent_ids: list[str] = Field(default_factory=list, max_length=1000)  # children of any
    top_level: bool = False  # only runs without a parent (child runs nest under theirs)
    name_contains: str | None = None  # the name holds this text, whatever its case
    # the experiment of this exact name, else every experiment whose name holds this text
    experiment_contains: str | None = None
    id_prefix: str | None = None  # runs whose id starts with this (a copied short id)
    include_archived: bool = False
    only_archived: bool = False
    order_by: RunOrder = "started"  # a run field to sort by; order_by_metric takes precedence
    order_by_metric: str | None = None
    order_by_param: str | None = None  # only runs with the param: numbers first, then text
    direction: Direction = "max"  # max: newest, largest or Z first; min: the reverse
    limit: int | None = Field(default=100, ge=1, le=1_000_000)  # None: every run
    offset: int = Field(default=0, ge=0, le=2**62)
    # count_runs stops counting here (a table says "10,000+" rather than join every run)
    count_up_to: int | None = Field(default=None, ge=1, le=1_000_000_000)

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
        texts += [self.name_contains, self.experiment_contains, self.order_by_param]
        texts += self.parent_ids
        texts += [c.key for c in self.metric_conditions]
        texts += [*self.tags, *self.tags.values(), *self.params]
        texts += [*self.param_texts, *self.param_texts.values()]
        texts += [self.without_metric, self.without_param, self.parent_ref]
        texts += [*self.experiments, *self.run_ids, *self.names]
        texts += [x for x in self.params.values() if isinstance(x, str)]
        if any(t is not None and "\x00" in t for t in texts):
            raise ValueError("a filter contains a NUL character (\\x00), which no store accepts")
        return self


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

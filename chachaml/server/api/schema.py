"""Request and response bodies of the HTTP API (pydantic models, also the OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, Strict

from chachaml.records import validation as v
from chachaml.records.registry import Stage
from chachaml.records.runs import Artifact, EndStatus, ParamValue, RunInfo, StopRequest

Key = Field(min_length=1, max_length=250)
LAST_SECOND = v.LAST_SECOND  # 9999-12-31T23:59:59Z, the last time a datetime can hold
Time = Annotated[float, Field(ge=0, le=LAST_SECOND, allow_inf_nan=False,
                              description="seconds since the epoch (UTC)")]  # fmt: skip
WEEK = 7 * 86400.0


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(v.NUL_MESSAGE)
    return value


def _no_nul_json(value: dict[str, Any]) -> dict[str, Any]:
    try:
        v.no_nul(value, "text")
    except ValueError:
        raise ValueError(v.NUL_MESSAGE) from None
    return value


# Every text a body carries is refused with NUL, which PostgreSQL cannot store: the same 422
# on both backends, before anything reaches the store.
NoNul = AfterValidator(_no_nul)
Short = Annotated[str, Field(max_length=v.MAX_KEY), NoNul]  # user names, ids
Text = Annotated[str, Field(max_length=v.MAX_TEXT), NoNul]  # notes, descriptions, errors
Json = Annotated[dict[str, Any], AfterValidator(_no_nul_json)]
# A metric value is a JSON number (an integer is fine): not "1", not true, as in Python.
Number = Annotated[float, Strict()]
Step = Annotated[int, Strict(), Field(ge=-(2**63), lt=2**63)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRun(_Body):
    """Start a run. ``id`` and ``started_at`` let a client choose them (else generated/now)."""

    experiment: Annotated[str, NoNul] = Field(default="default", min_length=1, max_length=500)
    name: Annotated[str, NoNul] | None = Field(default=None, max_length=500)
    tags: dict[str, str] = Field(default_factory=dict)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    parent_id: Short | None = None
    id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="letters, digits, '_' and '-' (safe in a URL path); clients use 32 hex digits",
    )
    started_at: Time | None = None
    environment: Json = Field(default_factory=dict)
    heartbeat_timeout: float = Field(
        default=3600.0, gt=0, le=WEEK, allow_inf_nan=False,
        description="seconds without a heartbeat after which the run reads killed (at most a week)",
    )  # fmt: skip
    created_by: Short | None = Field(
        default=None, description="Used only when the server accepts writes without tokens."
    )


class RunCreated(BaseModel):
    """The new run's id and who it is attributed to."""

    id: str
    created_by: str


class Ok(BaseModel):
    """A write succeeded."""

    ok: bool = True


class Params(RootModel[dict[str, ParamValue]]):
    """Params to record: key to scalar; a changed value is a 409."""


class Tags(RootModel[dict[str, str]]):
    """Tags to set (or overwrite)."""


class Note(_Body):
    """A run's markdown note (replaces the previous one)."""

    note: Text


class MetricPoint(_Body):
    """One point; a missing step continues after the metric's last step, ``timestamp`` is now."""

    key: str = Key
    value: Number | None = Field(description="null stores NaN")
    step: Step | None = None
    timestamp: Time | None = None


class PackedSeries(_Body):
    """Points of one metric as packed little-endian arrays, base64 (the Python client's form).

    ``steps`` int64, ``values`` and ``timestamps`` float64, equally long.
    """

    key: str = Key
    steps: str
    values: str
    timestamps: str


class PackedPoints(PackedSeries):
    """Points of one metric in a step range, packed, with the whole series' extent.

    ``total`` counts every point of the metric, ``first_step`` and ``last_step`` are its
    lowest and highest step, whatever the range asked for.
    """

    total: int
    first_step: int
    last_step: int


class PackedOutline(PackedPoints):
    """A step range of one metric for a chart, packed (the store's ``metric_outline``).

    ``positions`` (int64, base64) gives each point's index among the ``in_range`` points of
    the range; null when the points are all of the range's points. ``outlined`` (int64,
    base64): each chunk given by its outline as first position, points and block size.
    """

    in_range: int
    positions: str | None
    outlined: str = ""


class MetricBatch(_Body):
    """Many points: a list of points and/or packed series."""

    metrics: list[MetricPoint] = Field(default_factory=list)
    series: list[PackedSeries] = Field(default_factory=list)


class MetricValues(RootModel[dict[Annotated[str, Key], Number | None]]):
    """Latest values to log at the next step of each metric, e.g. ``{"accuracy": 0.94}``."""


class MetricsLogged(BaseModel):
    """How many points were stored."""

    points: int


class EndRun(_Body):
    """End a run."""

    status: EndStatus = "completed"
    error: Text | None = None
    ended_at: Time | None = None


class Heartbeat(_Body):
    """Runs that are still alive."""

    run_ids: list[Short] = Field(max_length=10_000)


class HeartbeatReply(BaseModel):
    """The heartbeat was recorded; the stop requests pending for those runs come back with it."""

    ok: bool = True
    stops: list[StopRequest] = Field(
        default_factory=list, description="who asked which of the runs to stop, and why"
    )


class StopRun(_Body):
    """Ask a running run to stop (the request is attributed to the token's user)."""

    reason: Annotated[str, NoNul] | None = Field(default=None, max_length=2000)


class CreateExperiment(_Body):
    """Create an experiment (or update its description and owner)."""

    name: Annotated[str, NoNul] = Field(min_length=1, max_length=500)
    description: Text | None = None
    owner: Short | None = None


class RenameExperiment(_Body):
    """Give an experiment another name."""

    name: Annotated[str, NoNul] = Field(min_length=1, max_length=500)


class ArchiveExperiment(_Body):
    """Archive an experiment with its runs (``true``), or restore both (``false``)."""

    archived: bool = True


class ExperimentTag(_Body):
    """Set one tag of an experiment."""

    key: Short
    value: Annotated[str, Field(max_length=v.MAX_TAG_VALUE), NoNul]


class ExperimentTagKey(_Body):
    """Remove one tag of an experiment."""

    key: Short


class RegisterModel(_Body):
    """Register the next version of a model from an artifact of a run."""

    name: Annotated[str, NoNul] = Field(min_length=1, max_length=500)
    run_id: Short = Field(min_length=1)
    artifact: Annotated[str, NoNul] = Field(min_length=1, max_length=1024)
    stage: Stage = "none"
    description: Text | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    source: Annotated[str, NoNul] | None = Field(default=None, min_length=1, max_length=4096)


class Promote(_Body):
    """Move a version to a stage (production archives the previous production version)."""

    stage: Stage
    reason: Text | None = None
    archive_existing: bool = False


class StoredObjectOut(BaseModel):
    """Uploaded bytes, content-addressed: the URI to record an artifact with."""

    uri: str
    sha256: str
    size: int


class ArtifactRecordIn(_Body):
    """Record an artifact of a run from bytes uploaded to ``/api/w/objects``."""

    name: str = Field(min_length=1, max_length=1024)
    uri: str = Field(max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    content_type: Short = "application/octet-stream"
    serializer: Short = "file"


class Archive(_Body):
    """Archive ended runs started before a time (epoch seconds), optionally of one experiment."""

    started_before: Time
    experiment: Short | None = None


class DeleteArchived(_Body):
    """Delete every archived run, with the artifact files nothing else uses (send ``{}``)."""


class RunIds(_Body):
    """Several run ids."""

    run_ids: list[Short] = Field(max_length=10_000)


class RunList(BaseModel):
    """Runs matching a query."""

    runs: list[RunInfo]


class Count(BaseModel):
    """How many."""

    count: int


class ParamsByRun(BaseModel):
    """Params of several runs, by run id."""

    params: dict[str, dict[str, ParamValue]]


class ChildCounts(BaseModel):
    """How many child runs each run has, by run id (runs without any are absent)."""

    counts: dict[str, int]


class ArtifactList(BaseModel):
    """A run's artifacts."""

    artifacts: list[Artifact]


class ObjectRef(_Body):
    """A stored object as its record names it: content-addressed URI, sha256 and size."""

    uri: str = Field(max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, lt=2**63)


class Contained(BaseModel):
    """Whether the object is stored, complete."""

    stored: bool


class Body(_Body):
    """A request body of the newer modules: an unknown field is a 422, not silently dropped."""

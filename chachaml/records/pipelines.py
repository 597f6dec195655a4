"""The records of pipelines: a pipeline, its steps, and what the store needs to create one.

Like :mod:`chachaml.records.runs`, every record is a frozen pydantic model with aware UTC datetimes.
A pipeline is also a run (``run_id``) and each step attempt a child run of it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chachaml.records import display as d
from chachaml.records.display import Html

#: The tag on a pipeline's run and its steps' runs that names the pipeline (stored data).
PIPELINE_TAG = "chachaml.pipeline"

PipelineStatus = Literal["running", "completed", "failed", "killed", "stopped"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped", "killed"]
PIPELINE_STATUSES: tuple[str, ...] = ("running", "completed", "failed", "killed", "stopped")
STEP_STATUSES: tuple[str, ...] = (
    "pending",
    "running",
    "completed",
    "failed",
    "skipped",
    "killed",
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


class PipelineStep(_Model):
    """One step: dependencies, options, status, timing, attempts, latest run and result.

    ``target`` is where the step's callable can be imported from (``module:qualname``) when
    it can be, which is what lets another process resume the pipeline.
    ``result`` is the step's return value when it round-trips through JSON unchanged
    (``result_stored``); other results reach dependents in memory only.
    """

    name: str
    position: int
    depends_on: list[str] = Field(default_factory=list)
    target: str | None = None
    retries: int = 0
    backoff: float = 0.0
    timeout: float | None = None
    status: StepStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    attempts: int = 0
    run_id: str | None = None
    result_stored: bool = False
    result: Any = None

    @property
    def duration_seconds(self) -> float | None:
        """Wall time of the step (every attempt), ``None`` until it ended."""
        return _seconds(self.started_at, self.ended_at)

    def __repr__(self) -> str:
        tries = f"attempts={self.attempts}" if self.attempts > 1 else ""
        return d.one_line("PipelineStep", d.clip(self.name, 40), self.status, tries)


class PipelineInfo(_Model):
    """A pipeline as lists show it; ``step_counts`` counts its steps by status.

    A pipeline whose process died reads as ``killed`` (its run's heartbeat stopped), and so
    do the steps that were running in it.
    """

    id: str
    name: str
    description: str | None = None
    status: PipelineStatus
    run_id: str | None = None
    created_by: str
    started_at: datetime
    ended_at: datetime | None = None
    error: str | None = None
    max_parallel: int
    resumes: int = 0
    step_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        """Wall time from start (or last resume) to end, ``None`` while running."""
        return _seconds(self.started_at, self.ended_at)

    def __repr__(self) -> str:
        steps = " ".join(f"{n} {s}" for s, n in sorted(self.step_counts.items()))
        return d.one_line(
            type(self).__name__,
            d.short_id(self.id),
            d.clip(self.name, 40),
            self.status,
            f"steps: {steps}" if steps else "",
        )

    def _repr_html_(self) -> str:
        return d.card(_pipeline_title(self), _pipeline_facts(self))


def _pipeline_title(p: PipelineInfo) -> Html:
    return Html(
        f"<strong>pipeline {d.esc(p.name)}</strong> {d.badge(p.status)}"
        f" · {d.code(d.short_id(p.id))}"
    )


def _pipeline_facts(p: PipelineInfo) -> Html:
    parts = [
        d.fields(
            [
                ("description", p.description),
                ("run", d.code(p.run_id) if p.run_id else None),
                ("user", p.created_by),
                ("started (UTC)", p.started_at),
                ("duration", d.duration(p.duration_seconds) or None),
                ("max parallel", p.max_parallel),
                ("resumes", p.resumes or None),
                ("steps", " ".join(f"{n} {s}" for s, n in sorted(p.step_counts.items()))),
            ]
        )
    ]
    if p.error:
        parts.append(d.section("error", d.text_block(p.error)))
    return Html("".join(parts))


class PipelineDetail(PipelineInfo):
    """Everything about a pipeline, with its steps in definition order."""

    steps: list[PipelineStep] = Field(default_factory=list)

    def _repr_html_(self) -> str:
        heads = ["step", "status", "depends on", "attempts", "duration", "run", "error"]
        rows = [
            [
                s.name,
                d.badge(s.status),
                s.depends_on,
                s.attempts,
                d.duration(s.duration_seconds),
                d.code(d.short_id(s.run_id)) if s.run_id else None,
                d.clip(s.error, 200) if s.error else None,
            ]
            for s in self.steps
        ]
        steps = d.section("steps", d.table(heads, rows))
        return d.card(_pipeline_title(self), _pipeline_facts(self), steps)


class NewPipelineStep(_Model):
    """A step as the store records it when the pipeline starts (status ``pending``)."""

    name: str
    depends_on: list[str] = Field(default_factory=list)
    target: str | None = None
    retries: int = 0
    backoff: float = 0.0
    timeout: float | None = None


class NewPipeline(_Model):
    """What the store needs to create a running pipeline whose run already exists."""

    id: str
    name: str
    description: str | None = None
    run_id: str
    created_by: str
    started_at: float
    max_parallel: int
    steps: list[NewPipelineStep]

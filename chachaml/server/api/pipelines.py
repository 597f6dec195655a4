"""Pipelines over HTTP: reads under ``/api/store/v1/pipelines``, writes under ``/api/w/``.

A pipeline run by training code against a server (``CHACHAML_STORE=http://...``) records its
progress here: created with every step pending, each step started and ended, the pipeline
ended, or resumed later. Each endpoint is one call of an operation in
:mod:`chachaml.tools.pipelines`; the store checks every state change (a write against the
wrong state is a 409), so the HTTP layer only shapes the bodies.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from chachaml.records.pipelines import (
    NewPipeline,
    NewPipelineStep,
    PipelineDetail,
    PipelineInfo,
    PipelineStep,
)
from chachaml.records.validation import MAX_SOURCE
from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import Api, Call
from chachaml.tools import pipelines as pipeline_ops

api = Api()
READ = "/api/store/v1/pipelines"
WRITE = "/api/w/pipelines/{pipeline_id}"
ERR = (401, 403, 404, 409, 422)
Name = Annotated[str, m.NoNul, Field(min_length=1, max_length=500)]
Id = Annotated[str, m.NoNul, Field(min_length=1, max_length=250)]
Seconds = Annotated[float, Field(ge=0, le=m.WEEK * 52, allow_inf_nan=False)]


class StepIn(m.Body):
    """A step of a new pipeline: its dependencies (step names) and options."""

    name: Name
    depends_on: list[Name] = Field(default_factory=list, max_length=1000)
    target: Annotated[str, m.NoNul, Field(max_length=MAX_SOURCE)] | None = None
    retries: int = Field(default=0, ge=0, le=1000)
    backoff: Seconds = 0.0
    timeout: Annotated[float, Field(gt=0, le=m.WEEK * 52, allow_inf_nan=False)] | None = None


class CreatePipeline(m.Body):
    """Record a pipeline starting on its run (which must exist), every step pending."""

    id: Id
    name: Name
    description: m.Text | None = None
    run_id: m.Short = Field(min_length=1)
    started_at: m.Time
    max_parallel: int = Field(default=1, ge=1, le=10_000)
    steps: list[StepIn] = Field(max_length=10_000)


class StartStep(m.Body):
    """Mark a step running in attempt ``attempt`` (1, 2, ...) on its own run."""

    step: Name
    run_id: m.Short = Field(min_length=1)
    attempt: int = Field(ge=1, le=1_000_000)
    started_at: m.Time


class EndStep(m.Body):
    """End a running step (``skipped``: a pending one), with its error or JSON result text."""

    step: Name
    status: Literal["completed", "failed", "skipped", "killed"]
    ended_at: m.Time
    error: m.Text | None = None
    result: Annotated[str, m.NoNul, Field(max_length=pipeline_ops.MAX_RESULT_BYTES)] | None = None


class EndPipeline(m.Body):
    """Mark a running pipeline ended."""

    status: Literal["completed", "failed", "killed", "stopped"]
    error: m.Text | None = None
    ended_at: m.Time


class ResumePipeline(m.Body):
    """Put a failed or killed pipeline back to running on ``run_id``, ``rerun`` steps pending."""

    run_id: m.Short = Field(min_length=1)
    rerun: list[Name] = Field(default_factory=list, max_length=10_000)
    at: m.Time


class PipelineQuery(m.Body):
    """Pipelines newest first, narrowed by name and (computed) status."""

    name: Name | None = None
    status: Literal["running", "completed", "failed", "killed", "stopped"] | None = None
    limit: int | None = Field(default=50, ge=1, le=10_000)


class StepQuery(m.Body):
    """One step of a pipeline, by name."""

    step: Name


class PipelineList(BaseModel):
    """Pipelines, newest first, with their step counts by status."""

    pipelines: list[PipelineInfo]


@api.route("POST", READ + "/query", scope="read", body=PipelineQuery, response=PipelineList,
           errors=(401, 403, 422))  # fmt: skip
async def list_pipelines(call: Call) -> PipelineList:
    """Pipelines newest first, narrowed by name and status."""
    q: PipelineQuery = call.body
    found = await pipeline_ops.list_pipelines(call.store, q.name, q.status, q.limit)
    return PipelineList(pipelines=found)


@api.route("GET", READ + "/{pipeline_id}", scope="read", response=PipelineDetail,
           errors=(401, 403, 404, 422))  # fmt: skip
async def get_pipeline(call: Call) -> PipelineDetail:
    """A pipeline with each step's dependencies, status, times, run and result."""
    return await pipeline_ops.get_pipeline(call.store, call.path("pipeline_id"))


@api.route("POST", READ + "/{pipeline_id}/step", scope="read", body=StepQuery,
           response=PipelineStep, errors=(401, 403, 404, 422))  # fmt: skip
async def get_step(call: Call) -> PipelineStep:
    """One step of a pipeline: its status, attempts, run and result."""
    b: StepQuery = call.body
    return await pipeline_ops.get_step(call.store, call.path("pipeline_id"), b.step)


@api.route("POST", "/api/w/pipelines", scope="write", body=CreatePipeline, response=m.Ok,
           status=201, errors=ERR)  # fmt: skip
async def create_pipeline(call: Call) -> m.Ok:
    """Record a pipeline starting on its run, attributed to the caller; every step pending."""
    b: CreatePipeline = call.body
    steps = [NewPipelineStep(**s.model_dump()) for s in b.steps]
    new = NewPipeline(id=b.id, name=b.name, description=b.description, run_id=b.run_id,
                      created_by=call.user, started_at=b.started_at,
                      max_parallel=b.max_parallel, steps=steps)  # fmt: skip
    await pipeline_ops.create_pipeline(call.store, new)
    return m.Ok()


@api.route("POST", WRITE + "/steps/start", scope="write", body=StartStep, response=m.Ok,
           errors=ERR)  # fmt: skip
async def start_step(call: Call) -> m.Ok:
    """Mark a pending (or retried) step running."""
    b: StartStep = call.body
    pipeline_id = call.path("pipeline_id")
    await pipeline_ops.start_step(call.store, pipeline_id, b.step, b.run_id, b.attempt,
                                  b.started_at)  # fmt: skip
    return m.Ok()


@api.route("POST", WRITE + "/steps/end", scope="write", body=EndStep, response=m.Ok, errors=ERR)
async def end_step(call: Call) -> m.Ok:
    """End a step with its outcome: its JSON result, or the error that stopped it."""
    b: EndStep = call.body
    await pipeline_ops.end_step(call.store, call.path("pipeline_id"), b.step, b.status,
                                b.ended_at, b.error, b.result)  # fmt: skip
    return m.Ok()


@api.route("POST", WRITE + "/end", scope="write", body=EndPipeline, response=m.Ok, errors=ERR)
async def end_pipeline(call: Call) -> m.Ok:
    """Mark a running pipeline ended."""
    b: EndPipeline = call.body
    await pipeline_ops.end_pipeline(call.store, call.path("pipeline_id"), b.status, b.error,
                                    b.ended_at)  # fmt: skip
    return m.Ok()


@api.route("POST", WRITE + "/resume", scope="write", body=ResumePipeline,
           response=PipelineDetail, errors=ERR)  # fmt: skip
async def resume_pipeline(call: Call) -> PipelineDetail:
    """Put a failed or killed pipeline back to running on a new run; returns it."""
    b: ResumePipeline = call.body
    return await pipeline_ops.resume_pipeline(call.store, call.path("pipeline_id"), b.run_id,
                                              b.rerun, b.at)  # fmt: skip

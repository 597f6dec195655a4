"""Pipeline operations: list and read pipelines, and the writes a pipeline runner makes.

Reads are what the ``pipelines`` MCP toolset and the UI call; writes record a pipeline's
progress (every step pending → running → completed/failed/killed, or skipped) as it runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chachaml.errors import InvalidInput, NotFound
from chachaml.records import validation as v
from chachaml.records.alerts import AlertEvent
from chachaml.records.pipelines import (
    PIPELINE_STATUSES,
    PIPELINE_TAG,
    NewPipeline,
    PipelineDetail,
    PipelineInfo,
    PipelineStep,
)
from chachaml.records.runs import NewRun
from chachaml.store.protocol import PipelineEnd, StepEnd, Store
from chachaml.tools import runs as run_ops
from chachaml.tools.webhooks import Delivery

MAX_RESULT_BYTES = 1_000_000


def check_pipeline_id(value: object) -> str:
    """A pipeline id: a non-empty string of printable characters (no NUL, at most 250)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"pipeline_id must be a non-empty string, got {value!r}")
    return v.key(value.strip(), "pipeline_id")


def encode_result(value: Any) -> str | None:
    """A step result as JSON when it reads back equal (and is at most 1 MB), else ``None``."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    if len(text) > MAX_RESULT_BYTES:
        return None
    try:
        same = bool(json.loads(text) == value)
    except Exception:  # a value whose __eq__ refuses to compare
        return None
    return text if same else None


# reads


async def list_pipelines(
    store: Store, name: str | None = None, status: str | None = None, limit: int | None = 50
) -> list[PipelineInfo]:
    """Pipelines newest first, with step counts by status; narrowed by name and status."""
    if status is not None and status not in PIPELINE_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(PIPELINE_STATUSES)}; got {status!r}")
    return await store.list_pipelines(
        None if name is None else v.name(name, "pipeline name"),
        status,
        None if limit is None else v.limit(limit, 50),
    )


async def get_pipeline(store: Store, pipeline_id: str) -> PipelineDetail:
    """A pipeline: status, run, and each step's dependencies, status, times, run and result.

    Given the id of a pipeline's run or of one of its steps' runs (an easy mix-up: both
    are listed beside each other), the error names the pipeline id to ask for instead.
    """
    checked = check_pipeline_id(pipeline_id)
    try:
        return await store.get_pipeline(checked)
    except NotFound:
        try:
            run = await store.get_run(checked)
        except (NotFound, InvalidInput):
            named = await store.list_pipelines(checked, None, 5)
            if named:  # a pipeline's name given where its id belongs
                ids = ", ".join(p.id for p in named)
                raise NotFound(
                    f"pipeline {checked!r} not found: that is a pipeline name; its runs' ids,"
                    f" newest first: {ids}"
                ) from None
            raise NotFound(f"pipeline {checked!r} not found") from None
        owner = run.tags.get(PIPELINE_TAG)
        if owner is None:
            raise NotFound(
                f"pipeline {checked!r} not found: that is the id of a run that belongs to no"
                " pipeline"
            ) from None
        raise NotFound(
            f"pipeline {checked!r} not found: that is the id of a run of pipeline {owner!r};"
            f" ask for {owner!r}"
        ) from None


async def get_step(store: Store, pipeline_id: str, step: str) -> PipelineStep:
    """One step of a pipeline, as :func:`get_pipeline` shows it, without reading the others.

    What an attempt reads to learn whether an earlier attempt of its step died with its worker.
    """
    return await store.get_pipeline_step(check_pipeline_id(pipeline_id), v.name(step, "step name"))


# writes, in the order a runner makes them


async def create_pipeline(store: Store, new: NewPipeline) -> None:
    """Record a pipeline starting on its run, every step pending.

    Its text is checked first (NUL is refused on every backend, as PostgreSQL must).
    """
    check_pipeline_id(new.id)
    v.name(new.name, "pipeline name")
    v.optional_text(new.description, "description")
    for step in new.steps:
        v.name(step.name, "step name")
        for dep in step.depends_on:
            v.name(dep, "step name")
        v.optional_text(step.target, "step target", v.MAX_SOURCE)
    await store.create_pipeline(new)


async def start_step(
    store: Store, pipeline_id: str, step: str, run_id: str, attempt: int, started_at: float
) -> None:
    """Mark a step running in attempt ``attempt`` (1, 2, ...) on its own run."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise InvalidInput(f"attempt must be a positive integer, got {attempt!r}")
    await store.start_pipeline_step(
        check_pipeline_id(pipeline_id), v.name(step, "step name"), run_id, attempt, started_at
    )


async def start_step_run(
    store: Store, run: NewRun, pipeline_id: str, step: str, attempt: int
) -> None:
    """Start an attempt's run (from ``runs.new_run``) and mark the step running on it, at once.

    One write instead of ``runs.start_run`` then :func:`start_step`: a step's overhead is
    mostly its store writes. Nothing is stored if the step cannot start.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise InvalidInput(f"attempt must be a positive integer, got {attempt!r}")
    await store.start_pipeline_step_run(
        run, check_pipeline_id(pipeline_id), v.name(step, "step name"), attempt
    )


async def complete_step_run(
    store: Store,
    pipeline_id: str,
    step: str,
    run_id: str,
    ended_at: float,
    result: str | None,
    delivery: Delivery | None = None,
) -> list[AlertEvent]:
    """End an attempt's run completed and its step completed with ``result``, at once.

    One write instead of ``runs.end_run`` then :func:`end_step`; then, as ``runs.end_run``
    does, the metric alert rules are evaluated on the run. Returns the alerts that fired.
    """
    await store.complete_pipeline_step_run(
        check_pipeline_id(pipeline_id), v.name(step, "step name"), v.run_id(run_id), ended_at,
        result,
    )  # fmt: skip
    return await run_ops.evaluate_alerts(store, run_id, delivery)


async def end_step(
    store: Store,
    pipeline_id: str,
    step: str,
    status: StepEnd,
    ended_at: float,
    error: str | None = None,
    result: str | None = None,
) -> None:
    """End a step with its outcome: its JSON result, or the error that stopped it."""
    await store.end_pipeline_step(
        check_pipeline_id(pipeline_id), v.name(step, "step name"), status, ended_at, error, result
    )


async def skip_steps(
    store: Store, pipeline_id: str, steps: Sequence[str], reason: str, at: float
) -> None:
    """Mark pending steps skipped, each with the reason (e.g. the dependency that failed)."""
    for step in steps:
        await store.end_pipeline_step(pipeline_id, step, "skipped", at, reason)


async def end_pipeline(
    store: Store, pipeline_id: str, status: PipelineEnd, error: str | None, ended_at: float
) -> None:
    """Mark a pipeline ended."""
    await store.end_pipeline(check_pipeline_id(pipeline_id), status, error, ended_at)


async def resume_pipeline(
    store: Store, pipeline_id: str, run_id: str, rerun: Sequence[str], at: float
) -> PipelineDetail:
    """Put a failed or killed pipeline back to running on a new run, ``rerun`` steps pending."""
    return await store.resume_pipeline(check_pipeline_id(pipeline_id), run_id, rerun, at)

"""Pipelines: steps with dependencies, every step a tracked run, status live in the store.

::

    import chachaml as ml

    def load(ctx):
        return [1, 2, 3]

    def train(ctx):
        ml.log_metric("loss", 0.1)          # lands on this step's own run
        return sum(ctx.prev_result)

    ml.run_pipeline("etl", [load, train])   # a plain list is a chain: train depends on load

The pipeline is a run (in the experiment named after the pipeline unless ``experiment=`` is
given); each attempt of each step is a child run of it. Steps whose dependencies have
completed run concurrently, up to ``max_parallel`` at once. When a step fails (after its
retries), the steps depending on it are skipped, independent branches finish, the pipeline
is marked failed and :class:`PipelineFailed` names the step and its run.
:func:`resume_pipeline` re-runs only what did not complete, reusing the stored results.

A step's result is stored when it reads back equal from JSON (at most 1 MB); other results
reach dependents in memory, and such a step is re-run on resume if a re-run step needs it.
Use these names as ``chachaml.*`` (``ml.Pipeline``, ``ml.run_pipeline``, ...).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio

from chachaml.client import bridge
from chachaml.client.default import ClientBound, resolve_client
from chachaml.client.pipelines.attempt import StepContext
from chachaml.client.pipelines.executor import Executor, resolve_executor
from chachaml.client.pipelines.plan import as_steps, import_target, plan, rerun_set, target_of
from chachaml.client.pipelines.runner import Execution, Progress, Step, Update
from chachaml.client.run import ActiveRun, error_text
from chachaml.errors import ChachamlError, Conflict, InvalidInput, NotFound
from chachaml.records import validation
from chachaml.records.pipelines import (
    PIPELINE_TAG,
    NewPipeline,
    NewPipelineStep,
    PipelineDetail,
    PipelineInfo,
)
from chachaml.records.runs import EndStatus
from chachaml.tools import pipelines as ops

if TYPE_CHECKING:
    from chachaml.client.client import Client

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
RESUME_TAG = "chachaml.resume"
DASHBOARD_TAG = "chachaml.dask_dashboard"  # on the pipeline's run: where to watch the workers
MAP_TAG = "chachaml.map_over."  # + step name, on the pipeline's run: the dependency it maps
DEFAULT_MAX_PARALLEL = 4


class PipelineFailed(ChachamlError):
    """A step failed: ``step`` and its ``run_id`` are the first failure, ``__cause__`` its error."""

    def __init__(
        self, pipeline_id: str, name: str, step: str, run_id: str, error: str, failed: list[str]
    ) -> None:
        others = [f for f in failed if f != step]
        also = f"; also failed: {', '.join(others)}" if others else ""
        super().__init__(
            f"pipeline {name!r} ({pipeline_id}) failed: step {step!r} (run {run_id})"
            f" raised {error}{also}"
        )
        self.pipeline_id = pipeline_id
        self.step = step
        self.run_id = run_id
        self.error = error
        self.failed_steps = failed


@dataclass(frozen=True)
class PipelineResult:
    """A completed pipeline: its id, its run, every step's result, and the stored record."""

    id: str
    run_id: str
    results: dict[str, Any]
    detail: PipelineDetail


async def _drive(client: Client, name: str, run: ActiveRun, execution: Execution) -> PipelineResult:
    """Run the execution, then end the pipeline and its run with the outcome.

    A pipeline asked to stop (its run was) ends ``stopped``, with the results it has.
    """
    try:
        return await _outcome(client, name, run, execution)
    finally:
        with anyio.CancelScope(shield=True):
            await execution.executor.close()


async def _outcome(
    client: Client, name: str, run: ActiveRun, execution: Execution
) -> PipelineResult:
    pid = execution.pipeline_id
    execution.pipeline_run = run
    try:
        await execution.run()
        values = await execution.values()
    except BaseException as exc:  # cancelled (Ctrl-C) or the store failed
        status: EndStatus = "failed" if isinstance(exc, Exception) else "killed"
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                await client.aop(ops.end_pipeline, pid, status, error_text(exc), time.time())
            await run.aend(status, error_text(exc))
        raise
    if execution.failures:
        step, (step_run, cause) = next(iter(execution.failures.items()))
        error = f"step {step!r} failed: {error_text(cause)}"
        await client.aop(ops.end_pipeline, pid, "failed", error, time.time())
        await run.aend("failed", error)
        raise PipelineFailed(
            pid, name, step, step_run, error_text(cause), list(execution.failures)
        ) from cause
    stop = run.stop_request
    if stop is not None:
        why = f"stopped by {stop.user or 'someone'}" + (f": {stop.reason}" if stop.reason else "")
        await client.aop(ops.end_pipeline, pid, "stopped", why, time.time())
        await run.aend("stopped", None)
    else:
        await client.aop(ops.end_pipeline, pid, "completed", None, time.time())
        await run.aend("completed", None)
    detail = await client.aop(ops.get_pipeline, pid)
    return PipelineResult(pid, run.id, values, detail)


async def _resume(
    client: Client,
    pipeline_id: str,
    definitions: Callable[[PipelineDetail, set[str], Mapping[str, str]], dict[str, Step]],
    on_update: Update | None,
    executor: Executor | str | None = None,
    on_progress: Progress | None = None,
) -> PipelineResult:
    detail = await client.aop(ops.get_pipeline, pipeline_id)
    if detail.status in ("running", "completed"):
        raise Conflict(
            f"pipeline {detail.name!r} ({pipeline_id}) is {detail.status}; only a failed or"
            " killed pipeline can be resumed"
        )
    rerun = rerun_set(detail)
    experiment, maps = detail.name, {}
    if detail.run_id is not None:
        with contextlib.suppress(NotFound):
            before = await client.aget_run(detail.run_id)
            experiment = before.experiment
            maps = {k: str(v) for k, v in before.tags.items() if k.startswith(MAP_TAG)}
    steps = definitions(detail, rerun, {k.removeprefix(MAP_TAG): v for k, v in maps.items()})
    chosen = resolve_executor(executor)
    await chosen.open(client, detail.max_parallel)
    tags = {PIPELINE_TAG: pipeline_id, RESUME_TAG: detail.resumes + 1, **maps}
    if chosen.dashboard:
        tags[DASHBOARD_TAG] = chosen.dashboard
    try:
        run = await client.astart_run(experiment, detail.name, tags=tags)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await chosen.close()
        raise
    try:
        detail = await client.aop(
            ops.resume_pipeline, pipeline_id, run.id, sorted(rerun), time.time()
        )
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await run.aend("failed", error_text(exc))
            await chosen.close()
        raise
    execution = Execution(
        client,
        pipeline_id,
        steps,
        {s.name: tuple(s.depends_on) for s in detail.steps},
        rerun,
        {s.name: s.result for s in detail.steps if s.status == "completed"},
        detail.max_parallel,
        on_update,
        chosen,
        on_progress,
    )
    return await _drive(client, detail.name, run, execution)


class Pipeline:
    """A reusable pipeline definition: declare it once, run (and resume) it many times.

    Give the steps as a list, or add them with the ``@etl.step`` decorator. ``client``
    defaults to chachaml's default client.
    """

    def __init__(
        self,
        name: str,
        steps: Sequence[Step | Callable[..., Any]] = (),
        *,
        description: str | None = None,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        experiment: str | None = None,
        client: Client | None = None,
    ) -> None:
        self.name = validation.name(name, "pipeline name")
        if description is not None and not isinstance(description, str):
            raise InvalidInput(f"description must be a string, got {description!r}")
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise InvalidInput(f"max_parallel must be a positive integer, got {max_parallel!r}")
        self.description = description
        self.max_parallel = max_parallel
        self.experiment = None if experiment is None else validation.name(experiment, "experiment")
        self._steps = as_steps(steps)
        self._client = client

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {', '.join(s.name for s in self._steps)}>"

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps, in definition order."""
        return tuple(self._steps)

    @overload
    def step(self, fn: F, /) -> F: ...

    @overload
    def step(
        self,
        *,
        name: str | None = None,
        depends_on: Sequence[str] | None = None,
        retries: int = 0,
        backoff: float = 1.0,
        timeout: float | None = None,
        map_over: str | None = None,
    ) -> Callable[[F], F]: ...

    def step(  # type: ignore[misc]  # mypy cannot match the decorator overloads here
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        depends_on: Sequence[str] | None = None,
        retries: int = 0,
        backoff: float = 1.0,
        timeout: float | None = None,
        map_over: str | None = None,
    ) -> F | Callable[[F], F]:
        """Decorator adding the function as the next step (named after it unless ``name``)."""

        def add(func: F) -> F:
            step_name = name if name is not None else getattr(func, "__name__", repr(func))
            self._steps.append(
                Step(step_name, func, depends_on, retries, backoff, timeout, map_over)
            )
            return func

        return add(fn) if fn is not None else add

    def validate(self) -> dict[str, tuple[str, ...]]:
        """Each step's dependencies; ``InvalidInput`` for duplicates, unknown steps, cycles."""
        return plan(self._steps)

    def run(
        self,
        *,
        on_update: Update | None = None,
        client: Client | None = None,
        executor: Executor | str | None = None,
        on_progress: Progress | None = None,
    ) -> PipelineResult:
        """Run every step; ``on_update(step, status)`` hears each status change.

        ``client`` overrides the definition's. ``executor`` is where the steps run: here
        (the default), ``"dask://host:8786"`` or a ``DaskExecutor``. ``on_progress(step,
        done, failed, total)`` hears a fan-out step's elements end. Raises
        :class:`PipelineFailed` when a step failed, after recording everything.
        """
        return bridge.run(
            partial(
                self.arun,
                on_update=on_update,
                client=client,
                executor=executor,
                on_progress=on_progress,
            )
        )

    async def arun(
        self,
        *,
        on_update: Update | None = None,
        client: Client | None = None,
        executor: Executor | str | None = None,
        on_progress: Progress | None = None,
    ) -> PipelineResult:
        """Async twin of :meth:`run` (async steps run on the caller's event loop)."""
        deps = self.validate()
        client = resolve_client(client or self._client)
        chosen = resolve_executor(executor)
        await chosen.open(client, self.max_parallel)  # refuses a store workers cannot share
        try:
            run, pid = await self._record(client, deps, chosen.dashboard)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await chosen.close()
            raise
        steps = {s.name: s for s in self._steps}
        execution = Execution(
            client, pid, steps, deps, set(deps), {}, self.max_parallel, on_update, chosen,
            on_progress,
        )  # fmt: skip
        return await _drive(client, self.name, run, execution)

    def _map_tags(self) -> dict[str, str]:
        return {MAP_TAG + s.name: s.map_over for s in self._steps if s.map_over is not None}

    async def _record(
        self, client: Client, deps: Mapping[str, tuple[str, ...]], dashboard: str | None
    ) -> tuple[ActiveRun, str]:
        """Start the pipeline's run and record the pipeline, every step pending."""
        pid = uuid.uuid4().hex
        tags: dict[str, Any] = {PIPELINE_TAG: pid, **self._map_tags()}
        if dashboard:
            tags[DASHBOARD_TAG] = dashboard
        run = await client.astart_run(self.experiment or self.name, self.name, tags=tags)
        new = NewPipeline(
            id=pid,
            name=self.name,
            description=self.description,
            run_id=run.id,
            created_by=client.current_user(),
            started_at=run.started_at,
            max_parallel=self.max_parallel,
            steps=[
                NewPipelineStep(
                    name=s.name,
                    depends_on=list(deps[s.name]),
                    target=target_of(s.fn),
                    retries=s.retries,
                    backoff=s.backoff,
                    timeout=s.timeout,
                )
                for s in self._steps
            ],
        )
        try:
            await client.aop(ops.create_pipeline, new)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await run.aend("failed", error_text(exc))
            raise
        return run, pid

    def resume(
        self,
        pipeline_id: str,
        *,
        on_update: Update | None = None,
        client: Client | None = None,
        executor: Executor | str | None = None,
        on_progress: Progress | None = None,
    ) -> PipelineResult:
        """Re-run the failed, skipped or killed steps of an earlier run of this pipeline."""
        return bridge.run(
            partial(
                self.aresume,
                pipeline_id,
                on_update=on_update,
                client=client,
                executor=executor,
                on_progress=on_progress,
            )
        )

    async def aresume(
        self,
        pipeline_id: str,
        *,
        on_update: Update | None = None,
        client: Client | None = None,
        executor: Executor | str | None = None,
        on_progress: Progress | None = None,
    ) -> PipelineResult:
        """Async twin of :meth:`resume`."""
        self.validate()
        mine = {s.name: s for s in self._steps}

        def definitions(
            detail: PipelineDetail, rerun: set[str], maps: Mapping[str, str]
        ) -> dict[str, Step]:
            stored = [s.name for s in detail.steps]
            if set(stored) != set(mine):
                raise InvalidInput(
                    f"pipeline {pipeline_id} has steps {', '.join(stored)}; this definition"
                    f" has {', '.join(mine)}"
                )
            return mine

        return await _resume(
            resolve_client(client or self._client),
            pipeline_id,
            definitions,
            on_update,
            executor,
            on_progress,
        )


def _stored_definitions(
    detail: PipelineDetail, rerun: set[str], maps: Mapping[str, str]
) -> dict[str, Step]:
    """Steps rebuilt from the store: each re-run step's callable imported from its target."""
    steps = {}
    for s in detail.steps:
        if s.name not in rerun:
            continue
        if s.target is None:
            raise InvalidInput(
                f"step {s.name!r} of pipeline {detail.id} is not importable (a lambda or a"
                " nested function); resume it with resume_pipeline(id, steps=[...]) or"
                " Pipeline.resume(id)"
            )
        fn = import_target(s.target)
        steps[s.name] = Step(
            s.name, fn, s.depends_on, s.retries, s.backoff, s.timeout, maps.get(s.name)
        )
    return steps


def run_pipeline(
    name: str,
    steps: Sequence[Step | Callable[..., Any]],
    description: str | None = None,
    max_parallel: int = DEFAULT_MAX_PARALLEL,
    *,
    experiment: str | None = None,
    client: Client | None = None,
    on_update: Update | None = None,
    executor: Executor | str | None = None,
    on_progress: Progress | None = None,
) -> PipelineResult:
    """Run steps as a pipeline once; see :class:`Pipeline` and the module docs.

    ``executor``: where the steps run (here by default; ``"dask://host:8786"`` or a
    ``DaskExecutor`` for a Dask cluster).
    """
    definition = Pipeline(
        name,
        steps,
        description=description,
        max_parallel=max_parallel,
        experiment=experiment,
        client=client,
    )
    return definition.run(on_update=on_update, executor=executor, on_progress=on_progress)


def resume_pipeline(
    pipeline_id: str,
    steps: Sequence[Step | Callable[..., Any]] | None = None,
    *,
    client: Client | None = None,
    on_update: Update | None = None,
    executor: Executor | str | None = None,
    on_progress: Progress | None = None,
) -> PipelineResult:
    """Re-run the failed, skipped or killed steps of a pipeline, reusing stored results.

    Without ``steps``, each step's callable is imported from where it was defined.
    """
    if steps is not None:
        definition = Pipeline("resume", steps, client=client)
        return definition.resume(
            pipeline_id, on_update=on_update, executor=executor, on_progress=on_progress
        )
    chosen = resolve_client(client)
    return bridge.run(
        partial(_resume, chosen, pipeline_id, _stored_definitions, on_update, executor, on_progress)
    )


def pipelines(
    name: str | None = None,
    status: str | None = None,
    limit: int | None = 50,
    *,
    client: Client | None = None,
) -> list[PipelineInfo]:
    """Pipelines, newest first, with step counts by status; narrowed by name and status."""
    return resolve_client(client).op(ops.list_pipelines, name, status, limit)


def pipeline(pipeline_id: str, *, client: Client | None = None) -> PipelineDetail:
    """A pipeline with its steps: dependencies, status, times, attempts, runs and results."""
    return resolve_client(client).op(ops.get_pipeline, pipeline_id)


class Pipelines(ClientBound):
    """The pipelines API bound to a client (the default client when none is given)."""

    def run_pipeline(
        self,
        name: str,
        steps: Sequence[Step | Callable[..., Any]],
        description: str | None = None,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        *,
        experiment: str | None = None,
        on_update: Update | None = None,
        executor: Executor | str | None = None,
        on_progress: Progress | None = None,
    ) -> PipelineResult:
        """Run steps as a pipeline once (see :func:`run_pipeline`)."""
        return run_pipeline(name, steps, description, max_parallel, experiment=experiment,
                            client=self.client, on_update=on_update, executor=executor,
                            on_progress=on_progress)  # fmt: skip

    def resume_pipeline(
        self,
        pipeline_id: str,
        steps: Sequence[Step | Callable[..., Any]] | None = None,
        *,
        on_update: Update | None = None,
        executor: Executor | str | None = None,
        on_progress: Progress | None = None,
    ) -> PipelineResult:
        """Re-run what did not complete (see :func:`resume_pipeline`)."""
        return resume_pipeline(pipeline_id, steps, client=self.client, on_update=on_update,
                               executor=executor, on_progress=on_progress)  # fmt: skip

    def pipelines(
        self, name: str | None = None, status: str | None = None, limit: int | None = 50
    ) -> list[PipelineInfo]:
        """Pipelines, newest first (see :func:`pipelines`)."""
        return pipelines(name, status, limit, client=self.client)

    def pipeline(self, pipeline_id: str) -> PipelineDetail:
        """A pipeline with its steps (see :func:`pipeline`)."""
        return pipeline(pipeline_id, client=self.client)


__all__ = [
    "Pipeline",
    "PipelineFailed",
    "PipelineResult",
    "Pipelines",
    "Step",
    "StepContext",
    "pipeline",
    "pipelines",
    "resume_pipeline",
    "run_pipeline",
]

"""One attempt of a step, recorded wherever it runs: the driver's loop or a cluster worker.

An executor hands :func:`perform` (a whole step's attempt) or :func:`perform_element` (one
element of a fan-out step) a :class:`Job`: everything the attempt needs, picklable, so a
Dask worker can run it against the same store. The attempt starts its own run (a child of
the pipeline's run, or of the fan-out step's run), marks the step running, calls the step,
ends its run and, for a whole step, records the step completed with its JSON result. A
failed attempt ends its run ``failed`` and raises; the driver decides whether to retry.

A worker killed mid-attempt leaves its run ``running`` (it reads ``killed`` once its
heartbeat stops); when Dask runs the same job again on another worker, :func:`perform`
sees the stored attempt still open, ends that run ``killed`` and counts a new attempt.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from chachaml.client import bridge
from chachaml.client.run import ActiveRun, error_text
from chachaml.errors import Conflict, InvalidInput, NotFound
from chachaml.records.pipelines import PIPELINE_TAG
from chachaml.settings import Settings
from chachaml.tools import pipelines as ops
from chachaml.tools import runs as run_ops

if TYPE_CHECKING:
    from chachaml.client.client import Client
    from chachaml.records.alerts import AlertEvent
    from chachaml.records.runs import NewRun
    from chachaml.store import Store
    from chachaml.tools.webhooks import Delivery

STEP_TAG = "chachaml.step"
ATTEMPT_TAG = "chachaml.attempt"
ELEMENT_TAG = "chachaml.element"
ELEMENTS_TAG = "chachaml.elements"  # on a fan-out step's run: how many elements it has
WORKER_TAG = "chachaml.worker"


class AttemptKilled(RuntimeError):
    """The step's previous attempt died with its worker and no retries are left."""


@dataclass(frozen=True)
class StepContext:
    """What a step receives: its pipeline, name, run, attempt and its dependencies' results.

    A fan-out step's call gets one element: ``item`` (the element of the list it maps
    over) and ``index`` (its position); otherwise both are ``None``.
    """

    pipeline_id: str
    name: str
    run: ActiveRun
    attempt: int
    depends_on: tuple[str, ...]
    results: Mapping[str, Any]
    item: Any = None
    index: int | None = None

    @property
    def run_id(self) -> str:
        """The id of the run this attempt of the step logs to."""
        return self.run.id

    @property
    def prev_result(self) -> Any:
        """The result of the step's single dependency (``None`` for a step without one)."""
        if not self.depends_on:
            return None
        if len(self.depends_on) > 1:
            raise InvalidInput(
                f"step {self.name!r} depends on {', '.join(self.depends_on)}: prev_result is"
                " ambiguous; use ctx.results[name]"
            )
        return self.results[self.depends_on[0]]


@dataclass(frozen=True)
class Job:
    """One attempt to make: the step, where its run goes, and how a worker reaches the store.

    ``recover`` (set by executors whose workers can die mid-attempt) makes the attempt read
    the step's stored state first, to end a dead earlier attempt and number itself after it.
    """

    pipeline_id: str
    step: str
    fn: Callable[[StepContext], Any]
    depends_on: tuple[str, ...]
    experiment: str
    parent_run_id: str
    attempt: int
    retries: int
    timeout: float | None
    settings: Settings | None = None
    recover: bool = False
    map_over: str | None = None


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine (async functions and async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


async def end_dead_run(client: Client, run_id: str, why: str) -> None:
    """End ``run_id`` ``killed`` if it is still stored running (its process died)."""
    with contextlib.suppress(Conflict, NotFound):
        await client.aop(run_ops.end_run, run_id, "killed", why, time.time())


async def _attempt_number(client: Client, job: Job) -> int:
    """``job.attempt``, or the next one after an earlier run of this job that died."""
    if not job.recover:
        return job.attempt
    stored = await client.aop(ops.get_step, job.pipeline_id, job.step)
    if stored.attempts < job.attempt:
        return job.attempt
    if stored.run_id is not None:
        await end_dead_run(client, stored.run_id, "killed: its worker process died")
    attempt = stored.attempts + 1
    if attempt > job.retries + 1:
        raise AttemptKilled(
            f"attempt {stored.attempts} of step {job.step!r} was killed with its worker"
            f" (run {stored.run_id}) and no retries are left"
        )
    return attempt


async def start_run(
    client: Client,
    job: Job,
    name: str,
    tags: Mapping[str, Any],
    parent: str,
    attempt: int | None = None,
) -> ActiveRun:
    """``client.astart_run`` with an explicit parent (a run of another process, perhaps).

    Given ``attempt``, the run is the step's attempt: the step is marked running on it in
    the same write (``Conflict`` or ``NotFound`` from the step store nothing).
    """
    store_run = None
    if attempt is not None:
        store_run = partial(
            _store_step_run, pipeline_id=job.pipeline_id, step=job.step, attempt=attempt
        )
    return await client.astart_run(
        job.experiment, name, tags=tags, parent=parent, store_run=store_run
    )


async def _store_step_run(
    store: Store,
    new: NewRun,
    params: Mapping[str, Any],
    delivery: object,
    *,
    pipeline_id: str,
    step: str,
    attempt: int,
) -> dict[str, Any]:
    """``runs.start_run`` for an attempt's run (it has no params): the step starts with it."""
    await ops.start_step_run(store, new, pipeline_id, step, attempt)
    return {}


async def call(
    job: Job,
    ctx: StepContext,
    limiter: anyio.CapacityLimiter | None,
) -> Any:
    """The step's value: async steps on this loop, sync ones in a thread, within the timeout.

    A step that outlives its timeout is abandoned (a sync step's thread runs on).
    """
    with anyio.move_on_after(job.timeout):
        if is_async(job.fn):
            value = await job.fn(ctx)
        else:
            value = await anyio.to_thread.run_sync(
                job.fn, ctx, abandon_on_cancel=True, limiter=limiter
            )
        if inspect.isawaitable(value):
            value = await value
        return value
    raise TimeoutError(f"step {job.step!r} timed out after {job.timeout:g} s")


async def _run_and_end(
    client: Client,
    job: Job,
    run: ActiveRun,
    ctx: StepContext,
    limiter: anyio.CapacityLimiter | None,
    step_done: bool = False,
) -> Any:
    """The step's value, its run ended; with ``step_done``, the step completed with it."""
    try:
        value = await call(job, ctx, limiter)
    except Exception as exc:
        await run.aend("failed", error_text(exc))
        raise
    except BaseException as exc:  # cancelled: the driver stopped, or the worker shuts down
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await run.aend("killed", error_text(exc))
        raise
    if not step_done:
        await run.aend("completed", None)
        return value
    result = ops.encode_result(value)
    stored: list[bool] = []  # whether the run's end stored the step's too
    complete = partial(_complete_step_run, pipeline_id=job.pipeline_id, step=job.step,
                       result=result, stored=stored)  # fmt: skip
    await bridge.to_thread(partial(run.end, "completed", None, store_end=complete))
    run.restore_current()
    if not stored:  # the step's code had ended its run itself
        await client.aop(ops.end_step, job.pipeline_id, job.step, "completed",
                         time.time(), None, result)  # fmt: skip
    return value


async def _complete_step_run(
    store: Store,
    run_id: str,
    status: str,
    error: str | None,
    *,
    delivery: Delivery | None,
    pipeline_id: str,
    step: str,
    result: str | None,
    stored: list[bool],
) -> list[AlertEvent]:
    """``runs.end_run`` for a completed attempt: the step completes in the same write.

    ``status`` is ``stopped`` when the run was asked to stop: the store says so itself.
    """
    fired = await ops.complete_step_run(store, pipeline_id, step, run_id, time.time(), result,
                                        delivery)  # fmt: skip
    stored.append(True)
    return fired


async def perform(
    client: Client,
    job: Job,
    inputs: Mapping[str, Any],
    *,
    where: Mapping[str, str] | None = None,
    limiter: anyio.CapacityLimiter | None = None,
    started: Callable[[], None] | None = None,
) -> Any:
    """Run one attempt of a whole step and record it; its value, or the step's error."""
    attempt = await _attempt_number(client, job)
    tags = {
        PIPELINE_TAG: job.pipeline_id,
        STEP_TAG: job.step,
        ATTEMPT_TAG: attempt,
        **(where or {}),
    }
    run = await start_run(client, job, job.step, tags, job.parent_run_id, attempt)
    if started is not None:
        started()
    ctx = StepContext(job.pipeline_id, job.step, run, attempt, job.depends_on, inputs)
    return await _run_and_end(client, job, run, ctx, limiter, step_done=True)


async def perform_element(
    client: Client,
    job: Job,
    inputs: Mapping[str, Any],
    index: int,
    *,
    where: Mapping[str, str] | None = None,
    limiter: anyio.CapacityLimiter | None = None,
) -> Any:
    """Run one element of a fan-out step in a run of its own (a child of the step's run)."""
    assert job.map_over is not None
    items = inputs[job.map_over]
    tags = {
        PIPELINE_TAG: job.pipeline_id,
        STEP_TAG: job.step,
        ELEMENT_TAG: index,
        ATTEMPT_TAG: job.attempt,
        **(where or {}),
    }
    run = await start_run(client, job, f"{job.step}[{index}]", tags, job.parent_run_id)
    ctx = StepContext(
        job.pipeline_id, job.step, run, job.attempt, job.depends_on, inputs, items[index], index
    )
    return await _run_and_end(client, job, run, ctx, limiter)


def fan_out_items(value: Any, step: str, over: str) -> int:
    """How many elements a fan-out step has: ``value`` must be a list or tuple."""
    if not isinstance(value, list | tuple):
        raise InvalidInput(
            f"step {step!r} maps over {over!r}, whose result must be a list or tuple;"
            f" got {type(value).__name__}"
        )
    return len(value)

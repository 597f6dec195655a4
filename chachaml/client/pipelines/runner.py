"""Running a pipeline's steps: the scheduler, each step's attempts, and their bookkeeping.

One :class:`Execution` runs on an event loop in the caller's thread. Its main task starts
every step whose dependencies have completed, up to ``max_parallel`` at once; each step task
hands its attempts to the executor (:mod:`~chachaml.client.pipelines.executor`: here, or a
Dask cluster), each attempt inside a run of its own (a child of the pipeline's run) recorded
where it runs, retries with backoff, and reports back to the main task, which marks the
dependents of a failed step skipped. A fan-out step's run is recorded here, its elements'
runs where they run. A step that outlives its timeout is abandoned (a sync step's thread
runs on, but its run is ended and its result ignored).

A pipeline whose run is asked to stop (``stop_run``) starts no further step: the steps not
started yet are skipped, naming who asked; running steps were asked too (their runs are the
pipeline run's children) and end when their code checks ``should_stop()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from chachaml.client import bridge
from chachaml.client.pipelines.attempt import (
    ATTEMPT_TAG,
    ELEMENTS_TAG,
    STEP_TAG,
    Job,
    end_dead_run,
    start_run,
)
from chachaml.client.pipelines.attempt import (
    StepContext as StepContext,  # re-exported: its home before executors
)
from chachaml.client.pipelines.executor import Executor, LocalExecutor
from chachaml.client.run import ActiveRun, error_text
from chachaml.errors import InvalidInput
from chachaml.records import validation
from chachaml.records.pipelines import PIPELINE_TAG
from chachaml.tools import pipelines as ops

if TYPE_CHECKING:
    from chachaml.client.client import Client

log = logging.getLogger("chachaml")
Update = Callable[[str, str], None]
Progress = Callable[[str, int, int, int], None]  # step, elements done, failed, total


@dataclass(frozen=True)
class Step:
    """A step: a name, a callable taking a :class:`StepContext` (sync or async) and options.

    ``depends_on`` names the steps whose results it needs: ``None`` (the default) means the
    step before it in the list, ``[]`` none. A failed attempt is retried ``retries`` times,
    waiting ``backoff`` seconds before the first retry and twice as long before each next
    one; an attempt running longer than ``timeout`` seconds fails with ``TimeoutError``.

    ``map_over`` names a dependency whose result is a list: the step then runs once per
    element (``ctx.item``, ``ctx.index``), each in a child run of its own, in parallel, each
    element retried on its own; its result is the list of their results, in order.
    """

    name: str
    fn: Callable[[StepContext], Any]
    depends_on: Sequence[str] | None = None
    retries: int = 0
    backoff: float = 1.0
    timeout: float | None = None
    map_over: str | None = None

    def __post_init__(self) -> None:
        name = validation.name(self.name, "step name")
        object.__setattr__(self, "name", name)
        if not callable(self.fn):
            raise InvalidInput(f"step {name!r} needs a callable, got {self.fn!r}")
        deps = self.depends_on
        if isinstance(deps, str):
            deps = (deps,)
        if deps is not None:
            if not isinstance(deps, Sequence) or not all(isinstance(d, str) for d in deps):
                raise InvalidInput(
                    f"depends_on of step {name!r} must be a list of step names, got {deps!r}"
                )
            deps = tuple(deps)
        object.__setattr__(self, "depends_on", deps)
        retries = self.retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"retries of step {name!r} must be an integer >= 0, got {retries!r}")
        backoff = validation.finite(self.backoff, f"backoff of step {name!r}")
        if backoff < 0:
            raise InvalidInput(f"backoff of step {name!r} must be >= 0 seconds, got {backoff!r}")
        object.__setattr__(self, "backoff", backoff)
        if self.timeout is not None:
            timeout = validation.finite(self.timeout, f"timeout of step {name!r}")
            if timeout <= 0:
                raise InvalidInput(f"timeout of step {name!r} must be > 0 seconds, got {timeout!r}")
            object.__setattr__(self, "timeout", timeout)
        if self.map_over is not None:
            if not isinstance(self.map_over, str) or not self.map_over:
                raise InvalidInput(
                    f"map_over of step {name!r} must name a dependency, got {self.map_over!r}"
                )
            if deps is not None and self.map_over not in deps:
                raise InvalidInput(
                    f"step {name!r} maps over {self.map_over!r}, which is not among its"
                    f" dependencies ({', '.join(deps) or 'none'})"
                )


@dataclass
class Execution:
    """One pass over the steps in ``todo``; steps outside it completed with ``results``.

    ``results`` holds handles (values locally, futures on a cluster; plain values read back
    from the store on resume); :meth:`values` turns them into values at the end.
    """

    client: Client
    pipeline_id: str
    steps: Mapping[str, Step]
    deps: Mapping[str, tuple[str, ...]]
    todo: set[str]
    results: dict[str, Any]
    max_parallel: int
    on_update: Update | None = None
    executor: Executor = field(default_factory=LocalExecutor)
    on_progress: Progress | None = None
    failures: dict[str, tuple[str, BaseException]] = field(default_factory=dict)
    pipeline_run: ActiveRun | None = None  # asked to stop, it starts no further step

    def __post_init__(self) -> None:
        self._slots = anyio.Semaphore(self.max_parallel)
        self._state = {n: "pending" if n in self.todo else "completed" for n in self.deps}

    def _notify(self, step: str, status: str) -> None:
        if self.on_update is None:
            return
        try:
            self.on_update(step, status)
        except Exception as exc:  # a display must not break the pipeline
            log.warning("chachaml: pipeline progress callback failed: %s", exc)

    def _progress(self, step: str, done: int, failed: int, total: int) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(step, done, failed, total)
        except Exception as exc:  # a display must not break the pipeline
            log.warning("chachaml: pipeline progress callback failed: %s", exc)

    async def run(self) -> None:
        """Run every step of ``todo`` that can run; failures end up in :attr:`failures`."""
        send, receive = anyio.create_memory_object_stream[str](max_buffer_size=len(self.deps))
        try:
            with send, receive:
                async with anyio.create_task_group() as tg:
                    active = self._launch(tg, send)
                    while active:
                        name = await receive.receive()
                        active -= 1
                        if name in self.failures:
                            self._state[name] = "failed"
                            await self._skip_dependents(name)
                        elif self._state[name] != "skipped":
                            self._state[name] = "completed"
                        active += self._launch(tg, send)
        except BaseExceptionGroup as group:  # the store failed under a step: raise that error
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        if self.stopping:
            await self._skip(
                [n for n, state in self._state.items() if state == "pending"], self._stop_reason()
            )

    async def values(self) -> dict[str, Any]:
        """Every step's result as a value (fetched from the workers on a cluster)."""
        return await self.executor.values(self.results)

    @property
    def stopping(self) -> bool:
        """Whether the pipeline's run was asked to stop."""
        return self.pipeline_run is not None and self.pipeline_run.should_stop()

    def _stop_reason(self) -> str:
        stop = self.pipeline_run.stop_request if self.pipeline_run is not None else None
        who = stop.user if stop is not None and stop.user else "someone"
        why = f": {stop.reason}" if stop is not None and stop.reason else ""
        return f"skipped: the pipeline was asked to stop by {who}{why}"

    async def _skip(self, names: list[str], reason: str) -> None:
        if not names:
            return
        for name in names:
            self._state[name] = "skipped"
        await self.client.aop(ops.skip_steps, self.pipeline_id, names, reason, time.time())
        for name in names:
            self._notify(name, "skipped")

    def _launch(self, tg: TaskGroup, done: MemoryObjectSendStream[str]) -> int:
        started = 0
        if self.stopping:
            return 0
        for name, deps in self.deps.items():
            if self._state[name] == "pending" and all(self._state[d] == "completed" for d in deps):
                self._state[name] = "started"
                tg.start_soon(self._run_step, name, done, name=f"pipeline step {name}")
                started += 1
        return started

    async def _skip_dependents(self, failed: str) -> None:
        dependents = {n: [d for d, ds in self.deps.items() if n in ds] for n in self.deps}
        queue, skipped = list(dependents[failed]), []
        while queue:
            name = queue.pop(0)
            if self._state[name] == "pending":
                self._state[name] = "skipped"
                skipped.append(name)
                queue += dependents[name]
        await self._skip(skipped, f"skipped: step {failed!r} failed")

    def _job(self, step: Step, attempt: int, parent: str) -> Job:
        experiment = self.pipeline_run.experiment if self.pipeline_run is not None else "default"
        return Job(
            self.pipeline_id, step.name, step.fn, self.deps[step.name], experiment, parent,
            attempt, step.retries, step.timeout, map_over=step.map_over,
        )  # fmt: skip

    async def _reap(self, name: str) -> tuple[int, str]:
        """After a failed attempt: the attempts used and the last attempt's run.

        An attempt whose worker died left its run open; it is ended ``killed`` here.
        """
        stored = await self.client.aop(ops.get_step, self.pipeline_id, name)
        run_id = stored.run_id or ""
        if run_id:
            await end_dead_run(self.client, run_id, "killed: the process running it died")
        return stored.attempts, run_id

    async def _run_step(self, name: str, done: MemoryObjectSendStream[str]) -> None:
        step = self.steps[name]
        async with self._slots:
            if self.stopping:  # asked to stop while this step waited for a slot
                await self._skip([name], self._stop_reason())
                await done.send(name)
                return
            try:
                await self._attempts(step)
            except BaseException as exc:  # cancelled (Ctrl-C), or the store failed
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.client.aop(
                        ops.end_step, self.pipeline_id, name, "killed", time.time(), error_text(exc)
                    )
                    self._notify(name, "killed")
                raise
        await done.send(name)

    async def _attempts(self, step: Step) -> None:
        """Run the step's attempts until one completes or its retries are used up."""
        name, attempt = step.name, 1
        inputs = {d: self.results[d] for d in self.deps[name]}
        parent = self.pipeline_run.id if self.pipeline_run is not None else ""
        while True:
            try:
                if step.map_over is not None:
                    handle = await self._fan_out(step, inputs, parent)
                else:
                    job = self._job(step, attempt, parent)
                    handle = await self.executor.attempt(
                        job, inputs, lambda: self._notify(name, "running")
                    )
            except Exception as exc:
                stored, run_id = await self._reap(name)
                if stored < attempt:  # failed before a worker recorded it (say, refused)
                    run_id = await self._record_unstarted(step, attempt, parent, exc)
                used = max(stored, attempt)  # a worker's death adds attempts
                if step.map_over is None and used <= step.retries:
                    attempt = used + 1
                    await anyio.sleep(step.backoff * 2 ** (used - 1))
                    continue
                self.failures[name] = (run_id, exc)
                await self.client.aop(
                    ops.end_step, self.pipeline_id, name, "failed", time.time(), error_text(exc)
                )
                self._notify(name, "failed")
                return
            self.results[name] = handle
            self._notify(name, "completed")
            return

    async def _record_unstarted(self, step: Step, attempt: int, parent: str, exc: Exception) -> str:
        """Record an attempt that failed before it started where it was sent: its run."""
        tags = {PIPELINE_TAG: self.pipeline_id, STEP_TAG: step.name, ATTEMPT_TAG: attempt}
        job = self._job(step, attempt, parent)
        run = await start_run(self.client, job, step.name, tags, parent)
        try:
            await self.client.aop(
                ops.start_step, self.pipeline_id, step.name, run.id, attempt, time.time()
            )
        finally:
            await run.aend("failed", f"never started: {error_text(exc)}")
        return run.id

    async def _fan_out(self, step: Step, inputs: Mapping[str, Any], parent: str) -> Any:
        """The fan-out step's run (here), one child run per element (on the executor)."""
        tags = {PIPELINE_TAG: self.pipeline_id, STEP_TAG: step.name, ATTEMPT_TAG: 1}
        job = self._job(step, 1, "")
        run = await start_run(self.client, job, step.name, tags, parent)
        try:
            await self.client.aop(
                ops.start_step, self.pipeline_id, step.name, run.id, 1, time.time()
            )
            self._notify(step.name, "running")
            total = await self.executor.length(inputs[step.map_over or ""], job)
            await bridge.to_thread(run.set_tag, ELEMENTS_TAG, str(total))
            handles = await self._elements(step, dataclasses.replace(job, parent_run_id=run.id),
                                           inputs, total)  # fmt: skip
            collected = await self.executor.collect(handles)
            result = await self.executor.encoded(collected)
        except Exception as exc:
            await run.aend("failed", error_text(exc))
            raise
        except BaseException as exc:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await run.aend("killed", error_text(exc))
            raise
        await run.aend("completed", None)
        await self.client.aop(
            ops.end_step, self.pipeline_id, step.name, "completed", time.time(), None, result
        )
        return collected

    async def _elements(
        self, step: Step, job: Job, inputs: Mapping[str, Any], total: int
    ) -> list[Any]:
        """Every element's handle, in order; the first failure (by index) after all ended."""
        handles: list[Any] = [None] * total
        errors: dict[int, Exception] = {}
        counts = {"done": 0, "failed": 0}
        limit = self.executor.limit
        slots = anyio.CapacityLimiter(limit if limit is not None else max(total, 1))

        async def one(index: int) -> None:
            async with slots:
                for attempt in range(1, step.retries + 2):
                    if attempt > 1:
                        await anyio.sleep(step.backoff * 2 ** (attempt - 2))
                    try:
                        handles[index] = await self.executor.element(
                            dataclasses.replace(job, attempt=attempt), inputs, index
                        )
                    except Exception as exc:
                        if attempt <= step.retries:
                            continue
                        errors[index] = exc
                        counts["failed"] += 1
                    else:
                        counts["done"] += 1
                    break
            self._progress(step.name, counts["done"], counts["failed"], total)

        self._progress(step.name, 0, 0, total)
        async with anyio.create_task_group() as tg:
            for index in range(total):
                tg.start_soon(one, index)
        if errors:
            first = min(errors)
            raise errors[first]
        return handles

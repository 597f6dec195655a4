"""Running a pipeline's steps: the scheduler, each step's attempts, and their bookkeeping.

One :class:`Execution` runs on an event loop in the caller's thread. Its main task starts
every step whose dependencies have completed, up to ``max_parallel`` at once; each step task
runs its attempts, each inside a run of its own (a child of the pipeline's run), records
every transition in the store, and reports back to the main task, which marks the
dependents of a failed step skipped. Async steps run on this loop; sync steps in worker
threads. A step that outlives its timeout is abandoned (a sync step's thread runs on, but its
run is ended and its result ignored).

A pipeline whose run is asked to stop (``stop_run``) starts no further step: the steps not
started yet are skipped, naming who asked; running steps were asked too (their runs are the
pipeline run's children) and end when their code checks ``should_stop()``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from chachaml.client.run import ActiveRun, error_text
from chachaml.errors import InvalidInput
from chachaml.records import validation
from chachaml.records.pipelines import PIPELINE_TAG
from chachaml.records.runs import EndStatus
from chachaml.tools import pipelines as ops

if TYPE_CHECKING:
    from chachaml.client.client import Client

STEP_TAG = "chachaml.step"
ATTEMPT_TAG = "chachaml.attempt"

log = logging.getLogger("chachaml")
Update = Callable[[str, str], None]


@dataclass(frozen=True)
class StepContext:
    """What a step receives: its pipeline, name, run, attempt and its dependencies' results."""

    pipeline_id: str
    name: str
    run: ActiveRun
    attempt: int
    depends_on: tuple[str, ...]
    results: Mapping[str, Any]

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
class Step:
    """A step: a name, a callable taking a :class:`StepContext` (sync or async) and options.

    ``depends_on`` names the steps whose results it needs: ``None`` (the default) means the
    step before it in the list, ``[]`` none. A failed attempt is retried ``retries`` times,
    waiting ``backoff`` seconds before the first retry and twice as long before each next
    one; an attempt running longer than ``timeout`` seconds fails with ``TimeoutError``.
    """

    name: str
    fn: Callable[[StepContext], Any]
    depends_on: Sequence[str] | None = None
    retries: int = 0
    backoff: float = 1.0
    timeout: float | None = None

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


@dataclass
class Execution:
    """One pass over the steps in ``todo``; steps outside it completed with ``results``."""

    client: Client
    pipeline_id: str
    steps: Mapping[str, Step]
    deps: Mapping[str, tuple[str, ...]]
    todo: set[str]
    results: dict[str, Any]
    max_parallel: int
    on_update: Update | None = None
    failures: dict[str, tuple[str, BaseException]] = field(default_factory=dict)
    pipeline_run: ActiveRun | None = None  # asked to stop, it starts no further step

    def __post_init__(self) -> None:
        self._slots = anyio.Semaphore(self.max_parallel)
        self._threads = anyio.CapacityLimiter(self.max_parallel)
        self._state = {n: "pending" if n in self.todo else "completed" for n in self.deps}

    def _notify(self, step: str, status: str) -> None:
        if self.on_update is None:
            return
        try:
            self.on_update(step, status)
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

    async def _run_step(self, name: str, done: MemoryObjectSendStream[str]) -> None:
        step = self.steps[name]
        async with self._slots:
            if self.stopping:  # asked to stop while this step waited for a slot
                await self._skip([name], self._stop_reason())
                await done.send(name)
                return
            started = time.time()
            run: ActiveRun | None = None
            try:
                for attempt in range(1, step.retries + 2):
                    if attempt > 1:
                        await anyio.sleep(step.backoff * 2 ** (attempt - 2))
                    run = await self._start_attempt(step, attempt, started)
                    try:
                        value = await self._call(step, run, attempt)
                    except Exception as exc:
                        await run.aend("failed", error_text(exc))
                        if attempt <= step.retries:
                            continue
                        self.failures[name] = (run.id, exc)
                        await self.client.aop(
                            ops.end_step,
                            self.pipeline_id,
                            name,
                            "failed",
                            time.time(),
                            error_text(exc),
                        )
                        self._notify(name, "failed")
                        break
                    await run.aend("completed", None)
                    self.results[name] = value
                    result = ops.encode_result(value)
                    await self.client.aop(
                        ops.end_step, self.pipeline_id, name, "completed", time.time(), None, result
                    )
                    self._notify(name, "completed")
                    break
            except BaseException as exc:  # cancelled (Ctrl-C), or the store failed
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    if run is not None and not run.ended:
                        await run.aend("killed", error_text(exc))
                    await self.client.aop(
                        ops.end_step, self.pipeline_id, name, "killed", time.time(), error_text(exc)
                    )
                    self._notify(name, "killed")
                raise
        await done.send(name)

    async def _start_attempt(self, step: Step, attempt: int, started: float) -> ActiveRun:
        tags = {PIPELINE_TAG: self.pipeline_id, STEP_TAG: step.name, ATTEMPT_TAG: attempt}
        run = await self.client.astart_run(None, step.name, tags=tags)  # child of the pipeline's
        try:
            await self.client.aop(
                ops.start_step, self.pipeline_id, step.name, run.id, attempt, started
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                status: EndStatus = "failed" if isinstance(exc, Exception) else "killed"
                await run.aend(status, error_text(exc))
            raise
        self._notify(step.name, "running")
        return run

    async def _call(self, step: Step, run: ActiveRun, attempt: int) -> Any:
        deps = self.deps[step.name]
        ctx = StepContext(
            self.pipeline_id, step.name, run, attempt, deps, {d: self.results[d] for d in deps}
        )
        with anyio.move_on_after(step.timeout):
            if is_async(step.fn):
                value = await step.fn(ctx)
            else:
                value = await anyio.to_thread.run_sync(
                    step.fn, ctx, abandon_on_cancel=True, limiter=self._threads
                )
            if inspect.isawaitable(value):
                value = await value
            return value
        raise TimeoutError(f"step {step.name!r} timed out after {step.timeout:g} s")


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine (async functions and async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )

"""``Client``: the synchronous tracking API, with async twins, over one background runtime.

``import chachaml as ml`` exposes the bound methods of a default client; create your own
``Client(store=..., artifacts=...)`` to log somewhere else in the same process. The current
run is held in a ``ContextVar``, so it is per thread and per async task.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from chachaml.client import bridge
from chachaml.client.alerts import Alerts
from chachaml.client.environment import static_environment
from chachaml.client.pipelines.pipeline import Pipelines
from chachaml.client.registry import Registry
from chachaml.client.run import ActiveRun, AsyncRunContext, OnStop, error_text
from chachaml.client.runtime import Runtime
from chachaml.client.tracked import tracked_call
from chachaml.errors import InvalidInput, NoActiveRun
from chachaml.records import validation
from chachaml.records.runs import (
    Artifact,
    BestRun,
    Comparison,
    Dataset,
    Direction,
    EndStatus,
    Experiment,
    MetricSeries,
    ParamValue,
    Run,
    Runs,
)
from chachaml.settings import Settings
from chachaml.store.artifacts.serializers import decode
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import metrics as metric_ops
from chachaml.tools import retention
from chachaml.tools import runs as run_ops

if TYPE_CHECKING:
    import httpx

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("chachaml")

DEFAULT_EXPERIMENT = "default"
_UNSET: Any = object()
StartRun = Callable[..., Awaitable[dict[str, ParamValue]]]  # runs.start_run, or a step's


class Client:
    """A tracking client bound to one store and artifact root (configuration is lazy).

    ``transport`` reaches an ``http://`` store through something other than the network:
    ``httpx.ASGITransport(app)`` runs a server app in this process (as the tests do).

    ``client.registry``, ``client.alerts`` and ``client.pipelines`` are those APIs bound to
    this client; :meth:`op` runs any operation of :mod:`chachaml.tools` on its store.
    """

    def __init__(
        self,
        store: str | None = None,
        artifacts: str | None = None,
        *,
        user: str | None = None,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = settings if settings is not None else Settings.from_env()
        self.settings = base.with_overrides(store_url=store, artifact_root=artifacts, user=user)
        self._runtime: Runtime | None = None
        self._transport = transport
        self._start_lock = threading.Lock()
        self._current: ContextVar[ActiveRun | None] = ContextVar("chachaml_run", default=None)
        self._hooked = False
        self._unhandled: BaseException | None = None
        self._previous_hook = sys.excepthook

    @functools.cached_property
    def registry(self) -> Registry:
        """The model registry API, bound to this client."""
        return Registry(self)

    @functools.cached_property
    def alerts(self) -> Alerts:
        """The alerts API, bound to this client."""
        return Alerts(self)

    @functools.cached_property
    def pipelines(self) -> Pipelines:
        """The pipelines API, bound to this client."""
        return Pipelines(self)

    # configuration and lifecycle

    def _here(self) -> Runtime | None:
        """The runtime if one runs in this process (not one inherited through a fork)."""
        rt = self._runtime
        return rt if rt is not None and rt.pid == os.getpid() else None

    @property
    def runtime(self) -> Runtime:
        """The background runtime, started on first use (and again after a fork)."""
        if (rt := self._here()) is not None:
            return rt
        with self._start_lock:
            if self._runtime is None or self._runtime.pid != os.getpid():
                fresh = Runtime(self.settings, self._transport)
                fresh.start()
                self._runtime = fresh
                if not self._hooked:  # runs left open end at exit, failed after a crash
                    self._hooked = True
                    atexit.register(self._at_exit)
                    self._previous_hook = sys.excepthook
                    sys.excepthook = self._record_unhandled
            return self._runtime

    def _record_unhandled(
        self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        """``sys.excepthook``: remember the exception that ends the program, then chain."""
        self._unhandled = exc
        self._previous_hook(kind, exc, tb)

    def use_store(self, url: str | None = None, artifacts: str | None = None) -> None:
        """Point this client at another store URL and/or artifact root."""
        if self.open_runs():
            raise InvalidInput("cannot switch stores while runs are active; end them first")
        if (rt := self._here()) is not None:
            rt.close()
        self._runtime = None
        self.settings = self.settings.with_overrides(store_url=url, artifact_root=artifacts)

    def close(self) -> None:
        """End active runs as completed, flush, and stop the background runtime."""
        if (rt := self._here()) is None:
            return
        for run in list(rt.active.values()):
            run.end("completed")
        rt.close()
        self._runtime = None

    def _at_exit(self) -> None:
        if (rt := self._here()) is None:
            return
        error = error_text(self._unhandled) if self._unhandled is not None else None
        for run in list(rt.active.values()):
            with contextlib.suppress(Exception):
                run.end("failed" if error else "completed", error)
        with contextlib.suppress(Exception):
            rt.close()

    def op(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``fn(store, *args, **kwargs)``: an operation of :mod:`chachaml.tools` on this store.

        Runs after this process's buffered points are stored, so a query sees every point
        logged before it (read-your-writes).
        """
        return self.runtime.op(fn, *args, **kwargs)

    async def aop(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Async twin of :meth:`op` (the caller's event loop is not blocked)."""
        return await self.runtime.aop(fn, *args, **kwargs)

    def current_user(self) -> str:
        """Who runs are attributed to: ``CHACHA_USER``, else the OS user."""
        return self.settings.user

    # runs

    def start_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        parent: ActiveRun | str | None = _UNSET,
        on_stop: OnStop | None = None,
        store_run: StartRun | None = None,
    ) -> ActiveRun:
        """Start a run and make it current (inside another, its parent); see ``ActiveRun``.

        ``store_run`` writes its row (a pipeline attempt's also marks its step running on it).
        """
        current = self._current.get()
        parent_run: ActiveRun | None = None
        if parent is _UNSET:
            parent_run = current if current is not None and not current.ended else None
            parent_id = parent_run.id if parent_run else None
        elif isinstance(parent, ActiveRun):
            parent_run, parent_id = parent, parent.id
        else:
            parent_id = None if parent is None else validation.run_id(parent)
        default = parent_run.experiment if parent_run else DEFAULT_EXPERIMENT
        params = validation.params(params or {})  # all checked before the store is opened
        new = run_ops.new_run(
            default if experiment is None else experiment, name, parent_id=parent_id, tags=tags,
            created_by=self.settings.user, environment={**static_environment(), "pid": os.getpid()},
            heartbeat_timeout=3 * self.settings.heartbeat_seconds + 2,
        )  # fmt: skip
        rt = self.runtime
        clean = rt.call(store_run or run_ops.start_run, rt.store, new, params, rt.delivery)
        run = ActiveRun(
            rt, self._current, new.id, new.experiment, new.name, current, parent_id,
            new.started_at, clean, on_stop,
        )  # fmt: skip
        rt.active[run.id] = run
        self._current.set(run)
        return run

    run = start_run

    def open_runs(self) -> list[ActiveRun]:
        """The runs this client started in this process that have not ended."""
        rt = self._here()
        return [] if rt is None else [r for r in rt.active.values() if not r.ended]

    def end_run(self, status: EndStatus = "completed", error: str | None = None) -> None:
        """End the current run."""
        self._require_run().end(status, error)

    def active_run(self) -> ActiveRun | None:
        """The current run of this thread or task, if any."""
        run = self._current.get()
        return run if run is not None and not run.ended else None

    def _require_run(self) -> ActiveRun:
        run = self._current.get()
        if run is None or run.ended:
            raise NoActiveRun(
                "no active run in this thread or task: use `with chachaml.run(...)`"
                " or chachaml.start_run() first"
            )
        return run

    # logging on the current run

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer a metric point on the current run (returns at once)."""
        run = self._current.get()
        if run is None:
            run = self._require_run()
        run.log_metric(key, value, step)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer several metric points at one step."""
        self._require_run().log_metrics(metrics, step)

    def log_param(self, key: str, value: ParamValue) -> None:
        """Record an immutable param on the current run."""
        self._require_run().log_param(key, value)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params on the current run."""
        self._require_run().log_params(params)

    def set_tag(self, key: str, value: str) -> None:
        """Set a tag on the current run."""
        self._require_run().set_tag(key, value)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags on the current run."""
        self._require_run().set_tags(tags)

    def log_dataset(self, role: str = "train", **fields: Any) -> Dataset:
        """Record a dataset on the current run (see ``ActiveRun.log_dataset``)."""
        return self._require_run().log_dataset(role, **fields)

    def log_artifact(self, name: str, value: Any, *, serializer: str | None = None) -> Artifact:
        """Store an artifact on the current run."""
        return self._require_run().log_artifact(name, value, serializer=serializer)

    def log_file(self, name: str, path: str | Path) -> Artifact:
        """Store a file as an artifact of the current run."""
        return self._require_run().log_file(name, path)

    def log_table(
        self, name: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Artifact:
        """Store a table artifact on the current run."""
        return self._require_run().log_table(name, headers, rows)

    # writes on any run

    def set_run_tag(self, run_id: str, key: str, value: str) -> dict[str, str]:
        """Set a tag on any run, running or ended; returns its tags."""
        return self.op(run_ops.add_tag, run_id, key, value, self.settings.user)

    def set_note(self, run_id: str, markdown: str) -> None:
        """Replace a run's markdown note."""
        self.op(run_ops.set_note, run_id, markdown, self.settings.user)

    # artifacts

    def load_artifact(
        self, run_id: str, name: str, *, allow_pickle: bool = False, trusted: Sequence[str] = ()
    ) -> Any:
        """Load an artifact value (pickled ones only with ``allow_pickle=True``).

        A skops model loads by :mod:`chachaml.store.artifacts.skops`'s trust rule; ``trusted``
        names types beyond it (e.g. ``["sklearn.tree._tree.Tree"]`` for tree models).
        """
        art, data = self.op(artifact_ops.read_bytes, self.runtime.artifacts, run_id, name)
        return decode(data, art.serializer, allow_pickle=allow_pickle, trusted=trusted)

    def list_artifacts(self, run_id: str | None = None) -> list[Artifact]:
        """A run's artifacts (the current run's by default)."""
        rid = run_id if run_id is not None else self._require_run().id
        return self.op(artifact_ops.list_artifacts, rid)

    # queries

    def runs(
        self,
        experiment: str | None = None,
        status: str | None = None,
        created_by: str | None = None,
        since: object = None,
        until: object = None,
        limit: int | None = 100,
    ) -> Runs:
        """Runs, newest first; ``since``/``until`` take ISO dates, datetimes or dates."""
        return Runs(
            self.op(
                run_ops.list_runs,
                experiment=experiment,
                status=status,
                created_by=created_by,
                since=since,
                until=until,
                limit=limit,
            )
        )

    def get_run(self, run_id: str) -> Run:
        """Everything about one run; ``NotFound`` naming the id if it does not exist."""
        return self.op(run_ops.get_run, run_id)

    def last_run(self, experiment: str | None = None) -> Run | None:
        """The most recently started run (of an experiment), in full."""
        found = self.runs(experiment=experiment, limit=1)
        return self.get_run(found[0].id) if found else None

    def search_runs(
        self,
        metric: str | None = None,
        op: str | None = None,
        value: float | None = None,
        *,
        experiment: str | None = None,
        where: Sequence[tuple[str, str, float]] = (),
        params: dict[str, ParamValue] | None = None,
        tags: dict[str, str] | None = None,
        since: object = None,
        until: object = None,
        limit: int | None = 100,
    ) -> Runs:
        """Runs whose latest ``metric`` passes ``op value`` (> >= < <= =); ``where`` adds more."""
        return Runs(
            self.op(
                run_ops.search_runs,
                experiment=experiment,
                metric_key=metric,
                op=op,
                metric_value=value,
                where=where,
                params=params,
                tags=tags,
                since=since,
                until=until,
                limit=limit,
            )
        )

    def best_run(
        self,
        metric: str,
        experiment: str | None = None,
        direction: Direction = "max",
        *,
        since: object = None,
        until: object = None,
    ) -> BestRun | None:
        """The run with the best latest value of ``metric``, with that value and its step."""
        return self.op(
            run_ops.best_run,
            metric,
            experiment=experiment,
            direction=direction,
            since=since,
            until=until,
        )

    def compare_runs(self, run_ids: Sequence[str]) -> Comparison:
        """Params (with the differing ones) and latest metrics of 2 or more runs."""
        return self.op(run_ops.compare_runs, run_ids)

    def export_runs(
        self, experiment: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every run as a flat record (``params.*``, ``metrics.*``, ``tags.*``), not truncated."""
        return self.op(run_ops.export_runs, experiment=experiment, limit=limit)

    def metric_history(
        self, run_id: str, key: str, *, min_step: int | None = None, max_step: int | None = None
    ) -> MetricSeries:
        """The points of a metric of a run by step: all, or ``min_step <= step <= max_step``."""
        return self.op(metric_ops.metric_history, run_id, key, min_step=min_step, max_step=max_step)

    def experiments(self) -> list[Experiment]:
        """Every experiment, most recently active first."""
        return self.op(experiment_ops.list_experiments)

    def create_experiment(
        self, name: str, description: str | None = None, owner: str | None = None
    ) -> Experiment:
        """Create an experiment (or update the description and owner of an existing one)."""
        return self.op(experiment_ops.create_experiment, name, description, owner)

    def my_runs(
        self,
        experiment: str | None = None,
        status: str | None = None,
        since: object = None,
        until: object = None,
        limit: int | None = 100,
    ) -> Runs:
        """Runs created by the current user, newest first."""
        me = self.current_user()
        return self.runs(experiment, status, me, since, until, limit)

    def my_last_run(self) -> Run | None:
        """The current user's most recent run, in full."""
        found = self.my_runs(limit=1)
        return self.get_run(found[0].id) if found else None

    # buffering

    def flush(self) -> None:
        """Return once every metric point logged so far is stored."""
        if (rt := self._here()) is not None:
            rt.call(rt.drain)

    @contextlib.contextmanager
    def batched_metrics(self) -> Iterator[None]:
        """A block whose metric points are all stored when it exits (a flush at the end)."""
        try:
            yield
        finally:
            self.flush()

    # cleanup

    def archive_runs(self, older_than_days: float, experiment: str | None = None) -> int:
        """Archive ended runs started more than ``older_than_days`` ago; returns how many."""
        return self.op(retention.archive_runs, retention.days_ago(older_than_days), experiment)

    def delete_archived(self) -> int:
        """Delete archived runs with their rows and now-unused artifact files; returns how many."""
        return self.op(retention.delete_archived, self.runtime.artifacts)

    # decorators

    @overload
    def tracked(self, fn: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def tracked(
        self, *, experiment: str | None = None, name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def tracked(  # type: ignore[misc]  # mypy cannot match ParamSpec overloads here
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        experiment: str | None = None,
        name: str | None = None,
    ) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
        """Each call (sync or async) a run named after it: scalar args as params, errors fail it."""

        def decorate(func: Callable[P, R]) -> Callable[P, R]:
            return tracked_call(self, func, experiment, name or func.__name__)

        return decorate(fn) if fn is not None else decorate

    # async twins

    async def astart_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        parent: ActiveRun | str | None = _UNSET,
        on_stop: OnStop | None = None,
        store_run: StartRun | None = None,
    ) -> ActiveRun:
        """:meth:`start_run` without blocking the event loop; current in this task."""
        start = functools.partial(self.start_run, experiment, name, tags=tags, params=params,
                                  parent=parent, on_stop=on_stop, store_run=store_run)  # fmt: skip
        run = await bridge.to_thread(start)
        self._current.set(run)
        return run

    def arun(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> AsyncRunContext:
        """``async with ml.arun(...) as run:`` — a run started and ended off the event loop."""
        return AsyncRunContext(self, experiment, name, tags, params)

    async def aflush(self) -> None:
        """Async twin of :meth:`flush`."""
        if (rt := self._here()) is not None:
            await rt.acall(rt.drain)

    async def aget_run(self, run_id: str) -> Run:
        """Async twin of :meth:`get_run`."""
        return await self.aop(run_ops.get_run, run_id)

    async def aruns(
        self,
        experiment: str | None = None,
        status: str | None = None,
        created_by: str | None = None,
        since: object = None,
        until: object = None,
        limit: int | None = 100,
    ) -> Runs:
        """Async twin of :meth:`runs` (the same arguments)."""
        return Runs(await self.aop(
            run_ops.list_runs, experiment, status, created_by, since=since, until=until,
            limit=limit,
        ))  # fmt: skip

    async def asearch_runs(
        self,
        metric: str | None = None,
        op: str | None = None,
        value: float | None = None,
        *,
        experiment: str | None = None,
        where: Sequence[tuple[str, str, float]] = (),
        params: dict[str, ParamValue] | None = None,
        tags: dict[str, str] | None = None,
        since: object = None,
        until: object = None,
        limit: int | None = 100,
    ) -> Runs:
        """Async twin of :meth:`search_runs` (the same arguments)."""
        return Runs(await self.aop(
            run_ops.search_runs, experiment=experiment, metric_key=metric, op=op,
            metric_value=value, where=where, params=params, tags=tags, since=since,
            until=until, limit=limit,
        ))  # fmt: skip

    async def abest_run(
        self,
        metric: str,
        experiment: str | None = None,
        direction: Direction = "max",
        *,
        since: object = None,
        until: object = None,
    ) -> BestRun | None:
        """Async twin of :meth:`best_run` (the same arguments)."""
        return await self.aop(
            run_ops.best_run, metric, experiment=experiment, direction=direction, since=since,
            until=until,
        )  # fmt: skip

    async def acompare_runs(self, run_ids: Sequence[str]) -> Comparison:
        """Async twin of :meth:`compare_runs`."""
        return await self.aop(run_ops.compare_runs, run_ids)

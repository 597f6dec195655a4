"""``ActiveRun``: a run being logged to, with its in-memory metric buffer.

``log_metric`` appends to per-key arrays under a lock and returns; the runtime's flusher packs
them into chunks. When the buffer holds ``max_pending_points`` the caller waits for a flush
(back-pressure), so memory stays bounded however fast a loop logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from threading import Lock, get_ident
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chachaml.client import bridge
from chachaml.errors import Conflict, InvalidInput, NoActiveRun
from chachaml.records import validation
from chachaml.records.runs import (
    Artifact,
    Dataset,
    EndStatus,
    MetricChunk,
    ParamValue,
    Run,
    StopRequest,
    Table,
)
from chachaml.records.validation import MAX_STEP
from chachaml.store.artifacts.serializers import serializer_for
from chachaml.store.codec import chunk_from_columns
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.runs import END_STATUSES, error_text

if TYPE_CHECKING:
    from chachaml.client.client import Client
    from chachaml.client.runtime import Runtime

__all__ = ["ActiveRun", "OnStop", "describe_dataset", "error_text"]

_now = time.time
log = logging.getLogger("chachaml")
ON_STOP_WAIT = 5.0  # seconds end() waits for on_stop callbacks still running
OnStop = Callable[[StopRequest], object]
EndRun = Callable[..., Awaitable[object]]  # as chachaml.tools.runs.end_run


class _Series:
    """Buffered points of one metric from one thread: parallel lists of steps, values, times.

    Only its owner thread appends, always in the order steps, values, times, so a reader
    that takes ``len(times)`` entries of each list gets complete points without a lock.
    """

    __slots__ = ("next_step", "owner", "steps", "times", "values")

    def __init__(self, owner: int) -> None:
        self.owner = owner
        self.steps: list[int] = []
        self.values: list[float] = []
        self.times: list[float] = []
        self.next_step = 0


_ENDED: dict[str, _Series] = {}  # an ended run's series: always empty, so logging raises


class ActiveRun:
    """A run in progress. Use it as a context manager, or end it with :meth:`end`.

    It talks to its client's runtime (which lists it among the active runs while it runs)
    and, when it ends, makes its parent current again in the client's ``current`` variable.
    ``on_stop`` (``start_run(..., on_stop=fn)``) is called once if the run is asked to stop
    (see :meth:`on_stop`).
    """

    def __init__(
        self,
        runtime: Runtime,
        current: ContextVar[ActiveRun | None],
        run_id: str,
        experiment: str,
        name: str | None,
        parent: ActiveRun | None,
        parent_id: str | None,
        started_at: float,
        params: Mapping[str, ParamValue] | None = None,
        on_stop: OnStop | None = None,
    ) -> None:
        self.id = run_id
        self.experiment = experiment
        self.name = name
        self.parent_id = parent_id
        self.started_at = started_at
        self.ended = False
        self.status: str = "running"
        self._parent = parent
        self._runtime = runtime
        self._current = current
        self._lock = Lock()
        self._take_lock = Lock()  # the logging thread and the flusher may both take
        self._series: dict[str, _Series] = {}
        self._others: dict[tuple[int, str], _Series] = {}
        self._pending = 0
        settings = runtime.settings
        self._flush_points = settings.flush_points
        self._max_pending = max(settings.max_pending_points, settings.flush_points)
        self._params: dict[str, ParamValue] = dict(params or {})
        self.stop_request: StopRequest | None = None  # who asked this run to stop, and why
        self._on_stop: list[OnStop] = [] if on_stop is None else [on_stop]
        self._stop_calls: list[threading.Thread] = []  # on_stop callbacks under way

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.experiment}/{self.name} {self.status}>"

    @property
    def parent(self) -> ActiveRun | None:
        """The active run this one was started inside, if any."""
        return self._parent

    # metrics: the hot path

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one point; ``step`` defaults to one past this key's last step (from 0).

        Lock-free: each thread appends to buffers of its own. Threads may log concurrently;
        give explicit steps when several threads log the same metric.
        """
        if type(value) is not float:
            value = validation.metric_value(key, value)
        series = self._series.get(key)
        if series is None or series.owner != get_ident():
            series = self._own_series(key)
        if step is None:
            step = series.next_step
            if step > MAX_STEP:  # after a point at the last int64 step
                raise validation.overflow(key, step - 1)
            series.next_step = step + 1
        else:
            if type(step) is not int or step < 0:
                step = validation.step(step)
            if step >= series.next_step:
                series.next_step = step + 1
        series.steps.append(step)
        series.values.append(value)
        series.times.append(_now())
        self._pending = pending = self._pending + 1
        if pending >= self._flush_points:
            self._buffer_full()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer several metrics at one step."""
        if not isinstance(metrics, Mapping):
            raise InvalidInput(f"log_metrics takes a mapping of name to value, got {metrics!r}")
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def _own_series(self, key: str) -> _Series:
        """This thread's buffer for ``key`` (the first thread to log a key owns the fast one)."""
        with self._lock:
            if self.ended:
                raise NoActiveRun(
                    f"run {self.id} has ended ({self.status}); start a new run to log"
                )
            name = validation.key(key, "metric key")
            me = get_ident()
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = _Series(me)
            elif series.owner != me:
                series = self._others.get((me, name)) or _Series(me)
                self._others[me, name] = series
            return series

    def _buffer_full(self) -> None:
        # Pack here, in the logging thread: it holds the GIL already, so packing costs a
        # fraction of a microsecond per point instead of a GIL tug-of-war with the flusher.
        runtime = self._runtime
        if runtime.submit(self.take_chunks()) >= self._max_pending:
            runtime.drain_blocking()  # back-pressure: wait until the store has caught up
        else:
            runtime.wake()

    def take_chunks(self) -> list[MetricChunk]:
        """Hand the buffered points over, packed one chunk per metric key and thread.

        Takes ``len(times)`` entries of each buffer (slices, then deletes), so points
        appended meanwhile stay for the next flush; takers run one at a time, appenders never
        wait. Once the run has ended its buffers are dropped, so that further logging raises
        instead of buffering.
        """
        with self._take_lock:
            self._pending = 0
            buffers = [*self._series.items(), *((k, s) for (_, k), s in self._others.items())]
            if self.ended:
                with self._lock:
                    self._series, self._others = _ENDED, {}
            chunks = []
            for key, series in buffers:
                n = len(series.times)
                if n:
                    steps, values, times = series.steps[:n], series.values[:n], series.times[:n]
                    del series.steps[:n], series.values[:n], series.times[:n]
                    chunks.append(chunk_from_columns(self.id, key, steps, values, times))
            return chunks

    # everything else goes straight to the store

    def log_param(self, key: str, value: ParamValue) -> None:
        """Record a param; params are immutable, so a different value for a key is an error."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several params."""
        clean = validation.params(params)
        for key, value in clean.items():
            if key in self._params and self._params[key] != value:
                raise Conflict(
                    f"param {key!r} of run {self.id!r} is already {self._params[key]!r}; params"
                    f" are immutable, cannot change it to {value!r}"
                )
        rt = self._runtime
        rt.call(run_ops.log_params, rt.store, self.id, clean)
        self._params.update(clean)

    def set_tag(self, key: str, value: str) -> None:
        """Set a tag (tags may change)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        rt = self._runtime
        rt.call(run_ops.set_tags, rt.store, self.id, tags, rt.settings.user)

    def set_note(self, markdown: str) -> None:
        """Replace this run's markdown note."""
        self._runtime.op(run_ops.set_note, self.id, markdown, self._runtime.settings.user)

    def log_dataset(
        self,
        role: str = "train",
        *,
        name: str | None = None,
        n_rows: int | None = None,
        n_cols: int | None = None,
        features: Sequence[str] | None = None,
        source: str | None = None,
        digest: str | None = None,
        data: Any = None,
        **extra: Any,
    ) -> Dataset:
        """Record a dataset; shape and columns are read from ``data`` (array, DataFrame, rows)."""
        dataset = describe_dataset(
            role, name, n_rows, n_cols, features, source, digest, data, extra
        )
        rt = self._runtime
        return rt.call(run_ops.log_dataset, rt.store, self.id, dataset)

    def log_artifact(self, name: str, value: Any, *, serializer: str | None = None) -> Artifact:
        """Store a value: bytes as is, numpy arrays as .npy, JSON-able values as JSON."""
        chosen = serializer_for(value, serializer)
        data = chosen.dump(value)
        rt = self._runtime
        return rt.call(
            partial(
                artifact_ops.put_bytes,
                rt.store,
                rt.artifacts,
                self.id,
                name,
                data,
                content_type=chosen.content_type,
                serializer=chosen.name,
            )
        )

    def log_file(self, name: str, path: str | Path) -> Artifact:
        """Store a local file (streamed, hashed)."""
        rt = self._runtime
        return rt.call(partial(artifact_ops.put_file, rt.store, rt.artifacts, self.id, name, path))

    def log_table(
        self, name: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Artifact:
        """Store a small table (headers and rows), loadable as a :class:`Table`."""
        table = Table(headers=[str(h) for h in headers], rows=[list(r) for r in rows])
        if any(len(r) != len(table.headers) for r in table.rows):
            raise InvalidInput(f"every row of table {name!r} needs {len(table.headers)} values")
        return self.log_artifact(name, table, serializer="table")

    def list_artifacts(self) -> list[Artifact]:
        """This run's artifacts."""
        return self._runtime.op(artifact_ops.list_artifacts, self.id)

    def info(self) -> Run:
        """Everything stored about this run so far, buffered metric points included."""
        return self._runtime.op(run_ops.get_run, self.id)

    # stopping on request

    def should_stop(self) -> bool:
        """Whether someone asked this run to stop (``stop_run``, an agent's MCP ``stop_run``).

        Heard in the reply to the run's heartbeat, so within one heartbeat interval of the
        request (``CHACHAML_HEARTBEAT_SECONDS``). Costs an attribute read: check it every step.
        """
        return self.stop_request is not None

    def on_stop(self, fn: OnStop) -> OnStop:
        """Call ``fn(request)`` once when this run is asked to stop (at once if it was).

        It runs in a thread of its own, so it should only tell the training loop (set a
        flag, ``trainer.should_stop = True``); what it raises is logged; ending the run waits
        for it (up to ``ON_STOP_WAIT`` seconds). Usable as a decorator.
        """
        with self._lock:
            request = self.stop_request
            if request is None:
                self._on_stop.append(fn)
            else:
                self._stop_calls.append(_call_on_stop(fn, request))
        return fn

    def stop_requested(self, request: StopRequest) -> None:
        """Note a stop request (the runtime calls this from a heartbeat reply); once."""
        with self._lock:
            if self.stop_request is not None or self.ended:
                return
            self.stop_request = request
            # started under the lock that end() takes to find them: a loop that sees
            # should_stop() and ends at once still waits for them
            self._stop_calls += [_call_on_stop(fn, request) for fn in self._on_stop]
            self._on_stop = []

    # ending

    def end(
        self, status: EndStatus = "completed", error: str | None = None, *,
        store_end: EndRun | None = None,
    ) -> None:  # fmt: skip
        """Store buffered points, then end the run (:func:`chachaml.tools.runs.end_run`).

        Ending twice does nothing. The error text is made storable (NUL spelled out, cut to
        100,000 characters) and the arguments are checked before the run counts as ended, so
        it can always end. Afterwards its parent (if still running) is current again.
        ``store_end`` ends it in the store (a step's attempt: the step with it).
        """
        store_end = store_end or run_ops.end_run
        if status not in END_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(END_STATUSES)}; got {status!r}")
        error = validation.storable_error(error)
        with self._lock:  # after stop_requested() has started every callback it will
            calls = list(self._stop_calls)
        for call in calls:  # a callback finishes before its run ends
            if call is not threading.current_thread():
                call.join(timeout=ON_STOP_WAIT)
        with self._lock:
            if self.ended:
                return
            self.ended = True
            if status == "completed" and self.stop_request is not None:
                status = "stopped"  # as the store records it
            self.status = status
        rt = self._runtime
        try:
            rt.op(store_end, self.id, status, error, delivery=rt.delivery)
        finally:
            rt.active.pop(self.id, None)
            self.restore_current()

    async def aend(self, status: EndStatus = "completed", error: str | None = None) -> None:
        """Async twin of :meth:`end`: off the event loop, then its parent current in this task."""
        await bridge.to_thread(self.end, status, error)
        self.restore_current()

    def restore_current(self) -> None:
        """If this run is current (in this thread or task), make its running parent current."""
        if self._current.get() is self:
            parent = self._parent
            self._current.set(parent if parent is not None and not parent.ended else None)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("completed")
        elif isinstance(exc, Exception):
            self.end("failed", error_text(exc))
        else:  # KeyboardInterrupt, SystemExit, cancellation
            self.end("killed", error_text(exc))

    async def __aenter__(self) -> ActiveRun:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await bridge.to_thread(self.__exit__, exc_type, exc, tb)
        self.restore_current()


def _call_on_stop(fn: OnStop, request: StopRequest) -> threading.Thread:
    """Run an ``on_stop`` callback in a thread of its own: it never blocks the flusher."""

    def call() -> None:
        try:
            fn(request)
        except Exception:
            log.exception("chachaml: the on_stop callback of run %s failed", request.run_id)

    thread = threading.Thread(target=call, name="chachaml-on-stop", daemon=True)
    thread.start()
    return thread


def describe_dataset(
    role: str,
    name: str | None,
    n_rows: int | None,
    n_cols: int | None,
    features: Sequence[str] | None,
    source: str | None,
    digest: str | None,
    data: Any,
    extra: Mapping[str, Any],
) -> Dataset:
    """A :class:`Dataset`, filling shape and feature names from ``data`` where not given."""
    if data is not None:
        shape = getattr(data, "shape", None)
        if shape is not None and len(shape) >= 1:
            n_rows = int(shape[0]) if n_rows is None else n_rows
            if len(shape) >= 2 and n_cols is None:
                n_cols = int(shape[1])
        elif isinstance(data, Sequence) and n_rows is None:
            n_rows = len(data)
            if data and isinstance(data[0], Sequence) and n_cols is None:
                n_cols = len(data[0])
        columns = getattr(data, "columns", None)
        if features is None and columns is not None:
            features = [str(c) for c in columns]
    if features is not None and n_cols is None:
        n_cols = len(features)
    for field, value in (("n_rows", n_rows), ("n_cols", n_cols)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise InvalidInput(f"{field} must be a non-negative integer, got {value!r}")
    try:
        return Dataset(
            role=validation.name(role, "dataset role"),
            name=name,
            n_rows=n_rows,
            n_cols=n_cols,
            features=[str(f) for f in features or []],
            source=source,
            digest=digest,
            extra=validation.json_mapping(dict(extra), "dataset extra fields"),
        )
    except ValidationError as exc:  # NUL or an oversized field: the model says which
        raise validation.refused(exc) from None


class AsyncRunContext:
    """``async with client.arun(...) as run:``: a run started and ended off the event loop."""

    def __init__(
        self,
        client: Client,
        experiment: str | None,
        name: str | None,
        tags: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
    ) -> None:
        self._client = client
        self._args = (experiment, name, tags, params)
        self._run: ActiveRun | None = None

    async def __aenter__(self) -> ActiveRun:
        experiment, name, tags, params = self._args
        self._run = await self._client.astart_run(experiment, name, tags=tags, params=params)
        return self._run

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._run is not None
        await self._run.__aexit__(exc_type, exc, tb)

"""The background event loop that the synchronous tracking API runs on.

One daemon thread (a :class:`~chachaml.client.bridge.LoopThread`) runs an event loop holding
the open ``Store`` and ``ArtifactStore``; synchronous callers hand it operations. A single
background task flushes buffered metric points (on a timer, or when a buffer fills) and sends
run heartbeats. Storage trouble in the background is retried and reported at
``flush()``/``end_run``, never thrown into the training loop.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from chachaml.client.bridge import LoopThread
from chachaml.errors import StoreUnavailable
from chachaml.records.runs import MetricChunk
from chachaml.settings import Settings
from chachaml.store import Store
from chachaml.store.artifacts import ArtifactStore, open_artifact_store
from chachaml.tools import metrics as metric_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.webhooks import Delivery

if TYPE_CHECKING:
    import httpx

    from chachaml.client.run import ActiveRun

T = TypeVar("T")
log = logging.getLogger("chachaml")


def _artifact_store(settings: Settings, store: Store) -> ArtifactStore:
    """Artifacts go through the server for an ``http(s)://`` store, else to the artifact root."""
    if settings.store_url.startswith(("http://", "https://")):
        from chachaml.client.remote import RemoteStore

        assert isinstance(store, RemoteStore)
        return store.artifacts
    return open_artifact_store(settings.artifact_root, settings.s3)


class Runtime:
    """An open store on a background loop, plus the metric flusher and heartbeats."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._transport = transport  # a server app in this process instead of the network
        self.pid = os.getpid()
        self.active: dict[str, ActiveRun] = {}
        self._thread = LoopThread("chachaml-runtime")
        self._store: Store | None = None
        self._artifacts: ArtifactStore | None = None
        self._wake: anyio.Event | None = None
        self._drain_lock: anyio.Lock | None = None
        self._unsent: list[list[MetricChunk]] = []  # batches, each sent again as it was
        self._packed: list[MetricChunk] = []
        self._packed_points = 0
        self._last_error: BaseException | None = None

    # lifecycle

    def start(self) -> None:
        """Start the loop thread and open the stores; raises what opening raised."""

        async def setup() -> None:
            from chachaml.client.remote import open_any_store  # httpx only when used

            self._store = await open_any_store(
                self.settings.store_url, token=self.settings.token, transport=self._transport
            )
            self._artifacts = _artifact_store(self.settings, self._store)
            self._wake = anyio.Event()
            self._drain_lock = anyio.Lock()

        async def teardown() -> None:
            await self.store.close()

        self._thread.start(setup, self._background, teardown)

    def close(self) -> None:
        """Flush what is buffered, stop the loop and close the store."""
        self._thread.stop(self.drain)

    @property
    def store(self) -> Store:
        """The open store (only valid on the runtime's loop)."""
        assert self._store is not None
        return self._store

    @functools.cached_property
    def delivery(self) -> Delivery:
        """How alerts fired here link back (webhooks are only queued, never sent from here)."""
        return Delivery.from_settings(self.settings)

    @property
    def artifacts(self) -> ArtifactStore:
        """The open artifact store."""
        assert self._artifacts is not None
        return self._artifacts

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a coroutine function on the runtime loop and wait for its result."""
        return self._thread.call(fn, *args)

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """The async twin of :meth:`call`, usable from any other event loop."""
        return await self._thread.acall(fn, *args)

    def op(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``fn(store, *args, **kwargs)``, an operation, after storing the buffered points.

        Draining first gives read-your-writes: a query sees every point logged before it.
        """
        bound: Callable[[], Awaitable[T]] = partial(fn, self.store, *args, **kwargs)
        result: T = self.call(self.after_drain, bound)
        return result

    async def aop(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """The async twin of :meth:`op`."""
        bound: Callable[[], Awaitable[T]] = partial(fn, self.store, *args, **kwargs)
        result: T = await self.acall(self.after_drain, bound)
        return result

    # metric flushing

    def wake(self) -> None:
        """Ask the flusher to run now (callable from any thread)."""
        loop, event = self._thread.loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def submit(self, chunks: list[MetricChunk]) -> int:
        """Queue chunks packed by a logging thread; returns how many points are queued."""
        self._packed.extend(chunks)  # one atomic list operation
        self._packed_points += sum(c.count for c in chunks)
        return self._packed_points

    async def drain(self) -> None:
        """Store every buffered point of every active run; raise if the store refuses.

        Buffered points become a batch with a fresh id. A batch that fails is kept whole,
        id included, and sent first and unchanged by the next drain: its reply may only have
        been lost, and the store (or server) skips a batch id it already holds, so a point
        is never stored twice.
        """
        assert self._drain_lock is not None
        async with self._drain_lock:
            n = len(self._packed)
            chunks = self._packed[:n]
            del self._packed[:n]
            self._packed_points = sum(c.count for c in self._packed)
            for run in list(self.active.values()):
                chunks.extend(run.take_chunks())
            if chunks:
                batch = uuid.uuid4().hex
                self._unsent.append([dataclasses.replace(c, batch=batch) for c in chunks])
            while self._unsent:
                await metric_ops.log_metrics(self.store, self._unsent[0])
                del self._unsent[0]

    async def after_drain(self, call: Callable[[], Awaitable[T]]) -> T:
        """Store buffered points, then run ``call`` (so it sees everything logged before)."""
        await self.drain()
        return await call()

    def drain_blocking(self) -> None:
        """Drain from a caller thread whose buffer is full: wait, retrying, until stored."""
        delay = 0.1
        while True:
            try:
                self.call(self.drain)
                return
            except StoreUnavailable as exc:  # storage trouble: the points are kept; wait, retry
                if not self._thread.running:
                    raise
                log.warning("chachaml: storing metrics failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _background(self) -> None:
        interval = self.settings.flush_interval
        beat_every = self.settings.heartbeat_seconds
        next_beat = time.monotonic() + beat_every
        delay = min(interval, beat_every)
        while True:
            assert self._wake is not None
            with anyio.move_on_after(delay):
                await self._wake.wait()
            self._wake = anyio.Event()
            try:
                await self.drain()
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + beat_every
                    ids = [r.id for r in self.active.values() if not r.ended]
                    for stop in await run_ops.heartbeat(self.store, ids):
                        if (run := self.active.get(stop.run_id)) is not None:
                            run.stop_requested(stop)
                self._last_error = None
                # wake at the next beat, not up to an interval after it: a stop request
                # (heard in the heartbeat's reply) reaches the run within one heartbeat
                delay = max(0.0, min(interval, next_beat - time.monotonic()))
            except Exception as exc:
                if self._last_error is None:
                    log.warning("chachaml: background flush failed, will retry: %s", exc)
                self._last_error = exc
                delay = min(max(delay * 2, 0.1), 10.0)

"""Resource subscriptions: ``notifications/resources/updated`` as runs, models and pipelines change.

A client subscribes to a resource URI (``chachaml://runs/{id}``, ``chachaml://models/{name}``,
``chachaml://models/{name}/{version}``, ``chachaml://pipelines/{id}``) in either era of the
protocol: ``resources/subscribe`` / ``resources/unsubscribe`` on a handshake-era connection
(stdio, or a streamable-HTTP session), or a ``subscriptions/listen`` stream naming the URIs
(2026-07-28, no session needed). Changes are read from the store's outbox through the
server's one :class:`~chachaml.tools.events.EventFeed`, so a run logged by another process
(a training job writing to the same SQLite file, or to PostgreSQL) notifies as well.

The outbox is read only while someone is subscribed: the first subscription notes the
outbox's head before it is acknowledged (nothing committed after the acknowledgement is
missed) and the last one leaving lets the feed go idle. Each connection has its own sender
with a set of pending URIs, so a client slow to read holds back only itself, and a burst of
metric batches for one run becomes one notification per read (the client re-reads anyway).
A connection's subscriptions end with it (its ``exit_stack``, the SDK's place for
per-connection cleanup).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.server import ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    EmptyResult,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
    UnsubscribeRequestParams,
)

from chachaml.errors import ChachamlError
from chachaml.records.events import Event, EventFilter
from chachaml.server.mcp.access import CALLER
from chachaml.store.protocol import Store
from chachaml.tools import pipelines as pipeline_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops
from chachaml.tools.events import EventFeed

log = logging.getLogger("chachaml")
WATCHED = EventFilter(types=("run.*", "model.*", "pipeline.*"))
MAX_PER_CONNECTION = 1000  # URIs one connection may watch at once
_PART = r"([^/?#\s]{1,500})"
_RUN = re.compile(rf"chachaml://runs/{_PART}")
_MODEL = re.compile(rf"chachaml://models/{_PART}")
_MODEL_VERSION = re.compile(rf"chachaml://models/{_PART}/{_PART}")
_PIPELINE = re.compile(rf"chachaml://pipelines/{_PART}")
URIS = (
    "chachaml://runs/{run_id}, chachaml://models/{name}, chachaml://models/{name}/{version}"
    " or chachaml://pipelines/{pipeline_id}"
)


def resource_uris(event: Event) -> set[str]:
    """The resource URIs an event changes (what their subscribers are told to read again)."""
    data = event.data
    if event.type.startswith("run.") and event.runid:
        return {f"chachaml://runs/{event.runid}"}
    if event.type.startswith("pipeline.") and "pipeline_id" in data:
        return {f"chachaml://pipelines/{data['pipeline_id']}"}
    if event.type.startswith("model.") and event.model:
        base = f"chachaml://models/{event.model}"
        # a version is read by number or by stage: each stage it entered or left changed too
        parts = [data.get(k) for k in ("version", "stage", "from_stage", "to_stage", "previous")]
        return {base} | {f"{base}/{p}" for p in parts if p is not None}
    return set()


async def check_resource(store: Store, uri: str) -> None:
    """Refuse (an MCP error) a URI that names no resource of this server, or nothing stored."""
    try:
        if found := _RUN.fullmatch(uri):
            await run_ops.get_run(store, found[1])
        elif found := _MODEL_VERSION.fullmatch(uri):
            name, version = found[1], found[2]
            number, stage = (int(version), None) if version.isdigit() else (None, version)
            await registry_ops.get_model_version(store, name, number, stage)
        elif found := _MODEL.fullmatch(uri):
            await registry_ops.get_model(store, found[1])
        elif found := _PIPELINE.fullmatch(uri):
            await pipeline_ops.get_pipeline(store, found[1])
        else:
            raise MCPError(INVALID_PARAMS, f"cannot subscribe to {uri[:200]!r}: use {URIS}")
    except ChachamlError as exc:
        raise MCPError(INVALID_PARAMS, f"cannot subscribe to {uri[:200]!r}: {exc}") from exc


def _check_caller() -> None:
    """Subscriptions are reads: the caller must be one the access layer let read."""
    who = CALLER.get()
    if who is None or not who.may("read"):
        raise MCPError(INVALID_PARAMS, "refused: subscribing needs read access")


@dataclass(eq=False)
class _Watch:
    """One connection's subscriptions and its sender."""

    session: ServerSession  # its standalone channel outlives the request that subscribed
    uris: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    wake: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def changed(self, uris: set[str]) -> None:
        if hit := uris & self.uris:
            self.pending |= hit
            self.wake.set()

    async def send(self) -> None:
        with self.scope:
            while True:
                await self.wake.wait()
                self.wake = anyio.Event()
                sending, self.pending = self.pending, set()
                for uri in sorted(sending):
                    if uri in self.uris:  # not unsubscribed meanwhile
                        try:
                            await self.session.send_resource_updated(uri)
                        except Exception as exc:  # (the SDK drops what it cannot send)
                            log.warning("chachaml: a resource update was not sent: %s", exc)


class ResourceSubscriptions:
    """Every resource subscription of one MCP server, fed from the store's outbox.

    :meth:`install` adds the subscribe, unsubscribe and listen handlers to a server;
    :meth:`run` (a task for the server's lifetime, beside ``feed.run``) reads the events
    and delivers them. Subscribing while it does not run is refused.
    """

    def __init__(self, store: Store, feed: EventFeed) -> None:
        self.store = store
        self.feed = feed
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        self._watches: dict[Connection, _Watch] = {}
        self._holds = 0
        self._start = 0  # read the outbox after this event when it starts being read
        self._reading = False
        self._starting = False  # a start is noted, the reader has not begun
        self._reader: anyio.CancelScope | None = None
        self._wanted = anyio.Event()
        self._tasks: TaskGroup | None = None

    def install(self, server: MCPServer) -> None:
        """Serve ``resources/subscribe``, ``resources/unsubscribe`` and ``subscriptions/listen``."""
        lowlevel = server._lowlevel_server
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        lowlevel.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe
        )
        lowlevel.add_request_handler(
            "subscriptions/listen", SubscriptionsListenRequestParams, self._listen_stream
        )

    @property
    def watched(self) -> int:
        """How many URIs are watched over ``resources/subscribe``, over every connection."""
        return sum(len(w.uris) for w in self._watches.values())

    async def run(self) -> None:
        """Deliver changes to subscribers until cancelled."""
        pause = 0.0
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            try:
                while True:
                    if not self._holds:
                        await self._wanted.wait()
                        self._wanted = anyio.Event()
                        continue
                    try:
                        await self._read()
                        pause = 0.0
                    except Exception as exc:  # the store is down: go on from where it was
                        pause = min(max(pause * 2, 0.1), 5.0)
                        log.warning("chachaml: reading events for subscriptions failed (%s)", exc)
                        await anyio.sleep(pause)
            finally:
                self._tasks = None
                for watch in self._watches.values():
                    watch.scope.cancel()

    async def _read(self) -> None:
        """Read the outbox from ``_start`` while anyone subscribes; note where it stopped."""
        self._reading, self._starting = True, False
        try:
            with anyio.CancelScope() as self._reader:
                async with self.feed.subscribe(WATCHED, self._start) as sub:
                    try:
                        while self._holds:
                            event = await sub.next()
                            uris = resource_uris(event)
                            for watch in list(self._watches.values()):
                                watch.changed(uris)
                            for uri in sorted(uris):
                                await self._bus.publish(ResourceUpdated(uri))
                    finally:
                        self._start = sub.last  # a reader started again goes on from here
        finally:
            self._reading, self._reader = False, None

    async def _hold(self) -> None:
        """One more subscription; the outbox is read from before this returns, at the latest."""
        if self._tasks is None:
            raise MCPError(INTERNAL_ERROR, "resource subscriptions are not running on this server")
        self._holds += 1
        if self._reading:
            return
        try:
            head = await self.feed.head()
        except BaseException:
            self._release()
            raise
        if not self._reading:  # (nor started meanwhile: it then started before this head)
            self._start = min(self._start, head) if self._starting else head
            self._starting = True
            self._wanted.set()

    def _release(self, count: int = 1) -> None:
        self._holds -= count
        if not self._holds and self._reader is not None:
            self._reader.cancel()  # nobody left: the feed may go idle

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        await self._hold()
        try:
            yield
        finally:
            self._release()

    async def _subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        _check_caller()
        uri = str(params.uri)
        await check_resource(self.store, uri)
        # the SDK gives handlers no public handle on their connection; its exit_stack is
        # where the SDK wants per-connection cleanup
        connection: Connection = ctx.session._connection
        if not connection.has_standalone_channel:  # a single stateless HTTP request
            raise MCPError(
                INVALID_PARAMS,
                "resources/subscribe needs a session to send updates on: send initialize first"
                " (over HTTP: keep its Mcp-Session-Id), or use subscriptions/listen",
            )
        watch = self._watches.get(connection)
        if watch is not None and uri in watch.uris:
            return EmptyResult()
        if watch is not None and len(watch.uris) >= MAX_PER_CONNECTION:
            raise MCPError(INVALID_PARAMS, f"at most {MAX_PER_CONNECTION} subscriptions at once")
        await self._hold()
        watch = self._watches.get(connection)  # (made by a request answered meanwhile?)
        if watch is not None and uri in watch.uris:
            self._release()
            return EmptyResult()
        if watch is None:
            assert self._tasks is not None  # checked by _hold
            watch = self._watches[connection] = _Watch(ctx.session)
            connection.exit_stack.callback(self._drop, connection)
            self._tasks.start_soon(watch.send)
        watch.uris.add(uri)
        return EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        watch = self._watches.get(ctx.session._connection)
        uri = str(params.uri)
        if watch is not None and uri in watch.uris:
            watch.uris.discard(uri)
            self._release()
        return EmptyResult()

    def _drop(self, connection: Connection) -> None:
        """The connection closed: its subscriptions end."""
        watch = self._watches.pop(connection, None)
        if watch is not None:
            self._release(len(watch.uris))
            watch.uris.clear()
            watch.scope.cancel()

    async def _listen_stream(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        _check_caller()
        for uri in params.notifications.resource_subscriptions or ():
            await check_resource(self.store, str(uri))
        async with self._held():
            return await self._listen(ctx, params)

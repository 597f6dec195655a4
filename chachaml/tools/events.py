"""Events: one shared reader of the store's outbox for every consumer of a server, and the sweep.

:class:`EventFeed` reads the outbox once for the whole process (not once per client) and
offers each event to every :class:`Subscription`, each with a bounded buffer. It reads when
woken (the store's ``listen_events``: this process's commits, PostgreSQL's NOTIFY) and, while
anyone listens, every ``event_poll_seconds`` too (another process writing to a SQLite file).

A subscription starts from an event id (a consumer's ``Last-Event-ID``) and is delivered
every event after it, in id order, exactly once: it first catches up from the store, then
takes events as the feed offers them. A consumer too slow for its buffer is not dropped and
does not grow the buffer: it falls back to catching up from the store from the last event it
took, then rejoins. So memory per consumer is bounded and nothing is skipped.

:func:`run_event_sweeper` is the server's periodic work: ``run.killed`` for runs whose
heartbeat went stale, and pruning events older than the retention.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import anyio

from chachaml.records.events import Event, EventFilter
from chachaml.store.protocol import Store
from chachaml.store.server_state import ServerStore, is_server_store

log = logging.getLogger("chachaml")

PAGE = 500  # events per read of the outbox
BUFFER = 1000  # events a subscription holds before it falls back to reading the store


class EventSource(Protocol):
    """Where a feed reads events: a database's outbox, or a server's, over HTTP.

    The outbox part of :class:`~chachaml.store.server_state.ServerStore`, whose docstring
    states the contract (ids in commit order, ``listen_events`` wakes, polling for the rest).
    """

    async def read_events(self, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` events with ids above ``after``, in id order."""
        ...

    async def last_event_id(self) -> int:
        """The newest event id kept (0: none)."""
        ...

    async def listen_events(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever events may have been committed; until cancelled."""
        ...

    @property
    def event_poll_seconds(self) -> float:
        """How often a reader polls for what ``listen_events`` does not hear."""
        ...


def event_source(store: Store) -> EventSource | None:
    """A store's events: a database's own outbox, or a remote store's server's (``outbox``)."""
    if is_server_store(store):
        return store
    outbox: EventSource | None = getattr(store, "outbox", None)
    return outbox


class Subscription:
    """One consumer's view of the feed: the events after ``after`` that pass ``filter``."""

    def __init__(self, feed: EventFeed, filter: EventFilter, after: int, buffer: int) -> None:
        self.filter = filter
        self._beat_due = False  # a heartbeat interval passed (see ``next_or_beat``)
        self.last = after  # the id of the last event taken (or skipped by the filter)
        self._feed = feed
        self._buffer: deque[Event] = deque()
        self._capacity = buffer
        self._overflowed = True  # starts by catching up from the store
        self._ready = anyio.Event()
        self._pending: deque[Event] = deque()  # read from the store, not yet taken
        self._scanned = after  # the store was read up to here while catching up

    def offer(self, event: Event) -> None:
        """Called by the feed for each event it reads, in id order."""
        if self._overflowed or not self.filter.matches(event):
            return
        if len(self._buffer) >= self._capacity:
            self._buffer.clear()  # too slow: read the rest from the store instead
            self._overflowed = True
        else:
            self._buffer.append(event)
        self._ready.set()

    async def next(self) -> Event:
        """The next event for this consumer (waits for one)."""
        event = await self._take(beats=False)
        assert event is not None
        return event

    async def next_or_beat(self) -> Event | None:
        """The next event, or ``None`` once per heartbeat interval (``subscribe(beat=...)``).

        The interval is one timer per subscription, not a timeout around each wait: a
        cancel scope per event and client was most of a server's cost of fanning an event
        out to a thousand streams. Raises :class:`anyio.EndOfStream` once the feed is closed
        (the server is stopping): the stream ends and its client resumes elsewhere.
        """
        return await self._take(beats=True)

    def beat(self) -> None:
        """A heartbeat interval passed: ``next_or_beat`` returns ``None`` next."""
        self._beat_due = True
        self._ready.set()

    async def _take(self, beats: bool) -> Event | None:
        while True:
            if beats and self._feed.closed:
                raise anyio.EndOfStream
            if beats and self._beat_due:
                self._beat_due = False
                return None
            while self._pending:
                event = self._pending.popleft()
                if event.seq > self.last:
                    self.last = event.seq
                    return event
            if self._overflowed:
                await self._catch_up()
                continue
            while self._buffer:
                event = self._buffer.popleft()
                if event.seq > self.last:
                    self.last = event.seq
                    return event
            if beats and self._beat_due:
                continue
            self._ready = anyio.Event()
            await self._ready.wait()

    async def _catch_up(self) -> None:
        """Read a page after what was read so far; rejoin the feed once at the store's head."""
        self._overflowed = False  # what the feed offers from now on is buffered
        self._buffer.clear()
        self._scanned = max(self._scanned, self.last)
        events = await self._feed.store.read_events(self._scanned, PAGE)
        self._pending.extend(e for e in events if self.filter.matches(e))
        if events:
            self._scanned = events[-1].seq
        if len(events) == PAGE:  # more to read: keep reading from the store
            self._overflowed = True


@dataclass(eq=False)
class _Wake:
    loop: asyncio.AbstractEventLoop
    event: anyio.Event


class EventFeed:
    """The one reader of a store's outbox in this process, fanning events out to subscribers."""

    def __init__(self, store: EventSource, *, buffer: int = BUFFER) -> None:
        self.store = store
        self._buffer = buffer
        self._subscribers: set[Subscription] = set()
        self._cursor: int | None = None
        self._wake: _Wake | None = None
        self.closed = False

    def _woken(self) -> None:
        """Any thread: events may have been committed."""
        wake = self._wake
        if wake is not None:
            wake.loop.call_soon_threadsafe(wake.event.set)

    def close(self) -> None:
        """End every stream (``next_or_beat``), open or to come: the server is stopping.

        An open stream would otherwise hold the server's graceful shutdown for as long as its
        client stays (a browser tab on a live page: for ever). Call from the feed's loop.
        """
        self.closed = True
        for sub in list(self._subscribers):
            sub.beat()  # wakes a waiting stream, which then sees the feed closed

    async def head(self) -> int:
        """The newest event id of the store (where a consumer without a past starts)."""
        return await self.store.last_event_id()

    @asynccontextmanager
    async def subscribe(
        self, filter: EventFilter, after: int | None = None, *, beat: float | None = None
    ) -> AsyncIterator[Subscription]:
        """A subscription to the events after ``after`` (default: from now) passing ``filter``.

        With ``beat``, its ``next_or_beat`` also returns ``None`` every ``beat`` seconds.
        """
        start = await self.head() if after is None else after
        if self._cursor is None:
            # from here on the feed offers every event after the cursor; the subscription's
            # catch-up (reads from the store, later) covers everything up to it
            head = await self.head()
            if self._cursor is None:  # (not set by another subscription meanwhile)
                self._cursor = head
        sub = Subscription(self, filter, start, self._buffer)
        timer: asyncio.TimerHandle | None = None
        if beat is not None:
            loop = asyncio.get_running_loop()

            def tick() -> None:
                nonlocal timer
                sub.beat()
                timer = loop.call_later(beat, tick)

            timer = loop.call_later(beat, tick)
        self._subscribers.add(sub)
        self._woken()  # a feed waiting without subscribers polls from now on
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)
            if timer is not None:
                timer.cancel()

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    async def run(self) -> None:
        """Read the outbox and offer each event to every subscriber; until cancelled."""
        self._wake = _Wake(asyncio.get_running_loop(), anyio.Event())
        self._wake.event.set()  # a first read at once, for whoever subscribed already
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.store.listen_events, self._woken)
            try:
                await self._read_forever()
            finally:
                tasks.cancel_scope.cancel()

    async def _read_forever(self) -> None:
        assert self._wake is not None
        pause = 0.0
        while True:
            if self._subscribers:
                with anyio.move_on_after(self.store.event_poll_seconds):
                    await self._wake.event.wait()
            else:
                await self._wake.event.wait()
            self._wake.event = anyio.Event()
            try:
                await self._read()
                pause = 0.0
            except Exception as exc:  # the store is down: subscribers wait, we retry
                pause = min(max(pause * 2, 0.1), 5.0)
                log.warning("chachaml: reading events failed (%s); retrying in %.1f s", exc, pause)
                await anyio.sleep(pause)
                self._wake.event.set()

    async def _read(self) -> None:
        """Offer every event after the cursor (no subscriber: forget the cursor, read nothing).

        The cursor moves only by offering events while anyone is subscribed, so nobody misses
        one; with nobody subscribed the next subscription starts it at the head, so an idle
        feed woken by each commit costs no query (nor, over a remote store, a request).
        """
        if not self._subscribers:
            self._cursor = None
            return
        assert self._cursor is not None  # set by the first subscription
        while True:
            events = await self.store.read_events(self._cursor, PAGE)
            for event in events:
                for sub in list(self._subscribers):
                    sub.offer(event)
            if events:
                self._cursor = events[-1].seq
            if len(events) < PAGE:
                return


async def run_event_sweeper(
    store: ServerStore, *, retention: float, every: float = 5.0, prune_every: float = 60.0
) -> None:
    """Send ``run.killed`` for stale heartbeats every ``every`` s, prune old events; forever."""
    pruned_at = 0.0
    while True:
        now = time.time()
        try:
            await store.sweep_killed(now)
            if now - pruned_at >= prune_every:
                await store.prune_events(now - retention)
                pruned_at = now
        except Exception as exc:  # the store is down: try again next time
            log.warning("chachaml: the events sweep failed: %s", exc)
        await anyio.sleep(every)

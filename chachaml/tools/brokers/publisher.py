"""Publishing the outbox to brokers: in id order, at least once, one replica per broker.

A :class:`BrokerPublisher` owns one broker's cursor while it holds the broker's lease in the
store (``claim_sink``): it reads a page of events after the cursor, sends it, and moves the
cursor past it only once the broker has taken the whole page (``advance_sink``, which also
renews the lease). So a crash or a broker outage between the two sends the page again, never
skips it: at least once, in order, de-duplicated by event id downstream. Any failure (broker
down, store down, a timeout) drops the connection and retries with a backoff that doubles
up to :data:`MAX_BACKOFF`; once the broker answers again the backlog goes out from the cursor.

Several replicas on one database run a publisher each for the same broker; the lease makes
one of them publish and the others stand by, taking over once its lease runs out (it died)
or is released (it stopped). A publisher that stalled past its lease finds out at its next
``advance_sink`` and stands by without moving the cursor.

:func:`run_brokers` runs publishers for every broker as a task of ``chachaml serve``, woken
by the store's ``listen_events``; :func:`publish_pending` sends what is pending once, for
``chachaml events publish --once``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence

import anyio

from chachaml.store.server_state import ServerStore
from chachaml.tools.brokers import Broker

log = logging.getLogger("chachaml")

PAGE = 500  # events per page read and sent
LEASE = 30.0  # seconds a publisher holds a broker without renewing
TIMEOUT = 10.0  # seconds allowed to connect, and to send a page
MAX_BACKOFF = 5.0  # the longest pause between two attempts


def default_owner() -> str:
    """Who a publisher is in the store: host, process and a random part (unique per run)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class BrokerPublisher:
    """Sends one broker the outbox from its cursor, while holding its lease."""

    def __init__(
        self,
        store: ServerStore,
        broker: Broker,
        owner: str,
        *,
        page: int = PAGE,
        lease: float = LEASE,
        timeout: float = TIMEOUT,
    ) -> None:
        self.store = store
        self.broker = broker
        self.owner = owner
        self.published = 0  # events this publisher sent and recorded (for reports and tests)
        self.failures = 0  # attempts that failed (broker or store unreachable)
        self._page = page
        self._lease = lease
        self._timeout = timeout
        self._cursor: int | None = None  # known while the lease is held
        self._held_until = 0.0
        self._connected = False
        self._wake: tuple[asyncio.AbstractEventLoop, anyio.Event] | None = None

    async def step(self) -> int | None:
        """Send one page: how many events went out (0: none pending), ``None`` without the lease.

        Raises whatever the store or the broker raised; the cursor then stays where it was.
        """
        now = time.time()
        if self._cursor is None or now > self._held_until - self._lease / 2:
            self._cursor = await self.store.claim_sink(
                self.broker.name, self.owner, now, now + self._lease
            )
            if self._cursor is None:
                return None
            self._held_until = now + self._lease
        events = await self.store.read_events(self._cursor, self._page)
        if not events:
            return 0
        with anyio.fail_after(self._timeout):
            if not self._connected:
                await self.broker.connect()
                self._connected = True
                log.info("chachaml: publishing events to %s", self.broker.name)
            await self.broker.publish(events)
        now = time.time()
        last = events[-1].seq
        if not await self.store.advance_sink(
            self.broker.name, self.owner, last, now, now + self._lease
        ):
            log.warning("chachaml: the lease of %s was taken over; standing by", self.broker.name)
            self._cursor = None
            return None
        self._cursor, self._held_until = last, now + self._lease
        self.published += len(events)
        return len(events)

    def wake(self) -> None:
        """Any thread: events may have been committed."""
        if self._wake is not None:
            loop, event = self._wake
            loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        """Publish until cancelled: pages back to back, then wait for news or the next poll."""
        self._wake = (asyncio.get_running_loop(), anyio.Event())
        pause = 0.0
        try:
            while True:
                try:
                    sent = await self.step()
                    pause = 0.0
                except Exception as exc:  # broker or store unreachable: retry, lose nothing
                    self.failures += 1
                    pause = min(max(pause * 2, 0.1), MAX_BACKOFF)
                    log.warning(
                        "chachaml: publishing events to %s failed (%s: %s); retrying in %.1f s",
                        self.broker.name, type(exc).__name__, exc, pause,
                    )  # fmt: skip
                    await self._disconnect()
                    await anyio.sleep(pause)
                    continue
                if sent == self._page:
                    continue  # more pending
                if sent is None:  # another replica publishes: look again as its lease may end
                    await anyio.sleep(min(self._lease / 4, 5.0))
                    continue
                with anyio.move_on_after(self.store.event_poll_seconds):
                    await self._wake[1].wait()
                self._wake = (self._wake[0], anyio.Event())
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await self._disconnect()
                if self._cursor is not None:  # hand over at once rather than after the lease
                    await self.store.release_sink(self.broker.name, self.owner)

    async def _disconnect(self) -> None:
        self._connected = False
        with anyio.move_on_after(2):
            await self.broker.close()


async def run_brokers(
    store: ServerStore,
    brokers: Sequence[Broker],
    *,
    owner: str | None = None,
    started: Callable[[list[BrokerPublisher]], None] | None = None,
) -> None:
    """Publish to every broker until cancelled (a task of ``chachaml serve``).

    ``started`` is handed the publishers (for reports and tests).
    """
    if not brokers:
        return
    who = owner or default_owner()
    publishers = [BrokerPublisher(store, b, who) for b in brokers]
    if started is not None:
        started(publishers)

    def woken() -> None:
        for p in publishers:
            p.wake()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.listen_events, woken)
        for p in publishers:
            tasks.start_soon(p.run)


async def publish_pending(
    store: ServerStore, brokers: Sequence[Broker], *, owner: str | None = None
) -> dict[str, int]:
    """Send each broker every event pending now, once; how many went to each.

    Raises the first failure (the cursors keep what was sent before it). A broker another
    publisher holds is left to it (0 sent).
    """
    who = owner or default_owner()
    sent: dict[str, int] = {}
    for broker in brokers:
        publisher = BrokerPublisher(store, broker, who)
        try:
            while await publisher.step() == PAGE:
                pass
        finally:
            await broker.close()
            try:  # (not held: changes nothing)
                await store.release_sink(broker.name, who)
            except Exception as exc:  # the store is down: the lease ends by itself
                log.warning("chachaml: releasing %s failed: %s", broker.name, exc)
        sent[broker.name] = publisher.published
    return sent


__all__ = ["BrokerPublisher", "default_owner", "publish_pending", "run_brokers"]

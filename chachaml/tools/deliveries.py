"""The webhook delivery worker: sends what alerts and subscriptions queue (``webhook_deliveries``).

Firing an alert only queues its webhook (in the transaction that records the event), so an
ingest request or a run's end never waits on a webhook. The queue is drained by:

- :func:`run_delivery_worker`, a background task of the server (``chachaml serve``, and
  ``chachaml mcp``): it claims due rows, POSTs them and records each try, sleeping between
  passes; several replicas over one PostgreSQL database never send a row twice;
- :func:`drain_deliveries` (``chachaml alerts deliver``), for setups without a server: it
  delivers what is due, waits out the retries' backoff, and returns.

Subscriptions to the event stream (:mod:`chachaml.tools.subscriptions`) are the other kind
of subscriber of this queue: each pass first queues the outbox's new events for them
(``queue_subscribed_events``), then sends whatever is due of either kind, alike.

The training process (the tracking client) never sends: it only queues. A failed try with no
answer, HTTP 429 or 5xx is retried after ``backoff``, doubling, up to ``attempts`` tries;
the schedule lives in the table, so retries survive restarts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import anyio

from chachaml.records.alerts import DeliveryAttempt, DeliveryStatus, PendingDelivery, TriedDelivery
from chachaml.store.server_state import ServerStore
from chachaml.tls import client_context
from chachaml.tools.webhooks import Delivery, retryable, send

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("chachaml")

CLAIM_BATCH = 20  # rows one pass claims and sends concurrently
FOLLOW = 9  # rows claimed after a subscription's head, sent after it one by one
QUEUE_PAGE = 500  # outbox events one step queues for the subscriptions
QUEUE_PAGES = 10  # steps one pass takes at most (the rest waits for the next pass)
LEASE_MARGIN = 30.0  # seconds a claim outlives the send's timeout before others may retry it
POLL_SECONDS = 1.0
MAX_ERROR_PAUSE = 30.0  # the longest pause after the store failed a pass


@dataclass(frozen=True)
class DrainReport:
    """What one drain did: deliveries completed and failed, and those still pending."""

    delivered: int
    failed: int
    pending: int


@dataclass(eq=False)  # hashed by identity
class _Waker:
    loop: asyncio.AbstractEventLoop
    event: anyio.Event


_wakers: set[_Waker] = set()


def wake() -> None:
    """Tell this process's workers that something was queued (they poll anyway); any thread."""
    for waker in list(_wakers):
        waker.loop.call_soon_threadsafe(waker.event.set)


def _outcome(
    attempt: DeliveryAttempt, item: PendingDelivery, delivery: Delivery
) -> tuple[DeliveryStatus, float | None]:
    """What a try leaves the row as: delivered, failed for good, or pending until a retry."""
    if attempt.error is None:
        return "delivered", None
    if retryable(attempt) and item.attempt < delivery.attempts:
        return "pending", time.time() + delivery.retry_delay(item.attempt)
    return "failed", None


async def _deliver(
    store: ServerStore, http: httpx.AsyncClient, item: PendingDelivery, delivery: Delivery
) -> str:
    """Send an alert's row and record the try on its event."""
    attempt = await send(http, item, delivery)
    status, retry_at = _outcome(attempt, item, delivery)
    if item.event_id is not None:
        await store.record_delivery(item.event_id, attempt, status, retry_at)
    return status


async def _deliver_in_order(
    store: ServerStore, http: httpx.AsyncClient, rows: list[PendingDelivery], delivery: Delivery
) -> list[str]:
    """Send one subscription's claimed rows one after another, then record them at once.

    A row to retry holds the rest back (handed back unsent): events go out in order.
    """
    tried: list[TriedDelivery] = []
    for item in rows:
        attempt = await send(http, item, delivery)
        status, retry_at = _outcome(attempt, item, delivery)
        tried.append(TriedDelivery(item.id, attempt, status, retry_at))
        if status == "pending":
            break
    unsent = [item.id for item in rows[len(tried) :]]
    await store.record_subscription_deliveries(tried, unsent, time.time())
    return [t.status for t in tried]


def http_client(delivery: Delivery) -> httpx.AsyncClient:
    """The HTTP client a pass of deliveries shares, verifying with the process's TLS context."""
    import httpx  # only processes that deliver pay for importing httpx

    return httpx.AsyncClient(
        timeout=delivery.timeout, follow_redirects=False, verify=client_context()
    )


async def deliver_due(
    store: ServerStore,
    delivery: Delivery,
    *,
    http: httpx.AsyncClient | None = None,
    limit: int = CLAIM_BATCH,
) -> list[str]:
    """Claim the deliveries due now (up to ``limit``), send them concurrently, record each.

    The outbox's new events are queued for the subscriptions first. Reads decide whether
    anything is due before a claim is written, so a pass with nothing to do writes nothing.
    Returns the status each ended with (``delivered``, ``failed``, or ``pending`` to retry).
    """
    for _ in range(QUEUE_PAGES):
        if await store.queue_subscribed_events(QUEUE_PAGE) < QUEUE_PAGE:
            break
    now = time.time()
    _, due = await store.pending_deliveries()
    if due is None or due > now:
        return []
    # the lease covers a subscription's head and the rows after it, sent one by one
    lease = now + delivery.timeout * (1 + FOLLOW) + LEASE_MARGIN
    claimed = await store.claim_deliveries(now, lease, limit, FOLLOW)
    if not claimed:
        return []
    if http is None:
        async with http_client(delivery) as own:
            return await _send_all(store, own, claimed, delivery)
    return await _send_all(store, http, claimed, delivery)


async def _send_all(
    store: ServerStore, http: httpx.AsyncClient, claimed: list[PendingDelivery], delivery: Delivery
) -> list[str]:
    statuses: list[str] = []
    streams: dict[int, list[PendingDelivery]] = {}
    for item in claimed:  # in id order: each subscription's rows in event order
        if item.subscription is not None:
            streams.setdefault(item.subscription, []).append(item)

    async def one(item: PendingDelivery) -> None:
        statuses.append(await _deliver(store, http, item, delivery))

    async def stream(rows: list[PendingDelivery]) -> None:
        statuses.extend(await _deliver_in_order(store, http, rows, delivery))

    async with anyio.create_task_group() as tg:
        for item in claimed:
            if item.subscription is None:
                tg.start_soon(one, item)
        for rows in streams.values():
            tg.start_soon(stream, rows)
    return statuses


def retry_budget(delivery: Delivery) -> float:
    """The longest one delivery takes: every try's timeout and every pause between them."""
    pauses = sum(delivery.retry_delay(n) for n in range(1, delivery.attempts))
    return delivery.attempts * delivery.timeout + pauses + 1.0


async def drain_deliveries(
    store: ServerStore, delivery: Delivery, *, wait: float | None = None
) -> DrainReport:
    """Deliver everything due, and the retries that come due within ``wait`` seconds.

    ``wait`` defaults to one delivery's full retry budget. Rows leased by a worker elsewhere
    are left to it. Returns the counts.
    """
    deadline = time.time() + (retry_budget(delivery) if wait is None else wait)
    delivered = failed = 0
    async with http_client(delivery) as http:
        while True:
            for status in await deliver_due(store, delivery, http=http):
                delivered += status == "delivered"
                failed += status == "failed"
            pending, due = await store.pending_deliveries()
            if due is None:
                return DrainReport(delivered, failed, pending)
            now = time.time()
            if due > now:
                if due > deadline:
                    return DrainReport(delivered, failed, pending)
                await anyio.sleep(due - now)


async def _pause(seconds: float, waker: _Waker, stop: anyio.Event | None) -> None:
    """Sleep ``seconds``, or less when woken or stopped."""
    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as tg:

            async def until(event: anyio.Event) -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(until, waker.event)
            if stop is not None:
                tg.start_soon(until, stop)
    if waker.event.is_set():
        waker.event = anyio.Event()


async def run_delivery_worker(
    store: ServerStore,
    delivery: Delivery,
    *,
    stop: anyio.Event | None = None,
    poll: float = POLL_SECONDS,
) -> None:
    """Deliver queued webhooks until ``stop`` is set (or the task is cancelled).

    Each pass sends what is due, then sleeps until the next row is due, at most ``poll``
    seconds (less when this process queues something: see :func:`wake`). Store failures are
    logged and the worker backs off; it never raises for a webhook's sake.
    """
    waker = _Waker(asyncio.get_running_loop(), anyio.Event())
    _wakers.add(waker)
    try:
        async with http_client(delivery) as http, anyio.create_task_group() as tasks:
            # committed events may be due to a subscription: heard at once, not at the poll
            tasks.start_soon(_listen, store, waker)
            await anyio.sleep(0)  # listening before the first pass: no commit falls between
            await _work(store, delivery, http, waker, stop, poll)
            tasks.cancel_scope.cancel()
    finally:
        _wakers.discard(waker)


def _wake_one(waker: _Waker) -> None:
    waker.loop.call_soon_threadsafe(waker.event.set)


async def _listen(store: ServerStore, waker: _Waker) -> None:
    """Wake the worker at each commit of events; a lost listener is retried (polls go on)."""
    errors = 0
    while True:
        try:
            await store.listen_events(partial(_wake_one, waker))
        except Exception as exc:
            errors += 1
            log.warning("chachaml: the webhook worker stopped hearing of events: %s", exc)
            await anyio.sleep(min(MAX_ERROR_PAUSE, 2.0**errors))


async def _work(
    store: ServerStore,
    delivery: Delivery,
    http: httpx.AsyncClient,
    waker: _Waker,
    stop: anyio.Event | None,
    poll: float,
) -> None:
    """Passes until ``stop``: send what is due, sleep until the next is due or news comes."""
    errors = 0
    while stop is None or not stop.is_set():
        pause = poll
        try:
            while await deliver_due(store, delivery, http=http):
                if stop is not None and stop.is_set():
                    return
            _, due = await store.pending_deliveries()
            if due is not None:
                pause = min(poll, max(0.0, due - time.time()))
            errors = 0
        except Exception as exc:
            errors += 1
            pause = min(MAX_ERROR_PAUSE, poll * 2**errors)
            log.warning("chachaml: delivering webhooks failed: %s", exc)
        await _pause(pause, waker, stop)

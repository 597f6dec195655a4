"""Watching and steering a run: ask it to stop, and wait until it ends or a metric condition holds.

:func:`stop_run` records a stop request (who, why, when) with its ``run.stop_requested`` event;
the run's process hears of it in the reply to its next heartbeat. :func:`wait_for_run` returns
when the run ends, when a condition on its latest metric values holds (``"val_loss < 0.2"``,
read by the run filter language, metric conditions only), or after a bounded timeout. It is
woken by the store's events (one :class:`~chachaml.tools.events.EventFeed`), never by polling
the run, and reports the latest values at each metrics event through ``progress``.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

import anyio
from pydantic import BaseModel, Field

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.events import EventFilter
from chachaml.records.runs import MetricCondition, RunStatus, StopRequest
from chachaml.store.protocol import Store
from chachaml.tools.events import EventFeed, event_source
from chachaml.tools.run_filter import parse_filter

MAX_WAIT = 3600.0  # seconds a wait may last (an agent asks again for longer)
MAX_REASON = 2000
WATCHED = ("run.metrics", "run.ended", "run.killed")
Progress = Callable[[dict[str, float | None], float], Awaitable[None]]

_CHECKS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
}


class WaitResult(BaseModel):
    """How a wait ended: the run ended, the condition held, or the timeout passed."""

    run_id: str
    outcome: Literal["ended", "condition", "timeout"]
    status: RunStatus = Field(description="the run's status when the wait returned")
    metrics: dict[str, float | None] = Field(description="each metric's latest value")
    waited_seconds: float
    until: str | None = None


async def stop_run(
    store: Store, run_id: str, reason: str | None = None, user: str | None = None
) -> StopRequest:
    """Ask a running run to stop, as ``user``, because ``reason``; returns the request stored.

    The run's process sees it within one heartbeat (``should_stop()`` turns true, its
    ``on_stop`` callback runs) and a run that then ends as completed ends ``stopped``; its
    running children (a pipeline's steps) are asked too. Asking again returns the first
    request. ``NotFound`` for an unknown run, ``Conflict`` for one that ended or reads killed.
    """
    rid = v.run_id(run_id)
    if reason is not None:
        reason = v.storable(reason.strip())[:MAX_REASON] or None
    return await store.request_stop(rid, user, reason, time.time())


def parse_until(until: str | None) -> list[MetricCondition]:
    """The metric conditions of ``until`` (``"val_loss < 0.2 and accuracy >= 0.9"``)."""
    found = parse_filter(until)
    others = [name for name, value in (
        ("params", found.params), ("tags", found.tags), ("status", found.status),
        ("user", found.created_by), ("experiment", found.experiment or found.experiment_contains),
        ("name", found.name_contains), ("started", found.since or found.until),
    ) if value]  # fmt: skip
    if others:
        raise InvalidInput(
            f"until takes metric conditions only (such as val_loss < 0.2), not {', '.join(others)}"
        )
    return found.metric_conditions


def holds(conditions: list[MetricCondition], metrics: dict[str, float | None]) -> bool:
    """Whether every condition holds on these latest values (a missing or NaN one does not)."""
    if not conditions:
        return False
    for c in conditions:
        value = metrics.get(c.key)
        if value is None or math.isnan(value) or not _CHECKS[c.op](value, c.value):
            return False
    return True


@asynccontextmanager
async def _feed_of(store: Store, feed: EventFeed | None) -> AsyncIterator[EventFeed]:
    """The server's shared feed, or one of this wait's own, read while the wait lasts."""
    if feed is not None:
        yield feed
        return
    source = event_source(store)
    if source is None:
        raise InvalidInput("wait_for_run reads the store's events, which this store does not offer")
    own = EventFeed(source)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(own.run)
            try:
                yield own
            finally:
                tasks.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the wait's own error (NotFound...), not a group
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def wait_for_run(
    store: Store,
    run_id: str,
    until: str | None = None,
    timeout: float = 60.0,
    *,
    feed: EventFeed | None = None,
    progress: Progress | None = None,
) -> WaitResult:
    """Wait until the run ends, ``until``'s metric conditions hold, or ``timeout`` seconds pass.

    Subscribes to the run's events before reading its state, so nothing logged in between is
    missed; ``progress(latest values, seconds waited)`` is awaited after each metrics event
    that does not end the wait.
    """
    rid = v.run_id(run_id)
    conditions = parse_until(until)
    if not 0 <= timeout <= MAX_WAIT or math.isnan(timeout):
        raise InvalidInput(f"timeout must be between 0 and {MAX_WAIT:g} seconds, got {timeout!r}")
    began = time.monotonic()

    def result(outcome: str, status: str) -> WaitResult:
        return WaitResult(
            run_id=rid, outcome=outcome, status=status, metrics=metrics,  # type: ignore[arg-type]
            waited_seconds=round(time.monotonic() - began, 3), until=until,
        )  # fmt: skip

    async with (
        _feed_of(store, feed) as events,
        events.subscribe(EventFilter(types=WATCHED, run_id=rid)) as sub,
    ):
        run = await store.get_run(rid)  # NotFound for an unknown run
        metrics: dict[str, float | None] = dict(run.metrics)
        if run.status != "running":
            return result("ended", run.status)
        if holds(conditions, metrics):
            return result("condition", run.status)
        with anyio.move_on_after(timeout):
            while True:
                event = await sub.next()
                if event.type == "run.ended":
                    metrics.update(event.data.get("metrics", {}))
                    return result("ended", event.data["status"])
                if event.type == "run.killed":
                    return result("ended", "killed")
                for key, point in event.data.get("metrics", {}).items():
                    metrics[key] = point.get("value")
                if holds(conditions, metrics):
                    return result("condition", "running")
                if progress is not None:
                    await progress(dict(metrics), time.monotonic() - began)
        run = await store.get_run(rid)  # once: it may read killed by now
        return result("timeout" if run.status == "running" else "ended", run.status)

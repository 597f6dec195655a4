"""The shared outbox reader: catch-up, live delivery, a slow consumer, closing, the sweep."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from chachaml.records.events import Event, EventFilter
from chachaml.records.runs import NewRun
from chachaml.store import ServerStore, open_store
from chachaml.tools.events import EventFeed, Subscription, run_event_sweeper
from tests.support.waiting import await_for

pytestmark = pytest.mark.anyio


def new_run(run_id: str, *, started_at: float | None = None, timeout: float = 60.0) -> NewRun:
    return NewRun(id=run_id, experiment="exp", name=None, created_by="alice",
                  started_at=time.time() if started_at is None else started_at,
                  heartbeat_timeout=timeout)  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'feed.db'}")
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_consumer_too_slow_for_its_buffer_still_gets_every_event_in_order(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("r1"))
    feed = EventFeed(store, buffer=2)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed.run)
        async with feed.subscribe(EventFilter(types=("run.tagged",))) as sub:
            for n in range(25):  # far more than the buffer holds, none taken meanwhile
                await store.set_tags("r1", {"n": str(n)})
            with anyio.fail_after(10):
                got = [(await sub.next()).data["tags"]["n"] for _ in range(25)]
            await store.set_note("r1", "not a tag")
            await store.set_tags("r1", {"n": "live"})
            with anyio.fail_after(10):
                live = await sub.next()
        tasks.cancel_scope.cancel()
    assert got == [str(n) for n in range(25)]
    assert live.data["tags"] == {"n": "live"}


async def test_a_beat_interleaves_with_the_events_and_never_replaces_one(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("r1"))
    feed = EventFeed(store)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed.run)
        async with (
            feed.subscribe(EventFilter(types=("run.tagged",)), beat=0.01) as beating,
            feed.subscribe(EventFilter(types=("run.tagged",))) as plain,
        ):
            with anyio.fail_after(10):
                assert await beating.next_or_beat() is None  # a quiet interval
                for n in range(3):
                    await store.set_tags("r1", {"n": str(n)})
                await anyio.sleep(0.05)  # several intervals pass while the events wait
                got: list[Event | None] = []
                while sum(e is not None for e in got) < 3:
                    got.append(await beating.next_or_beat())
                plain_got = [(await plain.next()).data["tags"]["n"] for _ in range(3)]
        tasks.cancel_scope.cancel()
    assert got[0] is None  # the beat that was due comes first
    assert [e.data["tags"]["n"] for e in got if e is not None] == ["0", "1", "2"]
    assert plain_got == ["0", "1", "2"]


async def test_a_subscription_from_an_old_id_reads_the_past_then_follows(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("r1"))
    feed = EventFeed(store)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed.run)
        async with feed.subscribe(EventFilter(), after=0) as sub:
            with anyio.fail_after(10):
                past = [(await sub.next()).type for _ in range(2)]
                await store.end_run("r1", "completed", None, time.time())
                now = await sub.next()
        tasks.cancel_scope.cancel()
    assert past == ["experiment.created", "run.started"]
    assert now.type == "run.ended" and sub.last == now.seq


async def test_closing_the_feed_ends_waiting_and_new_streams(store: ServerStore) -> None:
    feed = EventFeed(store)
    ended = anyio.Event()

    async def wait(sub: Subscription) -> None:
        with pytest.raises(anyio.EndOfStream):
            await sub.next_or_beat()
        ended.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed.run)
        async with feed.subscribe(EventFilter()) as sub:
            tasks.start_soon(wait, sub)
            await anyio.wait_all_tasks_blocked()
            feed.close()  # the server is stopping: the waiting stream ends at once
            with anyio.fail_after(5):
                await ended.wait()
        async with feed.subscribe(EventFilter()) as late:
            with pytest.raises(anyio.EndOfStream):
                await late.next_or_beat()
        tasks.cancel_scope.cancel()


async def test_the_sweep_reports_a_stale_run_once_and_prunes_old_events(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("dead", started_at=time.time() - 100, timeout=1.0))
    first = await store.last_event_id()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: run_event_sweeper(store, retention=30.0, every=0.01))

        async def swept() -> bool:
            types = [e.type for e in await store.read_events(0, 100)]
            # the run's start (dated 100 s ago) pruned; its experiment (just now) kept
            return types == ["experiment.created", "run.killed"]

        await await_for(swept, why="the sweep sent run.killed and pruned run.started")
        tasks.cancel_scope.cancel()
    _, killed = await store.read_events(0, 100)
    assert killed.runid == "dead" and killed.seq > first

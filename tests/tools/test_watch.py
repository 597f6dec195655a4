"""Waiting for a run and asking one to stop, over a SQLite store and its event feed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from chachaml.errors import InvalidInput, NotFound
from chachaml.records.runs import NewRun
from chachaml.store import ServerStore, open_store
from chachaml.store.codec import make_chunk
from chachaml.tools.events import EventFeed
from chachaml.tools.watch import parse_until, stop_run, wait_for_run

pytestmark = pytest.mark.anyio


def new_run(run_id: str) -> NewRun:
    return NewRun(id=run_id, experiment="exp", name=None, created_by="alice",
                  started_at=time.time(), heartbeat_timeout=60.0)  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'watch.db'}")
    try:
        yield opened
    finally:
        await opened.close()


async def log(store: ServerStore, run_id: str, step: int, **values: float) -> None:
    now = time.time()
    await store.log_metrics([make_chunk(run_id, k, [(step, v, now)]) for k, v in values.items()])


async def test_a_wait_returns_once_the_condition_holds_and_reports_progress_before(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("r1"))
    await log(store, "r1", 0, val_loss=0.9)
    seen: list[dict[str, float | None]] = []
    progressed = anyio.Event()

    async def progress(metrics: dict[str, float | None], waited: float) -> None:
        seen.append(metrics)
        progressed.set()

    feed = EventFeed(store)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed.run)

        async def train() -> None:
            await log(store, "r1", 1, val_loss=0.5, acc=0.7)
            await progressed.wait()  # the waiter saw the first batch before the next
            await log(store, "r1", 2, val_loss=0.15)

        async def waiter() -> None:
            found = await wait_for_run(store, "r1", "val_loss < 0.2 and acc > 0.6", 20,
                                       feed=feed, progress=progress)  # fmt: skip
            assert (found.outcome, found.status) == ("condition", "running")
            assert found.metrics == {"val_loss": 0.15, "acc": 0.7}
            assert found.waited_seconds < 10
            tasks.cancel_scope.cancel()

        tasks.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(train)
    assert seen[0] == {"val_loss": 0.5, "acc": 0.7}


async def test_a_wait_returns_at_the_end_at_once_when_already_so_or_after_the_timeout(
    store: ServerStore,
) -> None:
    await store.create_run(new_run("r1"))
    await log(store, "r1", 0, loss=0.1)
    held = await wait_for_run(store, "r1", "loss <= 0.1", 5)  # a feed of its own
    assert held.outcome == "condition"
    timed_out = await wait_for_run(store, "r1", "loss < 0.01", 0.2)
    assert (timed_out.outcome, timed_out.status, timed_out.metrics) == (
        "timeout", "running", {"loss": 0.1}
    )  # fmt: skip

    async def end_soon() -> None:
        await anyio.sleep(0.05)
        await store.end_run("r1", "failed", "boom", time.time())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(end_soon)
        ended = await wait_for_run(store, "r1", None, 20)
    assert (ended.outcome, ended.status) == ("ended", "failed")
    again = await wait_for_run(store, "r1", "loss < 0.01", 20)
    assert (again.outcome, again.status) == ("ended", "failed")


async def test_bad_waits_and_stops_are_refused_clearly(store: ServerStore) -> None:
    with pytest.raises(InvalidInput, match="until takes metric conditions only"):
        parse_until("params.lr = 0.1 and loss < 0.2")
    with pytest.raises(InvalidInput, match="filter, at character"):
        parse_until("loss <")
    with pytest.raises(InvalidInput, match="timeout must be between 0 and 3600"):
        await wait_for_run(store, "r1", None, 7200)
    with pytest.raises(NotFound, match="run 'nope' not found"):
        await wait_for_run(store, "nope", None, 1)
    with pytest.raises(NotFound, match="run 'nope' not found"):
        await stop_run(store, "nope", "why", "bob")
    await store.create_run(new_run("r1"))
    asked = await stop_run(store, "r1", "  stalled\n", "bob")
    assert (asked.user, asked.reason) == ("bob", "stalled")

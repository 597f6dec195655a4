"""How the SQLite store runs reads: quick ones on the event loop, long ones on reader threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import pytest

from chachaml.store import open_store
from chachaml.store.sql.database import Tx
from chachaml.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

COUNT_TO = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?)"
    " SELECT count(*) FROM n"
)


async def open_sqlite(path: Path) -> SQLiteStore:
    opened = await open_store(f"sqlite:///{path}")
    assert isinstance(opened, SQLiteStore)
    return opened


async def count_to(store: SQLiteStore, n: int) -> tuple[int, int]:
    """Count to ``n`` in one read; the count and the thread that finished the read."""

    async def body(db: Tx) -> tuple[int, int]:
        ((count,),) = await db.fetchall(COUNT_TO, (n,))
        return int(count), threading.get_ident()

    return await store.database.query(body)


async def test_a_quick_read_answers_on_the_event_loop(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path / "quick.db")
    try:
        assert await count_to(store, 10) == (10, threading.get_ident())
    finally:
        await store.close()


async def test_a_long_read_moves_to_a_reader_thread_and_the_loop_keeps_serving(
    tmp_path: Path,
) -> None:
    store = await open_sqlite(tmp_path / "long.db")
    ticks = 0
    reading = True

    async def tick() -> None:
        nonlocal ticks
        while reading:
            await anyio.sleep(0.01)
            ticks += 1

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            await anyio.sleep(0)
            started = time.perf_counter()
            count, thread = await count_to(store, 3_000_000)
            elapsed = time.perf_counter() - started
            reading = False
    finally:
        await store.close()
    assert count == 3_000_000  # interrupted on the loop, then read again in full
    assert thread != threading.get_ident()
    # held on the loop for the inline budget only: the ticker ran all along
    assert elapsed > 0.1
    assert ticks >= 3


async def test_reads_and_a_write_interleave_with_a_long_read(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path / "mixed.db")
    answers: list[tuple[int, int]] = []
    try:
        async with anyio.create_task_group() as tg:

            async def long_read() -> None:
                answers.append(await count_to(store, 2_000_000))

            tg.start_soon(long_read)
            await anyio.sleep(0.01)  # the long read is on its reader thread now
            await store.create_experiment("meanwhile", owner="ana")
            assert [e.owner for e in await store.list_experiments()] == ["ana"]
            assert await count_to(store, 5) == (5, threading.get_ident())
            assert not answers  # the long read is still going
    finally:
        await store.close()
    assert answers and answers[0][0] == 2_000_000


async def test_closing_waits_for_reads_in_flight_on_reader_threads(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path / "close.db")
    counts: list[int] = []

    async def read() -> None:
        counts.append((await count_to(store, 300_000))[0])

    async with anyio.create_task_group() as tg:
        for _ in range(4):  # more than the readers: some wait for a free one
            tg.start_soon(read)
        await anyio.sleep(0.01)  # each has outrun the inline budget and left the loop
        await store.close()
    assert counts == [300_000] * 4
    await store.close()  # closing twice is harmless

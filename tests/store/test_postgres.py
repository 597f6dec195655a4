"""The PostgreSQL backend's read lane: a connection kept out of the pool for reads.

Concurrent reads still each get a connection, and a read that is cancelled or loses its
connection gives the lane's connection back, so the next read works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from chachaml.errors import StoreUnavailable
from chachaml.store import open_store
from chachaml.store.postgres import PostgresStore
from chachaml.store.sql.database import Tx
from tests.support.services import POSTGRES_URL, postgres_schema

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def store() -> AsyncIterator[PostgresStore]:
    with postgres_schema() as url:
        opened = await open_store(url)
        assert isinstance(opened, PostgresStore)
        try:
            yield opened
        finally:
            await opened.close()


async def backend_pid(db: Tx) -> int:
    (row,) = await db.fetchall("SELECT pg_backend_pid()")
    return int(row[0])


async def test_concurrent_reads_each_get_a_connection_and_one_reuses_the_lane(
    store: PostgresStore,
) -> None:
    first = await store.database.query(backend_pid)
    assert await store.database.query(backend_pid) == first  # the lane, again
    pids: list[int] = []

    async def slow_read() -> None:
        async def body(db: Tx) -> None:
            await db.fetchall("SELECT pg_sleep(0.2)")
            pids.append(await backend_pid(db))

        await store.database.query(body)

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(slow_read)
    assert len(set(pids)) == 4  # overlapping reads: the lane and three pooled connections


async def test_a_cancelled_read_gives_the_lane_back_and_the_next_read_works(
    store: PostgresStore,
) -> None:
    with anyio.move_on_after(0.2):
        await store.database.query(lambda db: db.fetchall("SELECT pg_sleep(5)"))
    assert await store.database.query(lambda db: db.fetchall("SELECT 1 AS one")) == [(1,)]
    assert await store.change_marker()


async def test_a_read_whose_connection_was_terminated_fails_once_then_reads_again(
    store: PostgresStore,
) -> None:
    pid = await store.database.query(backend_pid)
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)  # gone
    finally:
        await admin.close()
    with pytest.raises(StoreUnavailable):
        await store.database.query(backend_pid)
    assert await store.database.query(backend_pid) != pid

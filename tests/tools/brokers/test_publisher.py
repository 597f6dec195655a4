"""Publishing the outbox to the real NATS (JetStream), Redis and RabbitMQ of this machine.

Every event type arrives, in id order, carrying its id as the message id; a broker that is
unreachable for a while (a closed port, then a link cut mid-stream) loses nothing; two
publishers on one PostgreSQL database publish each event once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import anyio
import pytest

from chachaml.records.events import EVENT_TYPES
from chachaml.store import ServerStore, open_store
from chachaml.tools.brokers import open_broker
from chachaml.tools.brokers.nats_jetstream import message_id
from chachaml.tools.brokers.publisher import BrokerPublisher, publish_pending, run_brokers
from tests.support.brokers import KINDS, TcpProxy, broker_url, consumer
from tests.support.event_writes import RESERVED, new_run, write_every_type
from tests.support.services import postgres_schema
from tests.support.waiting import await_for

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'chachaml.db'}")
    try:
        yield opened
    finally:
        await opened.close()


async def until(condition: Callable[[], bool], why: str, timeout: float = 20.0) -> None:
    async def check() -> bool:
        return condition()

    await await_for(check, timeout, why)


def token() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("kind", KINDS)
async def test_every_event_type_arrives_in_order_with_its_id(store: ServerStore, kind: str) -> None:
    name = token()
    async with consumer(kind, name) as got, anyio.create_task_group() as tasks:
        tasks.start_soon(run_brokers, store, [open_broker(broker_url(kind, name))])
        await write_every_type(store, name)
        written = await store.read_events(0, 1000)
        await until(lambda: len(got.events) >= len(written), why=f"every event on {kind}")
        tasks.cancel_scope.cancel()
    assert got.events == [e.model_dump(mode="json") for e in written]
    ids = [message_id(e) if kind == "nats" else e.id for e in written]
    assert got.message_ids == ids  # the event id (on NATS with its time: see message_id)
    assert {e.type for e in written} >= set(EVENT_TYPES) - RESERVED


@pytest.mark.parametrize("kind", KINDS)
async def test_a_broker_unreachable_for_a_while_loses_nothing(
    store: ServerStore, kind: str
) -> None:
    name = token()
    proxy = TcpProxy(broker_url(kind, name))
    await proxy.start()
    await proxy.stop()  # a closed port, where the broker will be
    broker = open_broker(broker_url(kind, name, port=proxy.port))
    publisher = BrokerPublisher(store, broker, "me")
    async with consumer(kind, name) as got, anyio.create_task_group() as tasks:
        tasks.start_soon(publisher.run)
        await store.create_run(new_run(f"{name}-a", name))
        await until(lambda: publisher.failures >= 2, why="failed attempts")
        assert got.events == [] and publisher.published == 0
        await proxy.start()  # the broker is back: the backlog goes out
        await until(lambda: len(got.events) == 2, why="the backlog")
        await proxy.stop()  # cut while connected
        failures = publisher.failures
        for i in range(3):
            await store.set_tags(f"{name}-a", {"i": str(i)}, user="bob")
        await until(lambda: publisher.failures > failures, why="a failure")
        await proxy.start()
        await store.end_run(f"{name}-a", "completed", None, 0.0)
        written = await store.read_events(0, 1000)
        await until(lambda: len(set(got.ids())) == len(written), why="all after the cut")
        tasks.cancel_scope.cancel()
    await proxy.stop()
    assert sorted(set(got.ids()), key=int) == [e.id for e in written]
    # at least once: a page cut mid-send may arrive twice, never out of order as first seen
    first_seen = list(dict.fromkeys(got.ids()))
    assert first_seen == [e.id for e in written]


@pytest.mark.postgres
async def test_two_publishers_on_one_postgres_database_publish_each_event_once() -> None:
    name = token()
    with postgres_schema() as url:
        stores = [await open_store(url) for _ in range(2)]
        try:
            publishers: list[BrokerPublisher] = []
            async with consumer("amqp", name) as got, anyio.create_task_group() as tasks:
                for i, s in enumerate(stores):
                    replica = partial(run_brokers, owner=f"replica{i}", started=publishers.extend)
                    tasks.start_soon(replica, s, [open_broker(broker_url("amqp", name))])
                await write_every_type(stores[0], name)
                written = await stores[0].read_events(0, 1000)
                await until(lambda: len(got.events) >= len(written), why="every event")
                # (a publisher counts a page once its cursor moved, after the broker took it)
                await until(lambda: sum(p.published for p in publishers) >= len(written),
                            why="the cursor past every event")  # fmt: skip
                tasks.cancel_scope.cancel()
            assert got.ids() == [e.id for e in written]  # once each, in order
            assert sorted(p.published for p in publishers) == [0, len(written)]
        finally:
            for s in stores:
                await s.close()


async def test_publish_pending_sends_the_backlog_once_and_leaves_the_cursor_after_it(
    store: ServerStore,
) -> None:
    name = token()
    broker = open_broker(broker_url("redis", name))
    async with consumer("redis", name) as got:
        await write_every_type(store, name)
        written = await store.read_events(0, 1000)
        assert await publish_pending(store, [broker]) == {broker.name: len(written)}
        assert await publish_pending(store, [broker]) == {broker.name: 0}
        await until(lambda: len(got.events) == len(written), why="all")
    assert got.ids() == [e.id for e in written]


async def test_a_redis_stream_of_another_store_stops_publishing_instead_of_dropping_events(
    store: ServerStore, tmp_path: Path
) -> None:
    name = token()
    broker = open_broker(broker_url("redis", name))
    async with consumer("redis", name):
        await store.create_run(new_run(f"{name}-a", name))
        await publish_pending(store, [broker])
        other = await open_store(f"sqlite:///{tmp_path / 'other.db'}")
        try:
            await other.create_run(new_run(f"{name}-b", name))  # the same ids, other events
            with pytest.raises(ValueError, match="publish each store to a stream of its own"):
                await publish_pending(other, [broker])
            assert await other.claim_sink(broker.name, "x", 0.0, 1.0) == 0  # nothing recorded
        finally:
            await other.close()

"""Two ``chachaml serve`` replicas on one PostgreSQL schema behave as one server for events.

Writes go round-robin through both. A stream opened on B carries what was written through A
(B's feed hears A's commits through LISTEN/NOTIFY); resuming on A with the ``Last-Event-ID``
seen on B gives exactly the events missed meanwhile; the broker both replicas are configured
with (RabbitMQ: it keeps a duplicate, where Redis and JetStream would de-duplicate it) gets
each event once; a run whose heartbeat stops is swept by both and announced killed once.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chachaml.store import open_store
from tests.support.brokers import AMQP_URL, consumer, require
from tests.support.fork_server import ServerFactory
from tests.support.schema_pool import SchemaPool
from tests.support.serve_proc import ServeProcess
from tests.support.waiting import await_for

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def events_of(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The events of an open SSE response as they arrive (comments and ``retry`` skipped)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


async def take(events: AsyncIterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The next ``count`` events, within a deadline."""
    with anyio.fail_after(20):
        return [await anext(events) for _ in range(count)]


class RoundRobin:
    """Writes through the write API of each replica in turn."""

    def __init__(self, http: httpx.AsyncClient, urls: list[str]) -> None:
        self._http = http
        self._next = itertools.cycle(urls)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self._http.post(next(self._next) + path, json=body)
        assert answer.is_success, answer.text
        reply: dict[str, Any] = answer.json()
        return reply


async def test_two_replicas_on_one_postgres_stream_resume_publish_and_sweep_as_one(
    tmp_path: Path, schema_pool: SchemaPool, server_factory: ServerFactory
) -> None:
    require(AMQP_URL)
    name = f"t{uuid.uuid4().hex[:12]}"  # the experiment: the broker consumer keeps its events
    env = {"CHACHAML_EVENTS": AMQP_URL, "CHACHAML_EVENTS_SWEEP_SECONDS": "0.05"}
    with schema_pool.schema() as url:
        a, b = (ServeProcess(url, tmp_path / n, env, server_factory) for n in ("a", "b"))
        try:
            async with anyio.create_task_group() as starting:  # both at once
                for server in (a, b):
                    starting.start_soon(anyio.to_thread.run_sync, server.start)
            async with (
                consumer("amqp", name) as published,
                httpx.AsyncClient(timeout=httpx.Timeout(20.0)) as http,
            ):
                write = RoundRobin(http, [a.url, b.url])
                async with http.stream("GET", b.url + "/api/events") as response:
                    assert response.status_code == 200
                    on_b = events_of(response)
                    run = (await write.post("/api/w/runs", {"experiment": name}))["id"]  # A
                    await write.post(f"/api/w/runs/{run}/tags", {"step": "1"})  # B
                    await write.post(f"/api/w/runs/{run}/note", {"note": "via A"})  # A
                    seen = await take(on_b, 4)
                assert [e["type"] for e in seen] == [
                    "experiment.created", "run.started", "run.tagged", "run.noted"
                ]  # fmt: skip
                last = int(seen[-1]["id"])
                # the client is gone; writes go on through both; it comes back to the other one
                await write.post(f"/api/w/runs/{run}/tags", {"step": "2"})  # B
                await write.post(f"/api/w/runs/{run}/metrics", {"loss": 0.5})  # A
                await write.post(f"/api/w/runs/{run}/tags", {"step": "3"})  # B
                headers = {"Last-Event-ID": str(last)}
                async with http.stream("GET", a.url + "/api/events", headers=headers) as response:
                    on_a = events_of(response)
                    resumed = await take(on_a, 3)
                    # a run that never heartbeats: both replicas sweep every 0.05 s
                    dying = {"experiment": name, "heartbeat_timeout": 0.2}
                    silent = await write.post("/api/w/runs", dying)
                    started = await take(on_a, 1)
                    killed = await take(on_a, 1)
                    # later writes through each replica: by the time they arrive, both have
                    # swept the dead run many times
                    await write.post(f"/api/w/runs/{run}/tags", {"step": "4"})
                    await write.post(f"/api/w/runs/{run}/end", {})
                    after = await take(on_a, 2)
                store = await open_store(url)
                try:
                    outbox = await store.read_events(0, 1000)
                finally:
                    await store.close()

                async def everything_published() -> bool:
                    return len(published.events) >= len(outbox)

                await await_for(everything_published, 20, "every event at the broker")
        finally:
            a.stop()
            b.stop()
    assert [int(e["id"]) for e in resumed] == [last + 1, last + 2, last + 3]  # each missed once
    assert [(e["type"], e["data"].get("tags")) for e in resumed] == [
        ("run.tagged", {"step": "2"}), ("run.metrics", None), ("run.tagged", {"step": "3"})
    ]  # fmt: skip
    assert [(e["type"], e["runid"]) for e in started + killed] == [
        ("run.started", silent["id"]), ("run.killed", silent["id"])
    ]  # fmt: skip
    assert [e["type"] for e in after] == ["run.tagged", "run.ended"]
    assert [e.type for e in outbox].count("run.killed") == 1  # swept by two, announced once
    ids = [e.id for e in outbox]
    assert ids == [str(i) for i in range(1, len(ids) + 1)]
    assert published.ids() == ids  # each event once at the broker, in order
    assert len(set(published.message_ids)) == len(ids)

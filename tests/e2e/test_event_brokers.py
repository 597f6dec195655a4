"""``chachaml serve`` with ``CHACHAML_EVENTS``: every change reaches the broker; bad URLs stop it.

A real server publishes to the real Redis of this machine while a run is logged through its
HTTP API; a server given a URL it cannot use refuses to start, saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from redis import Redis

from chachaml.cli import main
from chachaml.store import open_store
from tests.support.brokers import AMQP_URL, KINDS, NATS_URL, REDIS_URL, broker_url, require
from tests.support.event_writes import write_every_type
from tests.support.fork_server import ServerFactory
from tests.support.mcp_seed import free_port
from tests.support.readme import CONSUMER_EXAMPLE, code_blocks
from tests.support.serve_proc import ServeProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def test_a_server_publishes_each_change_to_the_broker_in_order(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    require(REDIS_URL)
    stream = f"t{uuid.uuid4().hex[:12]}"
    env = {"CHACHAML_EVENTS": f"{REDIS_URL}/{stream}"}
    server = ServeProcess(f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "a", env, server_factory)
    redis = Redis.from_url(REDIS_URL)
    server.start()
    try:
        run = httpx.post(server.url + "/api/w/runs", json={"experiment": stream}).json()["id"]
        httpx.post(f"{server.url}/api/w/runs/{run}/tags", json={"a": "1"}).raise_for_status()
        httpx.post(f"{server.url}/api/w/runs/{run}/end", json={}).raise_for_status()

        def entries_so_far() -> list[tuple[bytes, dict[bytes, bytes]]]:
            found: list[tuple[bytes, dict[bytes, bytes]]] = redis.xrange(stream)  # type: ignore[assignment]
            return found if len(found) >= 4 else []

        entries = wait_for(entries_so_far, 20, "four events in the stream")
    finally:
        server.stop()
        redis.delete(stream)
        redis.close()
    assert [f[b"type"].decode() for _, f in entries] == [
        "experiment.created", "run.started", "run.tagged", "run.ended"
    ]  # fmt: skip
    assert [i.decode() for i, _ in entries] == [f"{n}-0" for n in range(1, 5)]


def test_a_server_refuses_to_start_with_a_broker_url_it_cannot_use(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHACHAML_")}
    env["CHACHAML_EVENTS"] = "nats://127.0.0.1:4222,kafka://k:9092"
    done = subprocess.run(
        [sys.executable, "-m", "chachaml.cli", "serve", "--store",
         f"sqlite:///{tmp_path / 'e.db'}", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "CHACHAML_EVENTS: kafka scheme" in done.stderr
    assert not (tmp_path / "e.db").exists()  # refused before the store was opened


EXAMPLES = {"nats": "NATS JetStream", "redis": "Redis Streams", "amqp": "RabbitMQ"}


def consumer_example(kind: str, token: str) -> str:
    """The README's consumer of ``kind``, on names of this test's own."""
    (block,) = [b for b in code_blocks("python")
                if b.startswith(f"{CONSUMER_EXAMPLE}{EXAMPLES[kind]}:")]  # fmt: skip
    if kind == "redis":
        return block.replace('{"chachaml": last}', f'{{"{token}": last}}')
    return block.replace('"my-app', f'"{token}')


async def _forget(kind: str, token: str) -> None:
    """Drop what the example left on the shared broker (its durable consumer or queue)."""
    if kind == "nats":
        import nats

        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_consumer("CHACHAML", token)
        await nc.close()
    elif kind == "amqp":
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        await (await connection.channel()).queue_delete(f"{token}.models")
        await connection.close()
    else:
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        await redis.delete(token)
        await redis.aclose()


async def _consumer_exists(name: str) -> bool:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().consumer_info("CHACHAML", name)
        return True
    except NotFoundError:
        return False
    finally:
        await nc.close()


async def _queue_exists(name: str) -> bool:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    try:
        await (await connection.channel()).declare_queue(name, passive=True)
        return True
    except aio_pika.exceptions.ChannelClosed:
        return False
    finally:
        await connection.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_readme_consumer_examples_print_the_events_they_get(tmp_path: Path, kind: str) -> None:
    require({"nats": NATS_URL, "redis": REDIS_URL, "amqp": AMQP_URL}[kind])
    token = f"t{uuid.uuid4().hex[:12]}"
    proc = subprocess.Popen([sys.executable, "-u", "-c", consumer_example(kind, token)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []
    out = proc.stdout
    assert out is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, "")), daemon=True)
    reader.start()
    try:
        # an exchange drops what no queue is bound for yet; a consumer of new messages
        # gets those after its creation
        if kind == "amqp":
            wait_for(lambda: anyio.run(_queue_exists, f"{token}.models"), 30, "the queue")
        elif kind == "nats":
            wait_for(lambda: anyio.run(_consumer_exists, token), 30, "the durable consumer")
        store = f"sqlite:///{tmp_path / 'c.db'}"

        async def write() -> None:
            opened = await open_store(store)
            try:
                await write_every_type(opened, token)
            finally:
                await opened.close()

        anyio.run(write)
        url = broker_url(kind, token)
        assert main(["events", "publish", "--store", store, "--to", url, "--once"]) == 0
        started = f"run.started runs/{token}-run"
        expected = {"nats": started, "redis": started,
                    "amqp": f"model.registered models/{token}/versions/1"}[kind]  # fmt: skip
        wait_for(lambda: any(expected in line for line in lines), 30, f"{expected!r} printed")
    finally:
        proc.kill()
        proc.wait(10)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
        anyio.run(_forget, kind, token)

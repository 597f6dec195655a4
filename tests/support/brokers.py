"""The message brokers of this machine for the broker tests: URLs, consumers and a cut-able link.

Each consumer collects the CloudEvents that carry a test's token (names in them hold it), so
tests running at once on one broker (xdist workers, other checkouts) never see each other's
events. :class:`TcpProxy` stands between a publisher and a broker: stopping it closes the
port and drops live connections, as a broker going down does, without touching the broker
other tests use.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.support.services import unavailable

NATS_URL = os.environ.get("CHACHAML_TEST_NATS", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("CHACHAML_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("CHACHAML_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
KINDS = ("nats", "redis", "amqp")


def require(url: str) -> None:
    """Skip (fail in CI) unless the broker at ``url`` accepts connections."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 0), timeout=2).close()
    except OSError as exc:
        unavailable(f"no broker at {parts.hostname}:{parts.port} ({exc})")


@dataclass
class Received:
    """What a consumer got: each event (the CloudEvent as a dict) with its message id."""

    events: list[dict[str, Any]] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [e["id"] for e in self.events]


def broker_url(kind: str, token: str, port: int | None = None) -> str:
    """The publisher's URL for ``kind`` (the Redis stream is the token), optionally via ``port``."""
    base = {"nats": NATS_URL, "redis": f"{REDIS_URL}/{token}", "amqp": AMQP_URL}[kind]
    if port is None:
        return base
    parts = urlsplit(base)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return parts._replace(netloc=netloc).geturl()


@asynccontextmanager
async def consumer(kind: str, token: str) -> AsyncIterator[Received]:
    """Collect (from now on) the events of ``kind``'s broker that mention ``token``."""
    require({"nats": NATS_URL, "redis": REDIS_URL, "amqp": AMQP_URL}[kind])
    got = Received()

    def take(body: bytes, message_id: str | None) -> None:
        if token.encode() in body:
            got.events.append(json.loads(body))
            got.message_ids.append(message_id or "")

    if kind == "nats":
        import nats

        nc = await nats.connect(NATS_URL)
        try:

            async def on_message(msg: Any) -> None:
                take(msg.data, (msg.headers or {}).get("Nats-Msg-Id"))

            await nc.subscribe("chachaml.>", cb=on_message)
            await nc.flush()
            yield got
        finally:
            await nc.close()
    elif kind == "redis":
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        poller = asyncio.create_task(_read_stream(redis, token, take))
        try:
            yield got
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            await redis.delete(token)
            await redis.aclose()
    else:
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                "chachaml", aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, "#")

            async def on_delivery(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                take(message.body, message.message_id)
                await message.ack()

            await queue.consume(on_delivery)
            yield got
        finally:
            await connection.close()


async def _read_stream(redis: Any, stream: str, take: Any) -> None:
    last = "0-0"
    while True:
        found = await redis.xread({stream: last}, block=200)
        for _, entries in found:
            for entry_id, fields in entries:
                last = entry_id
                take(fields[b"event"], fields[b"id"].decode())


class TcpProxy:
    """A loopback port forwarding to ``target``, which a test can close and open again."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host, self._target_port = parts.hostname or "127.0.0.1", parts.port or 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (on the same port as before, after a stop)."""
        self._server = await asyncio.start_server(
            self._link, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the port and cut every live connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()
        for task in list(self._tasks):
            task.cancel()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._target_port)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        dst.transport.abort()

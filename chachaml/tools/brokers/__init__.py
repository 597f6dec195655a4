"""Message brokers events are published to, chosen by URL (``CHACHAML_EVENTS``).

A :class:`Broker` sends pages of events and returns once the broker has taken them all
(acknowledged, confirmed or stored); :mod:`.publisher` feeds it from the outbox in id order
and keeps its cursor in the store. :func:`open_broker` checks a URL and constructs the
broker without any I/O, so a bad URL or a missing client library is refused when a server
or ``chachaml events publish`` starts, not later in a background task. The client libraries
are the optional extra ``chachaml[events]``, imported only here, and only for the URLs given.

URLs (credentials, TLS and the libraries' own query options as each library takes them):

- ``nats://host:4222`` (``tls://``): JetStream, subject ``chachaml.<type>``, header
  ``Nats-Msg-Id`` = the event id; the stream ``CHACHAML`` (subjects ``chachaml.>``) is
  created if no stream captures those subjects yet.
- ``redis://host:6379/<db>/<stream>`` (``rediss://``; default db 0, stream ``chachaml``):
  ``XADD`` with the entry id ``<event id>-0``, so Redis itself refuses a second copy.
- ``amqp://user:password@host:5672/<vhost>`` (``amqps://``): RabbitMQ, the durable topic
  exchange ``chachaml``, routing key = the type, ``message_id`` = the event id, persistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from chachaml.errors import InvalidInput, import_extra
from chachaml.records.events import Event

SCHEMES = ("nats", "tls", "redis", "rediss", "amqp", "amqps")
LIBRARIES = {"nats": "nats", "tls": "nats", "redis": "redis", "rediss": "redis",
             "amqp": "aio_pika", "amqps": "aio_pika"}  # fmt: skip


class Broker(Protocol):
    """One broker events are published to.

    ``name`` identifies it in the store (its cursor): the URL without credentials or query.
    ``publish`` sends the events in the order given and returns only once the broker holds
    every one of them; on any failure it raises, and the caller reconnects and sends the
    page again (a broker may then hold an event twice: consumers de-duplicate by event id,
    which every broker here carries as its message id). ``connect`` and ``close`` may be
    called again after a failure; ``close`` never raises.
    """

    name: str

    async def connect(self) -> None:
        """Open the connection (and create the stream or exchange if missing)."""
        ...

    async def publish(self, events: Sequence[Event]) -> None:
        """Send ``events`` in order; returns once the broker has taken them all."""
        ...

    async def close(self) -> None:
        """Drop the connection, if any."""
        ...


def _parts(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise InvalidInput(f"CHACHAML_EVENTS: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in SCHEMES:
        raise InvalidInput(
            f"CHACHAML_EVENTS: {parts.scheme or 'no'} scheme in {sink_name(parts)!r}; a broker"
            " URL starts with nats:// (or tls://), redis:// (or rediss://) or amqp:// (or"
            " amqps://)"
        )
    if not parts.hostname:
        raise InvalidInput(f"CHACHAML_EVENTS: {sink_name(parts)!r} names no host")
    if parts.fragment:
        raise InvalidInput(f"CHACHAML_EVENTS: {sink_name(parts)!r} has a #fragment")
    return parts


def sink_name(parts: SplitResult) -> str:
    """A broker URL as its cursor is named and as messages show it: no credentials or query."""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def open_broker(url: str) -> Broker:
    """The broker of ``url`` (no I/O); ``InvalidInput`` or ``MissingExtra`` when it cannot be."""
    parts = _parts(url)
    name = sink_name(parts)
    import_extra(LIBRARIES[parts.scheme], "events", f"publishing events to {name}")
    if parts.scheme in ("nats", "tls"):
        if parts.path not in ("", "/"):
            raise InvalidInput(f"CHACHAML_EVENTS: a NATS URL has no path: {name!r}")
        from chachaml.tools.brokers.nats_jetstream import NatsJetStream

        return NatsJetStream(url.strip(), name)
    if parts.scheme in ("redis", "rediss"):
        segments = [unquote(s) for s in parts.path.split("/")[1:] if s]
        if len(segments) > 2 or (segments and not segments[0].isdigit()):
            raise InvalidInput(
                f"CHACHAML_EVENTS: a Redis URL is redis://host:port/<db>/<stream> (db a number,"
                f" both optional: 0 and chachaml), not {name!r}"
            )
        db = segments[0] if segments else "0"
        stream = segments[1] if len(segments) == 2 else "chachaml"
        connection = urlunsplit(parts._replace(path=f"/{db}"))
        from chachaml.tools.brokers.redis_streams import RedisStreams

        return RedisStreams(connection, stream, urlunsplit(urlsplit(name)._replace(
            path=f"/{db}/{stream}")))  # fmt: skip
    if parts.path.count("/") > 1:
        raise InvalidInput(
            f"CHACHAML_EVENTS: an AMQP URL's path is its virtual host (one segment): {name!r}"
        )
    from chachaml.tools.brokers.rabbitmq import RabbitMQ

    return RabbitMQ(url.strip(), name)


def open_brokers(urls: Sequence[str]) -> list[Broker]:
    """The brokers of ``urls`` (each checked as :func:`open_broker` does); refuses repeats."""
    brokers = [open_broker(u) for u in urls]
    names = [b.name for b in brokers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"CHACHAML_EVENTS names {', '.join(repeated)} more than once")
    return brokers


__all__ = ["SCHEMES", "Broker", "open_broker", "open_brokers", "sink_name"]

"""RabbitMQ (AMQP 0-9-1): the durable topic exchange ``chachaml``, routing key = the type.

Each message is persistent, carries ``message_id`` = the event id, ``type`` and
``timestamp``, and is confirmed by the broker (publisher confirms) before ``publish``
returns. Messages are sent one after another on one channel, each awaiting its confirm, so
they reach the exchange in order. An exchange with no queue bound drops what it is sent
(confirmed all the same): bind a queue (``chachaml.#`` or a type) before the events you want.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chachaml.records.events import Event

if TYPE_CHECKING:
    from aio_pika.abc import AbstractConnection, AbstractExchange

log = logging.getLogger("chachaml")

EXCHANGE = "chachaml"


class RabbitMQ:
    """Publishes to a RabbitMQ topic exchange (see the module docstring)."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self._url = url
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> None:
        """Connect, open a confirming channel and declare the exchange."""
        import aio_pika

        await self.close()
        connection = await aio_pika.connect(self._url, timeout=5)
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def publish(self, events: Sequence[Event]) -> None:
        """Send each event and wait for its confirm, in order."""
        from aio_pika import DeliveryMode, Message

        exchange = self._exchange
        if exchange is None:
            raise ConnectionError(f"not connected to {self.name}")
        for e in events:
            message = Message(
                e.model_dump_json().encode(),
                content_type="application/cloudevents+json",
                message_id=e.id,
                type=e.type,
                timestamp=e.time,
                delivery_mode=DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, routing_key=e.type)

    async def close(self) -> None:
        """Close the connection, if any."""
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except Exception as exc:  # closing a broken connection: nothing to keep
                log.debug("chachaml: closing RabbitMQ: %s", exc)

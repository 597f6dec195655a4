"""NATS with JetStream: each event to ``chachaml.<type>``, de-duplicated by ``Nats-Msg-Id``.

A page is sent with ``publish_async`` (one write per message, in order, without waiting)
and then every acknowledgement is awaited: the stream has stored the page when ``publish``
returns. JetStream drops a message whose ``Nats-Msg-Id`` it stored within its duplicate
window (two minutes by default), so a page sent again after a failure is mostly not stored
twice. The id is the event id and its time (``42@1767225600.123456``): the event id alone
would make JetStream drop the events of a second store on the same server (or of a store
created anew) as repeats of the first's. The client's own reconnection is off: the
publisher reconnects and resends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chachaml.records.events import Event

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

log = logging.getLogger("chachaml")

PREFIX = "chachaml"  # subjects: chachaml.<type>
STREAM = "CHACHAML"  # created when no stream captures chachaml.> yet


def message_id(event: Event) -> str:
    """The ``Nats-Msg-Id`` of an event: its id and time, the same every time it is sent."""
    return f"{event.id}@{event.time.timestamp():.6f}"


async def _quiet(exc: Exception) -> None:
    """Connection errors surface as the publisher's own (retried, logged once per failure)."""
    log.debug("chachaml: NATS: %s", exc)


class NatsJetStream:
    """Publishes to NATS JetStream (see the module docstring)."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self._url = url
        self._client: Client | None = None
        self._js: JetStreamContext | None = None

    async def connect(self) -> None:
        """Connect, and add the stream unless one already captures ``chachaml.>``."""
        import nats
        from nats.js.errors import NotFoundError

        await self.close()
        client = await nats.connect(
            self._url,
            allow_reconnect=False,
            connect_timeout=2,
            max_reconnect_attempts=1,  # 0 makes the first connect try forever
            reconnect_time_wait=0.1,
            error_cb=_quiet,
        )
        self._client = client
        js = client.jetstream()
        try:
            await js.find_stream_name_by_subject(f"{PREFIX}.>")
        except NotFoundError:
            await js.add_stream(name=STREAM, subjects=[f"{PREFIX}.>"])
        self._js = js

    async def publish(self, events: Sequence[Event]) -> None:
        """Send every event, then wait for every acknowledgement."""
        js = self._js
        if js is None:
            raise ConnectionError(f"not connected to {self.name}")
        acks = [
            await js.publish_async(f"{PREFIX}.{e.type}", e.model_dump_json().encode(),
                                   headers={"Nats-Msg-Id": message_id(e)})
            for e in events
        ]  # fmt: skip
        await asyncio.gather(*acks)

    async def close(self) -> None:
        """Close the connection (pending acknowledgements are abandoned)."""
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            try:
                await client.close()
            except Exception as exc:  # closing a broken connection: nothing to keep
                log.debug("chachaml: closing NATS: %s", exc)

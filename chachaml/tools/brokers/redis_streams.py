"""Redis Streams: each event ``XADD``-ed with the entry id ``<event id>-0``.

The entry id is the event id, so Redis refuses a second copy of an event (``XADD`` with an
id not above the stream's last one fails) and a page sent again after a failure adds only
what is missing; a consumer reads from an event id with ``XREAD ... <id>-0``. The stream
belongs to one chachaml store: when Redis refuses an event, the entry of that id must hold
the same event, else the stream has another store's events (or the store was created anew)
and publishing stops with an error saying so rather than dropping events. A page is one
pipeline, one round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chachaml.records.events import Event

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("chachaml")

STALE_ID = "equal or smaller than the target stream top item"


class RedisStreams:
    """Publishes to a Redis stream (see the module docstring)."""

    def __init__(self, url: str, stream: str, name: str) -> None:
        self.name = name
        self.stream = stream
        self._url = url
        self._redis: Redis | None = None

    async def connect(self) -> None:
        """Connect and check that the server answers."""
        from redis.asyncio import Redis

        await self.close()
        redis = Redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=10)
        self._redis = redis
        await redis.ping()

    async def publish(self, events: Sequence[Event]) -> None:
        """``XADD`` every event in one pipeline; entries already in the stream are skipped."""
        redis = self._redis
        if redis is None:
            raise ConnectionError(f"not connected to {self.name}")
        pipe = redis.pipeline(transaction=False)
        for e in events:
            fields = {"id": e.id, "type": e.type, "subject": e.subject or "",
                      "event": e.model_dump_json()}  # fmt: skip
            pipe.xadd(self.stream, fields, id=f"{e.id}-0")  # type: ignore[arg-type]
        refused = []
        for event, result in zip(events, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(result, Exception):
                if STALE_ID not in str(result):
                    raise result
                refused.append(event)
        if refused:
            await self._check_repeats(redis, refused)

    async def _check_repeats(self, redis: Redis, events: Sequence[Event]) -> None:
        """Refused events must be in the stream already (a page sent again), else raise."""
        pipe = redis.pipeline(transaction=False)
        for e in events:
            pipe.xrange(self.stream, f"{e.id}-0", f"{e.id}-0")
        for e, found in zip(events, await pipe.execute(), strict=True):
            held = found[0][1].get(b"event") if found else None
            if held != e.model_dump_json().encode():
                raise ValueError(
                    f"the Redis stream {self.stream!r} holds entries this store did not write"
                    f" (at or after id {e.id}-0): publish each store to a stream of its own"
                )

    async def close(self) -> None:
        """Drop the connection pool."""
        redis, self._redis = self._redis, None
        if redis is not None:
            try:
                await redis.aclose()
            except Exception as exc:  # closing a broken connection: nothing to keep
                log.debug("chachaml: closing Redis: %s", exc)

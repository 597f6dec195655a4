"""A server's event outbox read over HTTP, so events reach readers over a remote store too.

``wait_for_run`` and MCP resource subscriptions read events through an
:class:`~chachaml.tools.events.EventFeed`; over a remote store (``chachaml mcp --store
http://...``) the feed reads :class:`RemoteOutbox`: pages of ``GET /api/store/v1/events``,
woken by the server's own event stream (``GET /api/events``) as soon as anything commits,
with a slow poll as a safety net while the stream reconnects. The stream stays open while the
feed runs (as a database's ``LISTEN`` does); pages are read only while someone waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import httpx
from pydantic import BaseModel

from chachaml.client.remote.connection import Connection, raise_for
from chachaml.errors import ChachamlError
from chachaml.records.events import Event

log = logging.getLogger("chachaml")
PAGE = "/api/store/v1/events"
STREAM = "/api/events"


class _Page(BaseModel):
    events: list[Event]
    last_event_id: int


class RemoteOutbox:
    """The outbox of the server behind ``conn`` (an ``EventSource`` of the event feed)."""

    event_poll_seconds = 2.0  # a safety net only: the server's stream wakes readers

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def read_events(self, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` events with ids above ``after``, in id order."""
        page: _Page = await self._conn.get(f"{PAGE}?after={after}&limit={limit}", _Page)
        return page.events

    async def last_event_id(self) -> int:
        """The server's newest event id (0: none)."""
        page: _Page = await self._conn.get(f"{PAGE}?limit=0", _Page)
        return page.last_event_id

    async def listen_events(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` for each event the server streams; reconnect when the stream drops."""
        pause = 0.5
        while True:
            try:
                async with self._conn.http.stream(
                    "GET",
                    STREAM,
                    headers={"Accept": "text/event-stream"},
                    timeout=httpx.Timeout(10.0, read=None),  # heartbeats keep it alive
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        raise_for(response)
                    pause = 0.5
                    wake()  # (re)connected: what was committed meanwhile is read now
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            wake()
            except (httpx.HTTPError, ChachamlError) as exc:
                log.warning("chachaml: the event stream of %s dropped (%s)", self._conn.url, exc)
            await anyio.sleep(pause)
            pause = min(pause * 2, 10.0)

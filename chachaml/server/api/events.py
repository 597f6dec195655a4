"""Events over HTTP: ``GET /api/events`` (Server-Sent Events) and the JSON Schema of each type.

The stream sends each event of the store's outbox as one SSE message whose ``id`` is the
event's id and whose ``data`` is the event as CloudEvents JSON. A client that reconnects with
``Last-Event-ID`` (browsers' ``EventSource`` do so by themselves) gets every event after that
id, also after a server restart (ids are the store's sequence); without one it starts from
now, or after the id given as ``after``. Filters: ``type`` (repeatable, patterns such as
``run.*``), ``experiment``, ``run_id``, ``model``. A comment line is sent every heartbeat
interval so proxies keep the connection open and the client can tell the server is alive.
When the server stops, every stream ends (rather than hold its shutdown); clients reconnect.

Every client of a process is served by one :class:`~chachaml.tools.events.EventFeed` (one
reader of the outbox), set on the app by :func:`chachaml.server.app.create_app`.

``GET /api/store/v1/events`` pages through the outbox as JSON: what a remote store reads
(woken by the stream) so that ``wait_for_run`` and MCP subscriptions work over a server too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import StreamingResponse

from chachaml.records.events import (
    EVENT_TYPES,
    Event,
    EventFilter,
    check_type_pattern,
    event_schema,
)
from chachaml.server.api.endpoint import INT64, Api, Call
from chachaml.server.errors import ApiError
from chachaml.tools.events import EventFeed

api = Api()
FILTERS = (
    ("type", "string", False),
    ("experiment", "string", False),
    ("run_id", "string", False),
    ("model", "string", False),
    ("after", "integer", False),
)
PAGE_QUERY = (("after", "integer", False), ("limit", "integer", False))
MAX_PAGE = 1000
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 2000  # how long a browser waits before reconnecting


def feed_of(request: Request) -> EventFeed:
    """The app's event feed (a 503 if the app was built without one)."""
    feed = getattr(request.app.state, "events", None)
    if not isinstance(feed, EventFeed):
        raise ApiError(503, "this server does not stream events")
    return feed


def _event_id(raw: str, what: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ApiError(422, f"{what} must be an event id (an integer), got {raw!r}") from None
    if not 0 <= value < INT64:
        raise ApiError(422, f"{what} must be an event id (0 or more, 64 bits), got {value}")
    return value


def parse_filter(request: Request) -> tuple[EventFilter, int | None]:
    """The filter and the id to resume after, from the query and ``Last-Event-ID``."""
    params = request.query_params
    known = {name for name, _, _ in FILTERS}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ApiError(
            422, f"unknown query parameter {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    types = tuple(t for raw in params.getlist("type") for t in raw.split(",") if t.strip())
    for pattern in types:
        why = check_type_pattern(pattern.strip())
        if why is not None:
            raise ApiError(422, why)
    for name in ("experiment", "run_id", "model"):
        if "\x00" in params.get(name, ""):
            raise ApiError(422, f"query parameter {name!r} may not hold NUL")
    chosen = EventFilter(
        types=tuple(t.strip() for t in types),
        experiment=params.get("experiment") or None,
        run_id=params.get("run_id") or None,
        model=params.get("model") or None,
    )
    resume = request.headers.get("last-event-id")
    if resume is not None and resume.strip():
        return chosen, _event_id(resume, "Last-Event-ID")
    after = params.get("after")
    return chosen, None if after is None or not after.strip() else _event_id(after, "after")


def message(event: Event) -> bytes:
    """One SSE message: the event's id, and the event as CloudEvents JSON (encoded once)."""
    return b"id: " + event.id.encode() + b"\ndata: " + event.json_bytes + b"\n\n"


async def _stream(
    feed: EventFeed, chosen: EventFilter, after: int | None, heartbeat: float
) -> AsyncIterator[bytes]:
    async with feed.subscribe(chosen, after, beat=heartbeat) as sub:
        yield f"retry: {RETRY_MS}\n: chachaml events after {sub.last}\n\n".encode()
        while True:
            try:
                event = await sub.next_or_beat()
            except anyio.EndOfStream:  # the server is stopping: the client resumes elsewhere
                return
            yield b": heartbeat\n\n" if event is None else message(event)


@api.route("GET", "/api/events", scope="read", response=Event, errors=(401, 403, 422),
           query=FILTERS)  # fmt: skip
async def stream_events(call: Call) -> StreamingResponse:
    """Server-Sent Events (text/event-stream): every change as a CloudEvents JSON message."""
    chosen, after = parse_filter(call.request)
    feed = feed_of(call.request)
    if after is None:
        after = await feed.head()
    heartbeat: float = getattr(call.request.app.state, "events_heartbeat", HEARTBEAT_SECONDS)
    return StreamingResponse(
        _stream(feed, chosen, after, heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@api.route("GET", "/api/events/schemas", scope="read", response=dict[str, Any], errors=(401, 403))
async def event_schemas(call: Call) -> dict[str, Any]:
    """The JSON Schema of each event type, by type (the CloudEvents envelope with its data)."""
    return {name: event_schema(name) for name in EVENT_TYPES}


class EventPage(BaseModel):
    """A page of the outbox, and the newest event id kept."""

    events: list[Event]
    last_event_id: int = Field(description="the newest event id kept (0: none)")


@api.route("GET", "/api/store/v1/events", scope="read", response=EventPage,
           errors=(401, 403, 422), query=PAGE_QUERY)  # fmt: skip
async def read_events(call: Call) -> EventPage:
    """Events after an id, in id order, at most limit (default 500, 0: just the newest id)."""
    params = call.request.query_params
    unknown = sorted(set(params) - {"after", "limit"})
    if unknown:
        raise ApiError(422, f"unknown query parameter {unknown[0]!r} (known: after, limit)")
    after = _event_id(params.get("after") or "0", "after")
    raw = params.get("limit") or "500"
    if not raw.strip().isdigit() or not 0 <= int(raw) <= MAX_PAGE:
        raise ApiError(422, f"limit must be an integer from 0 to {MAX_PAGE}, got {raw!r}")
    limit = int(raw)
    events = await call.store.read_events(after, limit) if limit else []
    return EventPage(events=events, last_event_id=await call.store.last_event_id())

"""The streamed form of ``POST /api/chat``: Server-Sent Events as the answer is produced.

Asked for with ``Accept: text/event-stream`` (or ``?stream=1``). Events, in order:
``tool_call`` (name, arguments, a short result, is_error) as each tool call returns,
``text`` (``{"text": piece}``) as the model writes, then one ``answer`` whose data has the
shape of the JSON endpoint's answer, or one ``error`` whose data is the API's error
envelope (``{"error": {"status", "code", "message"}}``). Everything refused before the
model is asked (access, body, limits, missing key) is a plain HTTP error instead. The
stream stops, and the chat with it, when the client goes away.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from chachaml.chat.models import EventSink

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # a proxy in front passes events on at once
]


def wants_stream(request: Request) -> bool:
    """Whether the caller asked for events rather than one JSON answer."""
    if request.query_params.get("stream") in ("1", "true"):
        return True
    return EVENT_STREAM in request.headers.get("accept", "")


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event (JSON data on one line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventStream(Response):
    """A 200 ``text/event-stream`` whose events ``run`` emits while it runs."""

    def __init__(self, run: Callable[[EventSink], Awaitable[None]]) -> None:
        # no body and no content-length: the events are sent as ``run`` makes them
        self.status_code = 200
        self.background = None
        self.raw_headers = list(_HEADERS)
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the head, then each event as it comes; stop early if the client leaves."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def emit(event: str, data: dict[str, Any]) -> None:
            body = sse(event, data)
            await send({"type": "http.response.body", "body": body, "more_body": True})

        async with anyio.create_task_group() as tasks:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                log.info("chat stream: the client went away; the chat is stopped")
                tasks.cancel_scope.cancel()

            tasks.start_soon(watch)
            await self._run(emit)
            tasks.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

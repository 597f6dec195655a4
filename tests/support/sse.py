"""An in-process Server-Sent Events client: drives an ASGI app and reads its stream as it comes.

``httpx.ASGITransport`` hands a response over only once it is complete, which an event stream
never is; this calls the app directly, parses each SSE frame as it is sent, and disconnects
when the block ends (the app then ends the stream, as it would for a browser closing it).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from starlette.types import ASGIApp, Message


@dataclass
class Frame:
    """One SSE frame: its fields (``id``, ``data``, ...) or, for a comment line, ``comment``."""

    fields: dict[str, str] = field(default_factory=dict)
    comment: str | None = None

    @property
    def event(self) -> dict[str, Any]:
        """The frame's data as JSON (a CloudEvent)."""
        parsed: dict[str, Any] = json.loads(self.fields["data"])
        return parsed


class Stream:
    """The open response: its status and headers, and its frames as they arrive."""

    def __init__(self, messages: MemoryObjectReceiveStream[Message]) -> None:
        self._messages = messages
        self._buffer = b""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""  # what arrived, for a response that is not a stream

    async def start(self) -> None:
        """Wait for the response's status and headers (and a short body's end)."""
        first = await self._messages.receive()
        self.status = first["status"]
        self.headers = {k.decode(): v.decode() for k, v in first.get("headers", [])}
        if not self.headers.get("content-type", "").startswith("text/event-stream"):
            while True:
                message = await self._messages.receive()
                self.body += message.get("body", b"")
                if not message.get("more_body", False):
                    return

    async def frame(self, timeout: float = 10.0) -> Frame:
        """The next frame (a comment line counts as one), within ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            while b"\n\n" not in self._buffer:
                message = await self._messages.receive()
                self._buffer += message.get("body", b"")
        raw, self._buffer = self._buffer.split(b"\n\n", 1)
        frame = Frame()
        for line in raw.decode().split("\n"):
            if line.startswith(":"):
                frame.comment = line[1:].strip()
            else:
                name, _, value = line.partition(":")
                frame.fields[name] = value[1:] if value.startswith(" ") else value
        return frame

    async def event(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next event, skipping comment lines and the opening ``retry`` frame."""
        while True:
            frame = await self.frame(timeout)
            if "data" in frame.fields:
                return frame.event


@asynccontextmanager
async def open_stream(
    app: ASGIApp, url: str, headers: Mapping[str, str] | None = None
) -> AsyncIterator[Stream]:
    """GET ``url`` (a path with its query) from ``app``; the stream, closed on leaving."""
    parts = urlsplit(url)
    sent: list[tuple[bytes, bytes]] = [(b"host", b"127.0.0.1:8080")]
    sent += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": parts.path,
        "raw_path": parts.path.encode(), "query_string": parts.query.encode(),
        "root_path": "", "headers": sent, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }  # fmt: skip
    to_client, from_app = anyio.create_memory_object_stream[Message](1000)
    gone = anyio.Event()
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if not gone.is_set():
            await to_client.send(message)

    async def serve() -> None:
        async with to_client:
            await app(scope, receive, send)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(serve)
        stream = Stream(from_app)
        try:
            await stream.start()
            yield stream
        finally:
            gone.set()
            with anyio.move_on_after(5):
                while True:  # let the app see the disconnect and finish
                    try:
                        await from_app.receive()
                    except anyio.EndOfStream:
                        break
            from_app.close()
            tasks.cancel_scope.cancel()

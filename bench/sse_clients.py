"""Many SSE clients in one process: ``python -m bench.sse_clients URL --clients N --after ID``.

The client side of the events benchmark's fan-out figure. Each client is a raw asyncio
socket (an HTTP client library per connection would cost this process more than the server
it measures) reading ``GET /api/events?after=ID``; it records, for every event, its id and
the wall-clock time it arrived, and stops after a ``run.ended`` event. The process prints
``ready`` once every client has its stream open, and writes what each client received to
``--out`` (JSON: one ``[[id, time], ...]`` list per client, and the clients that failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from chachaml.server.app import raise_open_file_limit

END = b'"type":"run.ended"'  # the writer's last event (the stream's JSON is compact)
CONNECTING = 100  # connections opened at once (the server's accept backlog is larger)


class Chunks:
    """Decodes an HTTP/1.1 chunked body fed in pieces, as the bytes arrive."""

    def __init__(self) -> None:
        self._raw = b""
        self._want = -1  # bytes of the current chunk still to read; -1: a size line next

    def feed(self, data: bytes) -> bytes:
        """The body bytes that ``data`` completes."""
        self._raw += data
        out = b""
        while True:
            if self._want < 0:
                line, sep, rest = self._raw.partition(b"\r\n")
                if not sep:
                    return out
                self._want = int(line.split(b";", 1)[0], 16)
                self._raw = rest
            if len(self._raw) < self._want + 2:
                return out
            out += self._raw[: self._want]
            self._raw = self._raw[self._want + 2 :]
            self._want = -1


async def follow(url: str, opened: asyncio.Semaphore, ready: list[int]) -> list[list[float]]:
    """One client: ``[[id, arrival time], ...]`` up to and with the ``run.ended`` event."""
    parts = urlsplit(url)
    async with opened:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        request = (f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                   "Accept: text/event-stream\r\n\r\n")  # fmt: skip
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    if b"chunked" not in head.lower():
        raise RuntimeError("the stream is not chunked")
    chunks = Chunks()
    body = b""
    got: list[list[float]] = []
    first = True
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                raise RuntimeError(f"the server closed the stream after {len(got)} events")
            at = time.time()
            body += chunks.feed(data)
            *frames, body = body.split(b"\n\n")
            if frames and first:
                first = False
                ready[0] += 1
            for frame in frames:
                if frame.startswith(b"id: "):
                    got.append([int(frame[4 : frame.index(b"\n")]), at])
                    if END in frame:
                        return got
    finally:
        writer.close()


async def run(url: str, clients: int, timeout: float, out: str) -> None:
    """Open ``clients`` streams, say ``ready``, and write what each received to ``out``."""
    opened = asyncio.Semaphore(CONNECTING)
    ready = [0]
    tasks = [asyncio.ensure_future(follow(url, opened, ready)) for _ in range(clients)]
    deadline = time.monotonic() + timeout
    while ready[0] < clients and time.monotonic() < deadline:
        if any(t.done() and t.exception() for t in tasks):
            break
        await asyncio.sleep(0.05)
    print("ready" if ready[0] == clients else f"only {ready[0]} ready", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
    for task in pending:
        task.cancel()
    received = [t.result() if t in done and not t.exception() else None for t in tasks]
    failures = [repr(t.exception()) if t in done and t.exception() else "timed out"
                for t, r in zip(tasks, received, strict=True) if r is None]  # fmt: skip
    with open(out, "w") as f:
        json.dump({"received": [r for r in received if r is not None],
                   "failures": failures}, f)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the clients (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.sse_clients")
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--after", type=int, required=True, help="the event id to start after")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds in all")
    parser.add_argument("--out", required=True, help="where to write what was received")
    args = parser.parse_args(argv)
    limit = raise_open_file_limit()
    if limit < args.clients + 50:
        print(f"open-file limit {limit} is too low for {args.clients} clients", file=sys.stderr)
        return 2
    asyncio.run(run(f"{args.url}/api/events?after={args.after}", args.clients, args.timeout,
                    args.out))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

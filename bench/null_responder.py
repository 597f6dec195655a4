"""A server that does no work: ``python -m bench.null_responder PORT``.

It answers every request with ``200 {}`` (``Content-Length`` set, the connection kept open)
as soon as the request's last byte arrives, and reads nothing but the headers it needs to
find that byte. A client timed against it is timed alone: its own building, encoding and
sending of each call, the floor under any server's figure for the same calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator

from bench.processes import Served, child_env, free_port, module_command

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
READY = b"ready\n"


class Responder(asyncio.Protocol):
    """One connection: each request (headers, then ``Content-Length`` bytes) gets ``ANSWER``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.body_left = -1  # bytes of the current body still to come; -1 while in headers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Answer every request whose last byte is now in."""
        self.buffer += data
        while True:
            if self.body_left < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.body_left = content_length(bytes(self.buffer[:end]))
                del self.buffer[: end + 4]
            if len(self.buffer) < self.body_left:
                return
            del self.buffer[: self.body_left]
            self.body_left = -1
            assert self.transport is not None
            self.transport.write(ANSWER)


def content_length(head: bytes) -> int:
    """The ``Content-Length`` a request's header block declares (0 without one)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def serve(port: int) -> None:
    """Answer on loopback ``port`` until killed; ``READY`` on stdout once listening."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Responder, "127.0.0.1", port)
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    await server.serve_forever()


@contextlib.contextmanager
def null_responder() -> Iterator[Served]:
    """The responder in a process of its own on a free port, once it listens.

    Its own process, so that its little work is not charged to the client's CPU clock.
    """
    port = free_port()
    cmd = module_command("bench.null_responder", str(port))
    with subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            if proc.stdout.readline() != READY:
                raise RuntimeError("the null responder did not start")
            yield Served(f"http://127.0.0.1:{port}", proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(int(sys.argv[1])))

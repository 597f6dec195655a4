"""A real webhook receiver on loopback: records every POST and answers as scripted."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"  # a scripted answer: hold the request open until the test ends
# other answers: a status (body "ok"), or (status, body)


@dataclass
class Received:
    """One POST as the receiver saw it."""

    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The receiver's URL, what it received, and the answers it still has to give."""

    url: str
    script: list[int | str | tuple[int, bytes]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver.received.append(Received(dict(self.headers.items()), body))
        answer = receiver.script.pop(0) if receiver.script else 200
        if answer == HANG:
            receiver.release.wait(timeout=30)
            return
        status, text = answer if isinstance(answer, tuple) else (answer, b"ok")
        assert isinstance(status, int)
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a hung request is expected; ignore its broken pipe."""


POLL = 0.02  # seconds between the serving thread's looks for a shutdown


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """Serve on 127.0.0.1 in a thread; yields the receiver, then stops it."""
    server = _Server(("127.0.0.1", 0), _Handler)
    host, port = server.server_address[:2]
    server.receiver = Receiver(url=f"http://{host!s}:{port}/hook")
    # shutdown() waits for the serving loop's next look: 0.5 s by default, at every test's end
    thread = threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


_HELD: list[socket.socket] = []


def refused_url() -> str:
    """A loopback URL where nothing listens (connections are refused).

    The port stays bound, never listening, for the rest of the process: a port merely freed
    could be taken by another test's server in the meantime, which would answer instead."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"

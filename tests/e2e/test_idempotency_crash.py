"""Finding 7 (and the ``flush()`` item of 12): idempotency that survives crashes.

Real ``chachaml serve`` subprocesses, killed with SIGKILL; a real TCP proxy that loses the
server's reply; the stores the server wrote checked directly.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from chachaml.client.client import Client
from chachaml.errors import StoreUnavailable
from chachaml.records.runs import MetricChunk
from chachaml.settings import Settings
from chachaml.store import open_store
from chachaml.store.codec import make_chunk
from tests.support.fork_server import ServerFactory
from tests.support.mcp_seed import free_port
from tests.support.serve_proc import ServeProcess
from tests.support.waiting import wait_for

TOKEN = "alice-idempotency-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
POINTS = 1000


@pytest.fixture
def server(store_url: str, tmp_path: Path, server_factory: ServerFactory) -> Iterator[ServeProcess]:
    """A server whose idempotency lease is one second, over the store under test."""
    env = {"CHACHAML_TOKENS": f"alice:{TOKEN}", "CHACHAML_IDEMPOTENCY_LEASE_SECONDS": "1"}
    proc = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _stored_points(store_url: str, run_id: str, key: str) -> tuple[int, int]:
    """(points in the metric's history, the summary's count) as the store holds them."""

    async def count() -> tuple[int, int]:
        store = await open_store(store_url)
        try:
            history = await store.metric_history(run_id, key)
            return len(history.steps), (await store.metric_summaries(run_id))[key].count
        finally:
            await store.close()

    return anyio.run(count)


def _client(url: str, tmp_path: Path) -> Client:
    """A tracking client that flushes only when asked (no background timer in the way)."""
    settings = Settings(store_url=url, artifact_root=str(tmp_path / "client-artifacts"),
                        token=TOKEN, user="alice", flush_interval=3600,
                        heartbeat_seconds=3600)  # fmt: skip
    return Client(settings=settings)


class ReplyDropper:
    """A loopback HTTP/1.1 proxy; once armed, it forwards the next metrics POST, lets the
    server answer it, then drops the reply and calls ``on_drop`` (which kills the server)."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._upstream = upstream_port
        self._on_drop: Callable[[], None] | None = None
        self.dropped = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, on_drop: Callable[[], None]) -> None:
        """Drop the reply to the next metrics POST."""
        self._on_drop = on_drop

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket, buf: bytearray) -> bytes | None:
        """One HTTP message (head and Content-Length body) from ``sock``; None at EOF."""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(1 << 16)
            if not data:
                return None
            buf += data
        head_end = buf.index(b"\r\n\r\n") + 4
        found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", bytes(buf[:head_end]))
        total = head_end + (int(found.group(1)) if found else 0)
        while len(buf) < total:
            data = sock.recv(1 << 16)
            if not data:
                return None
            buf += data
        message = bytes(buf[:total])
        del buf[:total]
        return message

    def _serve(self, conn: socket.socket) -> None:
        inbound = bytearray()
        with conn:
            while (request := self._read_message(conn, inbound)) is not None:
                try:
                    upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=30)
                except OSError:
                    return  # the server is down: the client sees the connection close
                with upstream:
                    upstream.sendall(request)
                    reply = self._read_message(upstream, bytearray())
                if reply is None:
                    return
                line = request.split(b"\r\n", 1)[0]
                if self._on_drop is not None and line.startswith(b"POST") and b"/metrics" in line:
                    on_drop, self._on_drop = self._on_drop, None
                    on_drop()
                    self.dropped.set()
                    return  # the reply is lost with the server
                conn.sendall(reply)


def test_a_flush_after_a_crash_that_lost_the_reply_stores_each_point_once(
    server: ServeProcess, store_url: str, tmp_path: Path
) -> None:
    """The issue's reproduction: 1,000 points logged, the server stores them, dies before
    its reply arrives; after a restart the client's next ``flush()`` must not store them
    again."""
    proxy = ReplyDropper(server.port)
    client = _client(proxy.url, tmp_path)
    try:
        run = client.start_run("crash")
        for step in range(POINTS):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        proxy.arm(server.kill)
        with pytest.raises(Exception) as failed:
            client.flush()
        assert proxy.dropped.is_set()
        server.start()  # same port, same store
        client.flush()
        assert _stored_points(store_url, run.id, "loss") == (POINTS, POINTS)
        assert isinstance(failed.value, StoreUnavailable), repr(failed.value)
        assert proxy.url in str(failed.value)
        run.end()
    finally:
        client.close()
        proxy.close()


def test_flush_against_a_dead_server_raises_store_unavailable_naming_it(
    server: ServeProcess, store_url: str, tmp_path: Path
) -> None:
    client = _client(server.url, tmp_path)
    try:
        run = client.start_run("dead")
        for step in range(POINTS):
            run.log_metric("loss", float(step), step=step)
        server.kill()
        with pytest.raises(StoreUnavailable, match=re.escape(server.url)):
            client.flush()
        server.start()
        client.flush()  # the kept batch goes through once the server is back
        assert _stored_points(store_url, run.id, "loss") == (POINTS, POINTS)
        run.end()
    finally:
        client.close()


def _batch(run_id: str) -> tuple[MetricChunk, bytes]:
    """A chunk of ``POINTS`` points and the packed-series request body that carries it."""
    chunk = make_chunk(run_id, "loss", [(s, s / 10, 1.7e9 + s) for s in range(POINTS)])
    series = {"key": "loss"} | {
        name: base64.b64encode(raw).decode()
        for name, raw in (
            ("steps", chunk.steps),
            ("values", chunk.values),
            ("timestamps", chunk.timestamps),
        )
    }
    return chunk, json.dumps({"series": [series]}).encode()


def _start_run(http: httpx.Client) -> str:
    created = http.post("/api/w/runs", json={"experiment": "lease"})
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    return run_id


def _retry_until_not_in_flight(
    http: httpx.Client, path: str, raw: bytes, key: str
) -> httpx.Response:
    """Retry as a client honouring 409 + Retry-After would, up to a deadline."""
    first = http.post(path, content=raw, headers={"Idempotency-Key": key})
    assert first.status_code == 409, first.text
    assert "retry-after" in first.headers

    def taken_over() -> httpx.Response | None:
        reply = http.post(path, content=raw, headers={"Idempotency-Key": key})
        return None if reply.status_code == 409 else reply

    reply = wait_for(taken_over, 15, "the in-flight key to be taken over")
    assert reply is not None
    return reply


def test_an_in_flight_key_left_by_a_killed_server_is_taken_over_after_the_lease(
    server: ServeProcess, store_url: str
) -> None:
    from chachaml.server.api.endpoint import request_hash

    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as http:
        run_id = _start_run(http)
        _, raw = _batch(run_id)
        path = f"/api/w/runs/{run_id}/metrics"

        async def left_in_flight() -> None:  # what a server killed mid-request leaves behind
            store = await open_store(store_url)
            try:
                claimed = await store.claim_idempotency_key(
                    "alice", "k-lease", request_hash("POST", path, raw)
                )
                assert claimed is None
            finally:
                await store.close()

        anyio.run(left_in_flight)
        reply = _retry_until_not_in_flight(http, path, raw, "k-lease")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"points": POINTS}
        again = http.post(path, content=raw, headers={"Idempotency-Key": "k-lease"})
        assert again.json() == {"points": POINTS}
        assert again.headers.get("idempotent-replayed") == "true"
    assert _stored_points(store_url, run_id, "loss") == (POINTS, POINTS)


def test_a_retry_after_a_crash_between_commit_and_reply_stores_the_batch_once(
    server: ServeProcess, store_url: str
) -> None:
    """The server committed the points, then died before recording the reply: the key is
    in flight, the points are stored. The retry after the lease must not store them again."""
    from chachaml.server.api.endpoint import batch_id, request_hash

    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as http:
        run_id = _start_run(http)
        chunk, raw = _batch(run_id)
        path = f"/api/w/runs/{run_id}/metrics"

        async def committed_then_killed() -> None:
            store = await open_store(store_url)
            try:
                hashed = request_hash("POST", path, raw)
                assert await store.claim_idempotency_key("alice", "k-crash", hashed) is None
                stamped = dataclasses.replace(chunk, batch=batch_id("alice", "k-crash"))
                await store.log_metrics([stamped])
            finally:
                await store.close()

        anyio.run(committed_then_killed)
        assert _stored_points(store_url, run_id, "loss") == (POINTS, POINTS)
        reply = _retry_until_not_in_flight(http, path, raw, "k-crash")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"points": POINTS}
    assert _stored_points(store_url, run_id, "loss") == (POINTS, POINTS)

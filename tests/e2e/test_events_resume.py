"""SSE across a real ``chachaml serve`` restart: ``Last-Event-ID`` gets exactly what was missed.

A client follows ``/api/events``, goes away, the server is killed (SIGKILL) and started
again while training code keeps writing to the store; the client reconnects with the id of
the last event it saw and receives every event it missed, once, then live ones. A server
told to stop ends its streams at once instead of waiting for their clients to leave.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx

from chachaml.records.runs import NewRun
from chachaml.store import open_store
from tests.support.fork_server import ServerFactory, alive
from tests.support.serve_proc import ServeProcess


def events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of an open SSE response, as they arrive (comments and retry skipped)."""
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


def take(url: str, count: int, headers: dict[str, str], action: Any = None) -> list[dict[str, Any]]:
    """Open the stream, run ``action`` once it is open, and read ``count`` events."""
    got: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=httpx.Timeout(15.0)) as http,
        http.stream("GET", url + "/api/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        if action is not None:
            action()
        for event in events(response):
            got.append(event)
            if len(got) == count:
                break
    return got


def write_directly(store_url: str, run_id: str, tags: list[str]) -> None:
    """What a training process does with the database while the server is down."""

    async def go() -> None:
        store = await open_store(store_url)
        try:
            for value in tags:
                await store.set_tags(run_id, {"step": value})
        finally:
            await store.close()

    anyio.run(go)


def test_last_event_id_gets_exactly_the_events_missed_across_a_restart(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    store_url = f"sqlite:///{tmp_path / 'events.db'}"
    server = ServeProcess(store_url, tmp_path / "artifacts", {}, server_factory)
    server.start()
    try:
        run_id: list[str] = []

        def create() -> None:
            answer = httpx.post(server.url + "/api/w/runs", json={"experiment": "resume"})
            run_id.append(answer.json()["id"])

        seen = take(server.url, 2, {}, create)
        assert [e["type"] for e in seen] == ["experiment.created", "run.started"]
        last = seen[-1]["id"]
        # the client is gone: one change through the server, then the server dies
        tagged = httpx.post(f"{server.url}/api/w/runs/{run_id[0]}/tags", json={"a": "1"})
        assert tagged.status_code < 300, tagged.text
        server.kill()
        write_directly(store_url, run_id[0], ["2", "3"])  # while no server runs
        server.start()

        def live() -> None:
            note = {"note": "after the restart"}
            assert httpx.post(f"{server.url}/api/w/runs/{run_id[0]}/note", json=note).is_success

        resumed = take(server.url, 4, {"Last-Event-ID": last}, live)
    finally:
        server.stop()
    ids = [int(e["id"]) for e in resumed]
    assert ids == list(range(int(last) + 1, int(last) + 5))  # each once, none skipped
    assert [e["type"] for e in resumed] == ["run.tagged"] * 3 + ["run.noted"]
    assert [e["data"]["tags"] for e in resumed[:3]] == [{"a": "1"}, {"step": "2"}, {"step": "3"}]
    assert all(e["runid"] == run_id[0] for e in resumed)


def test_a_run_whose_heartbeat_stops_is_reported_killed_by_the_server(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    store_url = f"sqlite:///{tmp_path / 'killed.db'}"
    env = {"CHACHAML_EVENTS_SWEEP_SECONDS": "0.05"}
    server = ServeProcess(store_url, tmp_path / "artifacts", env, server_factory)
    server.start()

    def start_silent_run() -> None:
        async def go() -> None:
            store = await open_store(store_url)
            try:
                await store.create_run(NewRun(id="silent", experiment="e", name=None,
                                              created_by="t", started_at=time.time() - 60,
                                              heartbeat_timeout=1.0))  # fmt: skip
            finally:
                await store.close()

        anyio.run(go)

    try:
        got = take(server.url, 3, {}, start_silent_run)
    finally:
        server.stop()
    assert [(e["type"], e["runid"]) for e in got] == [
        ("experiment.created", None), ("run.started", "silent"), ("run.killed", "silent")
    ]  # fmt: skip


def test_a_server_stops_at_once_while_clients_follow_the_stream(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    # every open browser tab on a live page holds a stream: uvicorn would wait for them all
    server = ServeProcess(f"sqlite:///{tmp_path / 'stop.db'}", tmp_path / "a", {}, server_factory)
    server.start()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(15.0)) as http,
            http.stream("GET", server.url + "/api/events") as response,
        ):
            lines = response.iter_lines()
            assert next(lines).startswith("retry:")  # subscribed
            began = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            rest = list(lines)  # the server ends the stream instead of waiting for it
            ended = time.monotonic() - began
        assert all(not line or line.startswith(":") for line in rest)
        assert ended < 5, f"the stream stayed open {ended:.1f} s after SIGTERM"
        deadline = time.monotonic() + 5
        while alive(server.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(server.pid), "the server did not exit within 5 s of SIGTERM"
    finally:
        server.stop()

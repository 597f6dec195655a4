"""Resource subscriptions through the MCP SDK's client: changes made by another process notify.

In memory on both backends (a real writer process on the same SQLite file or PostgreSQL
schema), in both eras of the protocol (``resources/subscribe``, ``subscriptions/listen``),
and once over real streamable HTTP against ``chachaml serve`` with a session.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from mcp import Client as MCPClient
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceUpdatedNotification

from chachaml.records.events import Event
from chachaml.records.registry import NewModelVersion
from chachaml.records.runs import ArtifactRecord
from chachaml.server.mcp.server import build_mcp
from chachaml.server.mcp.subscriptions import ResourceSubscriptions, resource_uris
from chachaml.store import ServerStore, open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.codec import make_chunk
from chachaml.tools.events import EventFeed
from tests.support.event_writes import new_run
from tests.support.mcp_seed import serving

# resources/subscribe is the handshake era's, and the SDK warns that 2026-07-28 dropped it
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]
# logs one metric point to each run named on a line of stdin, then says so
WRITER = """
import asyncio, sys
from chachaml.store import open_store
from chachaml.store.codec import make_chunk

async def main():
    store = await open_store(sys.argv[1])
    step = 0
    for line in sys.stdin:
        for run_id in line.split():
            step += 1
            await store.log_metrics([make_chunk(run_id, "loss", [(step, 1.0 / step, step)])])
        print("logged", flush=True)
    await store.close()

asyncio.run(main())
"""


class Updates:
    """The ``notifications/resources/updated`` a client received, in order."""

    def __init__(self) -> None:
        self.uris: list[str] = []
        self._changed = anyio.Event()

    async def __call__(self, message: object) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.uris.append(str(message.params.uri))
            self._changed.set()

    async def wait_for(self, uri: str, timeout: float = 15.0) -> None:
        with anyio.fail_after(timeout):
            while uri not in self.uris:
                self._changed = anyio.Event()
                await self._changed.wait()


@asynccontextmanager
async def subscribable(store: ServerStore, tmp_path: Path) -> AsyncIterator[MCPServer]:
    """A server with subscriptions, its feed and delivery running for the block."""
    feed = EventFeed(store)
    subscriptions = ResourceSubscriptions(store, feed)
    server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)), events=feed,
                       subscriptions=subscriptions)  # fmt: skip
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed.run)
        tasks.start_soon(subscriptions.run)
        yield server
        tasks.cancel_scope.cancel()


async def log_from_writer(writer: Process, *run_ids: str) -> None:
    assert writer.stdin is not None and writer.stdout is not None
    await writer.stdin.send((" ".join(run_ids) + "\n").encode())
    with anyio.fail_after(30):
        assert b"logged" in await writer.stdout.receive()


async def test_a_subscribed_run_logged_by_another_process_notifies_and_others_do_not(
    store_url: str, tmp_path: Path
) -> None:
    store = await open_store(store_url)
    for run_id in ("watched", "other"):
        await store.create_run(new_run(run_id, "mnist"))
    updates = Updates()
    watched, other = "chachaml://runs/watched", "chachaml://runs/other"
    try:
        async with (
            subscribable(store, tmp_path) as server,
            await anyio.open_process([sys.executable, "-c", WRITER, store_url]) as writer,
            MCPClient(server, mode="legacy", message_handler=updates) as mcp,
        ):
            resources = mcp.server_capabilities.resources
            assert resources is not None and resources.subscribe
            await mcp.subscribe_resource(watched)
            await mcp.subscribe_resource(watched)  # twice is once
            # the other run is logged first: by the time the watched run's update arrives,
            # the other run's event has been read and sent nothing
            await log_from_writer(writer, "other", "watched")
            await updates.wait_for(watched)
            assert updates.uris == [watched]
            await mcp.unsubscribe_resource(watched)
            await mcp.subscribe_resource(other)
            await log_from_writer(writer, "watched", "other")
            await updates.wait_for(other)
            assert updates.uris == [watched, other]
            assert writer.stdin is not None
            await writer.stdin.aclose()
    finally:
        await store.close()


async def test_bad_subscriptions_are_refused_and_listen_streams_get_updates_too(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    await store.create_run(new_run("r1", "mnist"))
    try:
        async with subscribable(store, tmp_path) as server:
            async with MCPClient(server, mode="legacy") as mcp:
                for uri, why in [
                    ("chachaml://runs/nope", "run 'nope' not found"),
                    ("chachaml://experiments/mnist", "use chachaml://runs/{run_id}"),
                    ("file:///etc/passwd", "use chachaml://runs/{run_id}"),
                    ("chachaml://models/none", "not found"),
                    ("chachaml://pipelines/none", "not found"),
                ]:
                    with pytest.raises(MCPError, match=re.escape(why)):
                        await mcp.subscribe_resource(uri)
                await mcp.unsubscribe_resource("chachaml://runs/never")  # nothing to stop: fine
            async with (
                MCPClient(server) as mcp,  # 2026-07-28: a listen stream, no session
                mcp.listen(resource_subscriptions=["chachaml://runs/r1"]) as sub,
            ):
                await store.log_metrics([make_chunk("r1", "loss", [(0, 0.5, 1.0)])])
                with anyio.fail_after(10):
                    event = await anext(aiter(sub))
                assert getattr(event, "uri", None) == "chachaml://runs/r1"
    finally:
        await store.close()


async def test_each_event_names_the_resources_it_changes(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        await store.create_run(new_run("r1", "mnist"))
        await store.add_artifact(ArtifactRecord(
            run_id="r1", name="model", content_type="application/octet-stream",
            serializer="bytes", size=1, sha256="0" * 64, uri="file:///x", created_at=time.time(),
        ))  # fmt: skip
        new = NewModelVersion(model="digits", run_id="r1", artifact="model", created_by="a",
                              stage="staging")  # fmt: skip
        await store.register_model_version(new)
        events: list[Event] = await store.read_events(0, 100)
        by_type = {e.type: resource_uris(e) for e in events}
        assert by_type["run.started"] == {"chachaml://runs/r1"}
        assert by_type["model.registered"] == {
            "chachaml://models/digits", "chachaml://models/digits/1",
            "chachaml://models/digits/staging",
        }  # fmt: skip
        assert by_type["experiment.created"] == set()
    finally:
        await store.close()


async def test_a_session_over_streamable_http_is_notified_of_another_process_writes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    store = await open_store(url)
    await store.create_run(new_run("r1", "mnist"))
    updates = Updates()
    try:
        with serving(url, tmp_path / "artifacts") as mcp_url:
            async with MCPClient(mcp_url, mode="legacy", message_handler=updates) as mcp:
                await mcp.subscribe_resource("chachaml://runs/r1")
                # this process is not the server: it writes to the same file
                await store.log_metrics([make_chunk("r1", "loss", [(0, 0.5, 1.0)])])
                await updates.wait_for("chachaml://runs/r1")
                read = await mcp.read_resource("chachaml://runs/r1")
                assert '"loss"' in str(read.contents[0])
    finally:
        await store.close()

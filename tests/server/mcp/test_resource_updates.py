"""Resource subscriptions through the MCP SDK's client: changes made by another process notify.

In memory on both backends (a real writer process on the same SQLite file or PostgreSQL
schema), in both eras of the protocol (``resources/subscribe``, ``subscriptions/listen``),
and once over real streamable HTTP against ``chachaml serve`` with a session.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client as MCPClient
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceUpdatedNotification

from chachaml.client.remote import open_any_store
from chachaml.server.mcp.resource_updates import (
    ResourceSubscriptions,
    check_resource,
    resource_uris,
)
from chachaml.server.mcp.server import build_mcp
from chachaml.store import ServerStore, open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.codec import make_chunk
from chachaml.tools.events import EventFeed, event_source
from tests.support.event_writes import new_run, write_every_type
from tests.support.mcp_seed import serving
from tests.support.waiting import await_for

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
async def subscribable(
    store: ServerStore, tmp_path: Path
) -> AsyncIterator[tuple[MCPServer, ResourceSubscriptions]]:
    """A server with subscriptions, its feed and delivery running for the block."""
    feed = EventFeed(store)
    subscriptions = ResourceSubscriptions(store, feed)
    server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)), events=feed,
                       subscriptions=subscriptions)  # fmt: skip
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed.run)
        tasks.start_soon(subscriptions.run)
        yield server, subscriptions
        tasks.cancel_scope.cancel()


@asynccontextmanager
async def writer_process(store_url: str) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Another process on the store: ``await log(*run_ids)`` has it log a point to each."""
    async with await anyio.open_process([sys.executable, "-c", WRITER, store_url]) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        replies = BufferedByteReceiveStream(proc.stdout)

        async def log(*run_ids: str) -> None:
            assert proc.stdin is not None
            await proc.stdin.send((" ".join(run_ids) + "\n").encode())
            with anyio.fail_after(30):
                assert await replies.receive_until(b"\n", 100) == b"logged"

        yield log
        await proc.stdin.aclose()


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
            subscribable(store, tmp_path) as (server, subscriptions),
            writer_process(store_url) as log_from_writer,
        ):
            async with MCPClient(server, mode="legacy", message_handler=updates) as mcp:
                resources = mcp.server_capabilities.resources
                assert resources is not None and resources.subscribe
                await mcp.subscribe_resource(watched)
                await mcp.subscribe_resource(watched)  # twice is once
                # the other run is logged first: by the time the watched run's update arrives,
                # the other run's event has been read and sent nothing
                await log_from_writer("other", "watched")
                await updates.wait_for(watched)
                assert updates.uris == [watched]
                await mcp.unsubscribe_resource(watched)
                await mcp.subscribe_resource(other)
                await log_from_writer("watched", "other")
                await updates.wait_for(other)
                assert updates.uris == [watched, other]

            async def idle() -> bool:
                return subscriptions.watched == 0 and subscriptions.feed.subscribers == 0

            # the session closed: its subscriptions ended, and nobody reads the outbox now
            await await_for(idle, why="the session's subscriptions ended with it")
    finally:
        await store.close()


async def test_bad_subscriptions_are_refused_and_listen_streams_get_updates_too(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    await store.create_run(new_run("r1", "mnist"))
    try:
        async with subscribable(store, tmp_path) as (server, _):
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
        await write_every_type(store, "t")
        changed: dict[str, set[str]] = {}
        for event in await store.read_events(0, 100):
            changed.setdefault(event.type, set()).update(resource_uris(event))
        model = "chachaml://models/t"
        assert changed["run.metrics"] == {"chachaml://runs/t-run"}
        assert changed["run.killed"] == {"chachaml://runs/t-stale"}
        assert changed["model.registered"] == {model, f"{model}/1", f"{model}/2",
                                               f"{model}/production"}  # fmt: skip
        assert changed["model.stage_changed"] == {model, f"{model}/1", f"{model}/production",
                                                  f"{model}/archived"}  # fmt: skip
        assert changed["model.alias_set"] == {model, f"{model}/2"}
        assert changed["pipeline.step_changed"] == {"chachaml://pipelines/t"}
        assert changed["experiment.created"] == changed["alert.fired"] == set()
        for uri in (model, f"{model}/2", f"{model}/archived", "chachaml://pipelines/t"):
            await check_resource(store, uri)  # each can be subscribed to
    finally:
        await store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``chachaml serve`` over a SQLite file: (the file's URL, the server's base URL)."""
    path = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{path / 'x.db'}"
    with serving(url, path / "artifacts") as mcp_url:
        yield url, mcp_url.removesuffix("/mcp")


async def test_a_session_over_streamable_http_is_notified_of_another_process_writes(
    served: tuple[str, str],
) -> None:
    url, base = served
    store = await open_store(url)
    await store.create_run(new_run("http-run", "mnist"))
    updates = Updates()
    try:
        async with MCPClient(f"{base}/mcp", mode="legacy", message_handler=updates) as mcp:
            await mcp.subscribe_resource("chachaml://runs/http-run")
            # this process is not the server: it writes to the same file
            await store.log_metrics([make_chunk("http-run", "loss", [(0, 0.5, 1.0)])])
            await updates.wait_for("chachaml://runs/http-run")
            read = await mcp.read_resource("chachaml://runs/http-run")
            assert '"loss"' in str(read.contents[0])
    finally:
        await store.close()


async def test_waits_and_subscriptions_work_over_a_remote_store(
    served: tuple[str, str], tmp_path: Path
) -> None:
    """``chachaml mcp --store http://...``: events come from the server's outbox over HTTP."""
    remote = await open_any_store(served[1])
    try:
        await remote.create_run(new_run("r1", "mnist"))
        source = event_source(remote)
        assert source is not None
        feed = EventFeed(source)
        subscriptions = ResourceSubscriptions(remote, feed)
        server = build_mcp(remote, artifacts=open_artifact_store(str(tmp_path)),
                           toolsets=["watch"], events=feed,
                           subscriptions=subscriptions)  # fmt: skip
        updates = Updates()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(feed.run)
            tasks.start_soon(subscriptions.run)
            async with MCPClient(server, mode="legacy", message_handler=updates) as mcp:
                await mcp.subscribe_resource("chachaml://runs/r1")

                async def train() -> None:
                    await anyio.wait_all_tasks_blocked()
                    await remote.log_metrics([make_chunk("r1", "loss", [(0, 0.9, 1.0)])])
                    await updates.wait_for("chachaml://runs/r1")
                    await remote.log_metrics([make_chunk("r1", "loss", [(1, 0.1, 2.0)])])

                tasks.start_soon(train)
                args = {"run_id": "r1", "until": "loss < 0.2", "timeout": 30}
                waited = await mcp.call_tool("wait_for_run", args)
                found = waited.structured_content or {}
                assert (found.get("outcome"), found.get("metrics")) == (
                    "condition", {"loss": 0.1}
                ), waited.content  # fmt: skip
            tasks.cancel_scope.cancel()
    finally:
        await remote.close()

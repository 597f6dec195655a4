"""Kept tool answers are never stale: a write from another process shows on the next call.

``list_runs`` and ``best_run`` answers are kept under the store's change marker; each test
calls a tool twice around a write made by a real writer process on the same SQLite file or
PostgreSQL schema, on both backends. The cache's own rules are checked on a counting
compute.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp_types import CallToolResult, TextContent

from chachaml.server.mcp.answer_cache import AnswerCache
from chachaml.server.mcp.server import build_mcp
from chachaml.store import Store, open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.codec import make_chunk
from tests.support.event_writes import new_run

pytestmark = pytest.mark.anyio

# each line of stdin is one write, answered "done" once committed
WRITER = """
import asyncio, sys, time
from chachaml.records.runs import NewRun
from chachaml.store import open_store
from chachaml.store.codec import make_chunk

async def main():
    store = await open_store(sys.argv[1])
    for line in sys.stdin:
        verb, run_id, *rest = line.split()
        if verb == "run":
            await store.create_run(NewRun(id=run_id, experiment="exp", name=run_id,
                                          created_by="writer", started_at=time.time(),
                                          heartbeat_timeout=60.0))
            await store.end_run(run_id, "completed", None, time.time())
        elif verb == "metric":
            await store.log_metrics([make_chunk(run_id, "acc", [(9, float(rest[0]), 9.0)])])
        elif verb == "tag":
            await store.set_tags(run_id, {rest[0]: rest[1]}, user="writer")
        elif verb == "archive":
            await store.set_run_archived(run_id, True)
        print("done", flush=True)
    await store.close()

asyncio.run(main())
"""

Write = Callable[[str], Awaitable[None]]


@asynccontextmanager
async def writer_process(store_url: str) -> AsyncIterator[Write]:
    """Another process on the store: ``await write("tag r1 k v")`` commits one write."""
    async with await anyio.open_process([sys.executable, "-c", WRITER, store_url]) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        replies = BufferedByteReceiveStream(proc.stdout)

        async def write(line: str) -> None:
            assert proc.stdin is not None
            await proc.stdin.send((line + "\n").encode())
            with anyio.fail_after(30):
                assert await replies.receive_until(b"\n", 100) == b"done"

        yield write
        await proc.stdin.aclose()


@asynccontextmanager
async def served(store_url: str, tmp_path: Path) -> AsyncIterator[tuple[Client, Store]]:
    """An in-memory MCP client of a server over a store of two completed runs (r1 newest)."""
    store = await open_store(store_url)
    try:
        for i, run_id in enumerate(("r0", "r1")):
            await store.create_run(new_run(run_id, "exp", started_at=time.time() - 100 + i))
            await store.log_metrics([make_chunk(run_id, "acc", [(0, 0.5 + i / 10, 1.0)])])
            await store.end_run(run_id, "completed", None, time.time())
        server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)))
        async with Client(server) as client:
            yield client, store
    finally:
        await store.close()


async def call(client: Client, tool: str, **args: Any) -> tuple[dict[str, Any], str]:
    result = await client.call_tool(tool, args)
    block = result.content[0]
    assert isinstance(block, TextContent)
    assert not result.is_error, block.text
    assert result.structured_content is not None
    return result.structured_content, block.text


async def test_list_runs_and_best_run_show_each_write_of_another_process_on_the_next_call(
    store_url: str, tmp_path: Path
) -> None:
    async with served(store_url, tmp_path) as (client, _), writer_process(store_url) as write:
        listing, _ = await call(client, "list_runs")
        assert [r["id"] for r in listing["runs"]] == ["r1", "r0"]
        assert await call(client, "list_runs") == await call(client, "list_runs")
        best, _ = await call(client, "best_run", metric="acc")
        assert best["best"]["run"]["id"] == "r1"

        await write("metric r0 0.9")  # a newer point of an existing run
        best, text = await call(client, "best_run", metric="acc")
        assert (best["best"]["run"]["id"], best["best"]["value"]) == ("r0", 0.9)
        assert "r0" in text
        listing, _ = await call(client, "list_runs")
        assert listing["runs"][1]["metrics"] == {"acc": 0.9}

        await write("tag r1 reviewed yes")
        listing, _ = await call(client, "list_runs")
        assert listing["runs"][0]["tags"] == {"reviewed": "yes"}

        await write("run r2")  # a new run, newest of all
        listing, text = await call(client, "list_runs")
        assert [r["id"] for r in listing["runs"]] == ["r2", "r1", "r0"]
        assert "r2" in text

        await write("archive r0")
        listing, _ = await call(client, "list_runs")
        assert [r["id"] for r in listing["runs"]] == ["r2", "r1"]
        best, _ = await call(client, "best_run", metric="acc")
        assert best["best"]["run"]["id"] == "r1"


async def test_a_listing_showing_a_running_run_is_computed_afresh(
    store_url: str, tmp_path: Path
) -> None:
    """Its status turns ``killed`` when the heartbeat stops, with no write to say so."""
    async with served(store_url, tmp_path) as (client, store):
        await store.create_run(new_run("live", "exp", heartbeat_timeout=0.5))
        listing, _ = await call(client, "list_runs")
        assert listing["runs"][0]["status"] == "running"
        with anyio.fail_after(10):
            while listing["runs"][0]["status"] == "running":  # the heartbeat's deadline
                await anyio.sleep(0.1)
                listing, _ = await call(client, "list_runs")
        assert listing["runs"][0]["status"] == "killed"


async def test_the_store_change_marker_moves_with_a_write_of_another_process_only(
    store_url: str,
) -> None:
    store = await open_store(store_url)
    try:
        await store.create_run(new_run("r0", "exp"))
        async with writer_process(store_url) as write:
            before = await still_marker(store)
            await write("tag r0 k v")
            assert await store.change_marker() != before
    finally:
        await store.close()


async def still_marker(store: Store) -> str:
    """A marker that a read of its own left unchanged: a read alone changes nothing.

    PostgreSQL's marker is the cluster's snapshot, so the other test workers' writes in their
    own schemas move it too (it errs towards "changed"); a few tries find a quiet moment.
    """
    for _ in range(50):
        before = await store.change_marker()
        assert before is not None
        if await store.change_marker() == before:
            return before
    raise AssertionError("every read moved the change marker")


class Markers:
    """A store stand-in for :class:`AnswerCache`: a marker set by the test."""

    def __init__(self) -> None:
        self.marker: str | None = "1"

    async def change_marker(self) -> str | None:
        return self.marker


async def test_the_cache_keeps_an_answer_while_the_marker_holds_and_only_if_allowed() -> None:
    markers = Markers()
    cache = AnswerCache(markers, size=2)  # type: ignore[arg-type]
    computed: list[str] = []

    def compute(key: str, keep: bool = True) -> Callable[[], Awaitable[tuple[Any, bool]]]:
        async def run() -> tuple[Any, bool]:
            computed.append(key)
            return CallToolResult(content=[TextContent(type="text", text=key)]), keep

        return run

    await cache.answer("a", compute("a"))
    await cache.answer("a", compute("a"))
    assert computed == ["a"]
    markers.marker = "2"  # a write
    await cache.answer("a", compute("a"))
    assert computed == ["a", "a"]
    await cache.answer("t", compute("t", keep=False))  # e.g. shows a running run
    await cache.answer("t", compute("t", keep=False))
    assert computed[2:] == ["t", "t"]
    await cache.answer("b", compute("b"))
    await cache.answer("c", compute("c"))  # size 2: "a" goes
    await cache.answer("a", compute("a"))
    assert computed[4:] == ["b", "c", "a"]
    markers.marker = None  # the store cannot tell: never kept
    await cache.answer("a", compute("a"))
    await cache.answer("a", compute("a"))
    assert computed[7:] == ["a", "a"]

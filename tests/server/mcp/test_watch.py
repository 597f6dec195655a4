"""The ``watch`` toolset through the MCP SDK's client, in memory, on both backends.

``wait_for_run`` returns as soon as a condition holds on metrics a training client logs
meanwhile, with progress notifications before; ``stop_run`` is attributed to the caller,
reaches the training client at its next heartbeat, and is left out of a read-only server.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from mcp import Client as MCPClient
from mcp_types import TextContent

from chachaml.client.client import Client
from chachaml.records.runs import StopRequest
from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from tests.support.waiting import wait_for

pytestmark = pytest.mark.anyio


def text_of(content: list[object]) -> str:
    block = content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_wait_for_run_returns_once_the_condition_holds_and_sends_progress(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    run = client.start_run("mnist", "watched")
    store = await open_store(store_url)
    server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)), toolsets=["watch"])
    reports: list[tuple[float, float | None, str | None]] = []
    got_progress = anyio.Event()
    held_at: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))
        got_progress.set()

    def train() -> None:  # the training client, in a thread of its own
        run.log_metric("val_loss", 0.9, step=0)
        client.flush()
        anyio.from_thread.run(got_progress.wait)
        run.log_metric("val_loss", 0.1, step=1)
        client.flush()
        held_at.append(time.monotonic())

    try:
        async with MCPClient(server) as mcp, anyio.create_task_group() as tasks:
            args = {"run_id": run.id, "until": "val_loss < 0.2", "timeout": 30}

            async def start_training() -> None:
                await anyio.wait_all_tasks_blocked()
                await anyio.to_thread.run_sync(train)

            tasks.start_soon(start_training)
            result = await mcp.call_tool("wait_for_run", args, progress_callback=on_progress)
            returned_at = time.monotonic()
        found = result.structured_content or {}
        assert not result.is_error, text_of(list(result.content))
        assert (found["outcome"], found["status"], found["metrics"]) == (
            "condition", "running", {"val_loss": 0.1}
        )  # fmt: skip
        assert "val_loss < 0.2 holds" in text_of(list(result.content))
        assert reports and reports[0][0] == 1 and "val_loss=0.9" in (reports[0][2] or "")
        assert returned_at - held_at[0] < 2.0  # woken by the event, not a slow poll
    finally:
        run.end()
        await store.close()


async def test_stop_run_is_attributed_to_the_caller_and_heard_at_the_next_heartbeat(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    stops: list[StopRequest] = []
    run = client.start_run("mnist", "hopeless", on_stop=stops.append)
    store = await open_store(store_url)
    server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)), toolsets=["watch"],
                       user="agent-ann")  # fmt: skip
    try:
        async with MCPClient(server) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            assert {"wait_for_run", "stop_run"} <= names
            asked = await mcp.call_tool("stop_run", {"run_id": run.id, "reason": "stalled"})
            request = asked.structured_content or {}
            assert (request["user"], request["reason"]) == ("agent-ann", "stalled")
            assert "Stop requested for run" in text_of(list(asked.content))
            # the client heartbeats every 0.2 s in tests
            wait_for(run.should_stop, timeout=5, why="the stop request reached the run")
            wait_for(lambda: stops, timeout=5, why="on_stop ran")
            assert stops == [run.stop_request] and stops[0].user == "agent-ann"
            run.end()
            assert run.status == "stopped"
            ended = await mcp.call_tool("get_run", {"run_id": run.id})
            assert (ended.structured_content or {})["status"] == "stopped"
            assert "stop requested by agent-ann" in text_of(list(ended.content))
            again = await mcp.call_tool("stop_run", {"run_id": run.id})
            assert again.is_error and "already ended (stopped)" in text_of(list(again.content))
            missing = await mcp.call_tool("stop_run", {"run_id": "nope", "reason": "x"})
            assert missing.is_error and "run 'nope' not found" in text_of(list(missing.content))
            waited = await mcp.call_tool("wait_for_run", {"run_id": "nope"})
            assert waited.is_error and "run 'nope' not found" in text_of(list(waited.content))
            bad = await mcp.call_tool("wait_for_run", {"run_id": run.id, "until": "tags.a = b"})
            assert bad.is_error and "metric conditions only" in text_of(list(bad.content))
    finally:
        await store.close()


async def test_a_read_only_server_has_no_stop_run_and_the_toolset_is_opt_in(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with MCPClient(build_mcp(store, toolsets=["watch"], read_only=True)) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            assert "wait_for_run" in names and "stop_run" not in names
            refused = await mcp.call_tool("stop_run", {"run_id": "r", "reason": "x"})
            assert refused.is_error and "Unknown tool: stop_run" in text_of(list(refused.content))
        async with MCPClient(build_mcp(store)) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            assert not names & {"wait_for_run", "stop_run"}
    finally:
        await store.close()

"""The ``subscriptions`` MCP toolset, in memory, over a real store and receiver (both backends).

Over stdio the local user is the admin; over HTTP in team mode an admin token is needed
(:mod:`tests.server.test_access`).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from mcp import Client as MCPClient
from mcp_types import TextContent

from chachaml.records.runs import NewRun
from chachaml.server.mcp.server import build_mcp
from chachaml.store import ServerStore
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools.catalogue import DEFAULT_TOOLS
from chachaml.tools.deliveries import drain_deliveries
from chachaml.tools.webhooks import Delivery
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.anyio
TOOLS = {"subscribe", "unsubscribe", "list_subscriptions"}
LOCAL = Delivery(timeout=1, attempts=2, backoff=0.01, allow_private=True)


def text_of(content: list[object]) -> str:
    block = content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_an_agent_subscribes_a_webhook_reads_its_log_and_unsubscribes(
    store: ServerStore, tmp_path: Path
) -> None:
    server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)),
                       toolsets=["subscriptions"], delivery=LOCAL, user="agent")  # fmt: skip
    with webhook_receiver() as receiver:
        async with MCPClient(server) as mcp:
            made = await mcp.call_tool("subscribe", {"url": receiver.url, "types": ["run.*"]})
            assert not made.is_error, text_of(list(made.content))
            sub = made.structured_content or {}
            assert (sub["types"], sub["created_by"]) == (["run.*"], "agent")
            run_id = uuid.uuid4().hex
            await store.create_run(NewRun(id=run_id, experiment="mnist", name=None,
                                          created_by="t", started_at=time.time(),
                                          heartbeat_timeout=60.0))  # fmt: skip
            await drain_deliveries(store, LOCAL)  # as the server's worker does
            listed = await mcp.call_tool("list_subscriptions", {})
            (shown,) = (listed.structured_content or {})["subscriptions"]
            assert (shown["id"], shown["delivered"], shown["pending"]) == (sub["id"], 1, 0)
            assert "run.*" in text_of(list(listed.content))
            gone = await mcp.call_tool("unsubscribe", {"id": sub["id"]})
            assert (gone.structured_content or {})["subscriptions"] == []
            missing = await mcp.call_tool("unsubscribe", {"id": sub["id"]})
            assert missing.is_error and "not found" in text_of(list(missing.content))
        assert [h.json["runid"] for h in receiver.received] == [run_id]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"url": "ftp://hooks.test/x"}, "http:// or https://"),
        ({"url": "https://hooks.test/x", "types": ["runs.*"]}, "matches no event type"),
        ({"url": "http://10.0.0.1/x"}, "not a public address"),
    ],
)
async def test_bad_subscriptions_are_tool_errors_that_say_why(
    store: ServerStore, arguments: dict[str, object], message: str
) -> None:
    async with MCPClient(build_mcp(store, toolsets=["subscriptions"])) as mcp:
        answer = await mcp.call_tool("subscribe", arguments)
        assert answer.is_error and message in text_of(list(answer.content))
        listed = await mcp.call_tool("list_subscriptions", {})
        assert (listed.structured_content or {})["subscriptions"] == []


async def test_the_toolset_is_opt_in_and_read_only_keeps_only_the_listing(
    store: ServerStore,
) -> None:
    async with MCPClient(build_mcp(store)) as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
    assert names == set(DEFAULT_TOOLS) and len(names) == 16
    async with MCPClient(build_mcp(store, toolsets=["subscriptions"], read_only=True)) as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
    assert names & TOOLS == {"list_subscriptions"}

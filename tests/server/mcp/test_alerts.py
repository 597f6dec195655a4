"""The ``alerts`` MCP toolset, in memory, over a real store and webhook receiver (both backends)."""

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
from chachaml.store.codec import make_chunk
from chachaml.tools import alerts as alert_ops
from chachaml.tools.deliveries import drain_deliveries
from chachaml.tools.webhooks import Delivery
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.anyio

TOOLS = {"list_alerts", "alert_history", "check_alerts"}


def text_of(content: list[object]) -> str:
    block = content[0]
    assert isinstance(block, TextContent)
    return block.text


async def bad_run(store: ServerStore) -> str:
    run_id = uuid.uuid4().hex
    now = time.time()
    await store.create_run(
        NewRun(
            id=run_id,
            experiment="mnist",
            name=None,
            created_by="tester",
            started_at=now,
            heartbeat_timeout=60.0,
        )
    )
    await store.log_metrics([make_chunk(run_id, "accuracy", [(0, 0.4, now)])])
    await store.end_run(run_id, "completed", None, now + 1)
    return run_id


async def test_agents_list_rules_check_them_and_read_what_fired(
    store: ServerStore, tmp_path: Path
) -> None:
    run_id = await bad_run(store)
    delivery = Delivery(base_url="https://ml.example.com", timeout=1, attempts=1,
                        allow_private=True)  # fmt: skip
    with webhook_receiver() as receiver:
        rule = alert_ops.build_rule(
            "acc-low",
            "tester",
            metric_key="accuracy",
            op="<",
            threshold=0.8,
            experiment="mnist",
            webhook_url=receiver.url,
        )
        await alert_ops.set_alert(store, rule, allow_private=True)
        server = build_mcp(
            store,
            artifacts=open_artifact_store(str(tmp_path)),
            toolsets=["alerts"],
            delivery=delivery,
        )
        async with MCPClient(server) as mcp:
            assert {t.name for t in (await mcp.list_tools()).tools} >= TOOLS
            listing = await mcp.call_tool("list_alerts", {})
            (shown,) = (listing.structured_content or {})["alerts"]
            assert shown["name"] == "acc-low" and shown["webhook"] == "http://127.0.0.1/…"
            assert "accuracy < 0.8" in text_of(list(listing.content))

            checked = await mcp.call_tool("check_alerts", {})
            (event,) = (checked.structured_content or {})["events"]
            assert (event["run_id"], event["delivery"]) == (run_id, "pending")  # queued
            assert "1 events" in text_of(list(checked.content))
            again = await mcp.call_tool("check_alerts", {})
            assert (again.structured_content or {})["events"] == []
            assert text_of(list(again.content)) == "No alert fired."

            await drain_deliveries(store, delivery)  # as the server's worker does
            history = await mcp.call_tool("alert_history", {"alert": "acc-low", "limit": 5})
            (past,) = (history.structured_content or {})["events"]
            assert past["id"] == event["id"] and len(past["attempts"]) == 1
            assert past["delivery"] == "delivered"
            missing = await mcp.call_tool("alert_history", {"alert": "nope"})
            assert missing.is_error and "alert 'nope' not found" in text_of(list(missing.content))
        (hit,) = receiver.received
        assert f"https://ml.example.com/runs/{run_id}" in hit.json["text"]


async def test_the_alerts_toolset_is_opt_in_and_read_only_drops_check_alerts(
    store: ServerStore,
) -> None:
    async with MCPClient(build_mcp(store)) as mcp:
        assert not {t.name for t in (await mcp.list_tools()).tools} & TOOLS
    async with MCPClient(build_mcp(store, toolsets=["alerts"], read_only=True)) as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert names & TOOLS == {"list_alerts", "alert_history"}

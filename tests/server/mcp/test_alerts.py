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

TOOLS = {"list_alerts", "alert_history", "check_alerts", "mute_alert", "send_test_alert"}


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


async def test_the_alerts_toolset_is_opt_in_and_read_only_keeps_only_the_reads(
    store: ServerStore,
) -> None:
    async with MCPClient(build_mcp(store)) as mcp:
        assert not {t.name for t in (await mcp.list_tools()).tools} & TOOLS
    async with MCPClient(build_mcp(store, toolsets=["alerts"], read_only=True)) as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert names & TOOLS == {"list_alerts", "alert_history"}
    async with MCPClient(build_mcp(store, toolsets=["alerts"])) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
    mute, test = tools["mute_alert"].annotations, tools["send_test_alert"].annotations
    assert mute is not None and test is not None
    assert (mute.read_only_hint, mute.destructive_hint, mute.idempotent_hint) == (False, True, True)
    assert (test.read_only_hint, test.idempotent_hint, test.open_world_hint) == (False, False, True)
    assert tools["list_alerts"].annotations.open_world_hint is False  # type: ignore[union-attr]


async def test_agents_mute_unmute_and_test_fire_a_rule(store: ServerStore, tmp_path: Path) -> None:
    run_id = await bad_run(store)
    delivery = Delivery(timeout=1, attempts=2, backoff=0.01, allow_private=True)
    with webhook_receiver() as receiver:
        rule = alert_ops.build_rule("acc-low", "tester", metric_key="accuracy", op="<",
                                    threshold=0.8, webhook_url=receiver.url)  # fmt: skip
        await alert_ops.set_alert(store, rule, allow_private=True)
        await alert_ops.set_alert(store, alert_ops.build_rule("quiet", "tester", silent_minutes=5))
        server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)),
                           toolsets=["alerts"], delivery=delivery)  # fmt: skip
        async with MCPClient(server) as mcp:
            muted = await mcp.call_tool("mute_alert", {"alert": "acc-low"})
            assert not muted.is_error and (muted.structured_content or {})["muted"] is True
            assert "is muted: it fires nothing" in text_of(list(muted.content))
            listing = text_of(list((await mcp.call_tool("list_alerts", {})).content))
            assert "| muted |" in listing
            assert "accuracy < 0.8 | http://127.0.0.1/… | true" in listing
            checked = await mcp.call_tool("check_alerts", {})
            assert (checked.structured_content or {})["events"] == []

            receiver.script[:] = [503, 200]
            test = await mcp.call_tool("send_test_alert", {"alert": "acc-low"})
            assert not test.is_error, text_of(list(test.content))
            trial = test.structured_content or {}
            assert trial["delivered"] is True and len(trial["attempts"]) == 2
            assert "Test event for 'acc-low' to http://127.0.0.1/…: delivered." in text_of(
                list(test.content)
            )
            assert receiver.received[-1].json["test"] is True

            unmuted = await mcp.call_tool("mute_alert", {"alert": "acc-low", "muted": False})
            assert (unmuted.structured_content or {})["muted"] is False
            (event,) = ((await mcp.call_tool("check_alerts", {})).structured_content or {})[
                "events"
            ]
            assert event["run_id"] == run_id

            for tool in ("mute_alert", "send_test_alert"):
                missing = await mcp.call_tool(tool, {"alert": "nope"})
                assert missing.is_error
                assert "alert 'nope' not found (alerts: acc-low, quiet)" in text_of(
                    list(missing.content)
                )
            bare = await mcp.call_tool("send_test_alert", {"alert": "quiet"})
            assert bare.is_error and "has no webhook to test" in text_of(list(bare.content))
            wrong = await mcp.call_tool("mute_alert", {"alert": "acc-low", "muted": "perhaps"})
            assert wrong.is_error and "muted" in text_of(list(wrong.content))

"""The ``pipelines`` MCP toolset, in memory, over pipelines that really ran (both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client as MCPClient
from mcp_types import TextContent

from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import PipelineFailed, Step, run_pipeline
from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store


def text_of(content: list[object]) -> str:
    block = content[0]
    assert isinstance(block, TextContent)
    return block.text


@pytest.mark.anyio
async def test_agents_list_pipelines_and_read_one_with_its_steps(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    done = run_pipeline(
        "etl", [Step("load", lambda c: {"rows": 3}), Step("fit", print)], client=client
    )
    with pytest.raises(PipelineFailed) as caught:
        run_pipeline("train", [Step("prep", lambda c: 1 / 0), Step("fit", print)], client=client)
    failed_id = caught.value.pipeline_id

    store = await open_store(store_url)
    server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path)), toolsets=["pipelines"])
    try:
        async with MCPClient(server) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            assert {"list_pipelines", "get_pipeline"} <= names
            listing = await mcp.call_tool("list_pipelines", {})
            found = (listing.structured_content or {})["pipelines"]
            assert [p["id"] for p in found] == [failed_id, done.id]
            assert found[0]["step_counts"] == {"failed": 1, "skipped": 1}
            assert "2 pipelines" in text_of(list(listing.content))
            failed_only = await mcp.call_tool("list_pipelines", {"status": "failed"})
            assert [p["name"] for p in (failed_only.structured_content or {})["pipelines"]] == [
                "train"
            ]

            detail = await mcp.call_tool("get_pipeline", {"pipeline_id": done.id})
            content = detail.structured_content or {}
            assert content["status"] == "completed" and content["run_id"] == done.run_id
            assert [(s["name"], s["depends_on"], s["status"]) for s in content["steps"]] == [
                ("load", [], "completed"),
                ("fit", ["load"], "completed"),
            ]
            assert content["steps"][0]["result"] == {"rows": 3}
            text = text_of(list(detail.content))
            assert "Pipeline 'etl'" in text and '{"rows": 3}' in text

            broken = await mcp.call_tool("get_pipeline", {"pipeline_id": failed_id})
            assert "ZeroDivisionError" in text_of(list(broken.content))
            missing = await mcp.call_tool("get_pipeline", {"pipeline_id": "nope"})
            assert missing.is_error and "pipeline 'nope' not found" in text_of(
                list(missing.content)
            )
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_pipelines_toolset_is_opt_in(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with MCPClient(build_mcp(store)) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
        assert not names & {"list_pipelines", "get_pipeline"}
    finally:
        await store.close()

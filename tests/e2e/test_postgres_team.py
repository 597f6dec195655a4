"""PostgreSQL for teams: a migrated store answers every MCP tool identically, and several
``chachaml serve`` processes on one database behave as one system."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client as MCPClient

from chachaml.cli import main
from chachaml.client.client import Client
from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools.catalogue import DEFAULT_TOOLS
from tests.conftest import make_settings
from tests.support.client_seed import seed
from tests.support.mcp_seed import serving
from tests.support.services import postgres_schema

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


async def call_all(url: str, artifacts: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    store = await open_store(url)
    try:
        server = build_mcp(store, artifacts=open_artifact_store(str(artifacts)))
        async with MCPClient(server) as mcp:
            answers = []
            for tool, args in calls:
                result = await mcp.call_tool(tool, args)
                assert not result.is_error, (tool, result.content)
                answers.append(result.structured_content)
            return answers
    finally:
        await store.close()


def test_a_migrated_store_answers_every_default_tool_identically(
    tmp_path: Path, pg_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'local.db'}"
    artifacts = tmp_path / "artifacts"
    local = Client(sqlite_url, str(artifacts), settings=make_settings())
    try:
        seed(local)
        runs = [r.id for r in local.runs(limit=None)]
    finally:
        local.close()
    assert main(["migrate", "--from", sqlite_url, "--to", pg_url]) == 0
    reads: list[tuple[str, dict[str, Any]]] = [
        ("list_runs", {}),
        ("list_runs", {"experiment": "vision", "status": "completed", "limit": 3}),
        ("get_run", {"run_id": runs[0]}),
        ("compare_runs", {"run_ids": runs[:3]}),
        ("search_runs", {"metric_key": "acc", "op": ">", "metric_value": 0.5}),
        ("best_run", {"metric": "loss", "direction": "min", "experiment": "vision"}),
        ("list_models", {}),
        ("get_model", {"model_name": "cnn"}),
        ("get_model_version", {"model_name": "cnn"}),
        ("get_model_version", {"model_name": "cnn", "stage": "archived"}),
        ("diff_model_versions", {"model_name": "cnn", "v1": 1, "v2": 3}),
        ("get_tags", {"run_id": runs[-1]}),
        ("get_datasets", {"run_id": runs[-1]}),
        ("list_experiments", {}),
        ("export_runs", {"experiment": "vision"}),
    ]
    writes: list[tuple[str, dict[str, Any]]] = [
        ("add_tag", {"run_id": runs[1], "key": "reviewed", "value": "yes"}),
        ("set_note", {"run_id": runs[1], "note": "checked"}),
        ("create_experiment", {"name": "next", "description": "d", "owner": "o"}),
    ]
    assert {tool for tool, _ in reads + writes} == set(DEFAULT_TOOLS)
    before = anyio.run(call_all, sqlite_url, artifacts, reads)
    after = anyio.run(call_all, pg_url, artifacts, reads)
    for (tool, _), a, b in zip(reads, before, after, strict=True):
        assert a == b, tool
    wrote_local = anyio.run(call_all, sqlite_url, artifacts, writes)
    wrote_team = anyio.run(call_all, pg_url, artifacts, writes)
    assert wrote_local[0] == wrote_team[0]  # the run's tags after add_tag
    assert wrote_local[2]["name"] == wrote_team[2]["name"] == "next"


def test_two_serve_processes_on_one_database_behave_as_one(tmp_path: Path, pg_url: str) -> None:
    client = Client(pg_url, str(tmp_path / "artifacts"), settings=make_settings())
    with client.run(experiment="shared") as run:
        client.log_metric("acc", 0.9)
    client.close()

    async def check(first: str, second: str) -> None:
        async with MCPClient(first) as a, MCPClient(second) as b:
            tagged = await a.call_tool("add_tag", {"run_id": run.id, "key": "via", "value": "a"})
            assert not tagged.is_error
            seen = await b.call_tool("get_tags", {"run_id": run.id})
            assert seen.structured_content is not None
            assert "via" in str(seen.structured_content)
            made = await b.call_tool("create_experiment", {"name": "from-b"})
            assert not made.is_error
            listed = await a.call_tool("list_experiments", {})
            assert "from-b" in str(listed.structured_content)
            best = [await c.call_tool("best_run", {"metric": "acc"}) for c in (a, b)]
            assert best[0].structured_content == best[1].structured_content

    with (
        serving(pg_url, tmp_path / "artifacts") as first,
        serving(pg_url, tmp_path / "artifacts") as second,
    ):
        anyio.run(check, first, second)

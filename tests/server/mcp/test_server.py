"""The default catalogue end to end through the MCP SDK's in-memory client.

Every test runs against the store of :mod:`tests.support.mcp_seed`. The same tests run again,
all over one connection per transport, over a real stdio subprocess and over real HTTP in
:mod:`tests.e2e.test_mcp_transports` (``BEHAVIOURS`` below is that list).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, TextContent

from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools.catalogue import DEFAULT_TOOLS, SPECS
from tests.support.mcp_seed import IRIS, MID, NEW, OLD, seeded_store

Seeded = tuple[str, Path]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    import anyio

    path = tmp_path_factory.mktemp("mcp")
    return anyio.run(seeded_store, path), path / "artifacts"


@pytest.fixture(scope="module")
async def mcp(seeded: Seeded) -> AsyncIterator[Client]:
    """One MCP client for the module, connected in memory to a server over the seeded store."""
    url, artifacts = seeded
    store = await open_store(url)
    try:
        server = build_mcp(store, artifacts=open_artifact_store(str(artifacts)))
        async with Client(server) as client:
            yield client
    finally:
        await store.close()


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def ok(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, text(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, f"{tool}({args}) should fail"
    return text(result)


def ids(listing: dict[str, Any]) -> list[str]:
    return [r["id"] for r in listing["runs"]]


@pytest.mark.anyio
async def test_tools_list_is_exactly_the_default_16_with_schemas_and_annotations(
    mcp: Client,
) -> None:
    tools = (await mcp.list_tools()).tools
    assert sorted(t.name for t in tools) == sorted(DEFAULT_TOOLS)
    assert len(tools) == 16
    for tool in tools:
        assert (tool.description and "Example" in tool.description) or tool.name in {
            "list_experiments",
            "list_models",
        }
        assert tool.output_schema is not None
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is not SPECS[tool.name].writes
    by_name = {t.name: t for t in tools}
    status = by_name["list_runs"].input_schema["properties"]["status"]
    assert "killed" in str(status)


@pytest.mark.anyio
async def test_run_listings_filter_by_experiment_status_user_and_iso_dates(mcp: Client) -> None:
    everything = await ok(mcp, "list_runs")
    assert ids(everything) == [IRIS, NEW, MID, OLD]
    assert everything["more"] is False

    page = await mcp.call_tool("list_runs", {"experiment": "mnist", "limit": 2})
    assert ids(page.structured_content or {}) == [NEW, MID]
    assert "(more runs match" in text(page)
    assert (page.structured_content or {})["more"] is True
    assert (await ok(mcp, "list_runs", experiment="mnist", limit=3))["more"] is False

    assert ids(await ok(mcp, "list_runs", status="failed")) == [NEW]
    assert ids(await ok(mcp, "list_runs", created_by="bo")) == [IRIS]
    window = await ok(mcp, "list_runs", since="2025-02-01", until="2025-03-10T00:00:00Z")
    assert ids(window) == [NEW, MID]


@pytest.mark.anyio
async def test_get_run_compare_search_best_and_export_return_the_seeded_values(
    mcp: Client,
) -> None:
    run = await ok(mcp, "get_run", run_id=MID)
    assert run["params"] == {"lr": 0.01, "depth": 4}
    assert run["metrics"]["acc"] == pytest.approx(0.92)
    assert run["tags"]["reviewed"] == "yes"

    comparison = await ok(mcp, "compare_runs", run_ids=[OLD, MID])
    assert comparison["differing_params"] == ["depth", "lr"]
    assert comparison["metrics"]["acc"] == {OLD: pytest.approx(0.7), MID: pytest.approx(0.92)}

    assert ids(await ok(mcp, "search_runs", metric_key="acc", op=">=", metric_value=0.9)) == [
        IRIS,
        MID,
    ]
    assert ids(await ok(mcp, "search_runs", metric_key="acc", op="<", metric_value=0.65)) == [NEW]

    best = await mcp.call_tool("best_run", {"metric": "acc"})
    assert (best.structured_content or {})["best"]["run"]["id"] == IRIS
    assert IRIS in text(best) and "0.97" in text(best)
    mnist_loss = await ok(mcp, "best_run", metric="loss", experiment="mnist", direction="min")
    assert mnist_loss["best"]["run"]["id"] == MID
    january = await ok(mcp, "best_run", metric="acc", since="2025-01-01", until="2025-02-01")
    assert january["best"]["run"]["id"] == OLD
    nothing = await mcp.call_tool("best_run", {"metric": "f1"})
    assert (nothing.structured_content or {})["best"] is None
    assert "No run has logged metric 'f1'" in text(nothing)

    export = await ok(mcp, "export_runs", experiment="mnist", limit=2)
    assert [r["id"] for r in export["records"]] == [NEW, MID]
    assert export["more"] is True
    assert export["records"][1]["params.lr"] == 0.01


@pytest.mark.anyio
async def test_datasets_tags_and_experiments_are_read_back(mcp: Client) -> None:
    datasets = await ok(mcp, "get_datasets", run_id=OLD)
    assert datasets["datasets"][0]["name"] == "mnist-train"
    assert datasets["datasets"][0]["n_rows"] == 60000
    assert (await ok(mcp, "get_tags", run_id=MID))["tags"]["reviewed"] == "yes"
    experiments = {e["name"]: e for e in (await ok(mcp, "list_experiments"))["experiments"]}
    assert experiments["mnist"]["run_count"] == 3
    assert experiments["mnist"]["owner"] == "ana"
    assert experiments["iris"]["run_count"] == 1


@pytest.mark.anyio
async def test_registry_reads_show_versions_stages_and_diffs(mcp: Client) -> None:
    models = (await ok(mcp, "list_models"))["models"]
    assert [(m["name"], m["version_count"], m["production_version"]) for m in models] == [
        ("digits", 2, 2)
    ]
    model = await ok(mcp, "get_model", model_name="digits")
    assert [(v["version"], v["stage"]) for v in model["versions"]] == [
        (2, "production"),
        (1, "staging"),
    ]
    production = await ok(mcp, "get_model_version", model_name="digits")
    assert (production["version"], production["run_id"]) == (2, MID)
    assert (await ok(mcp, "get_model_version", model_name="digits", stage="staging"))[
        "version"
    ] == 1
    assert (await ok(mcp, "get_model_version", model_name="digits", version=1))["run_id"] == OLD
    diff = await ok(mcp, "diff_model_versions", model_name="digits", v1=1, v2=2)
    assert diff["params"]["lr"]["v1"] == 0.1 and diff["params"]["lr"]["v2"] == 0.01
    assert diff["metrics"]["acc"]["delta"] == pytest.approx(0.22)
    assert diff["artifact_changed"] is True


@pytest.mark.anyio
async def test_writes_tag_note_and_create_experiment(mcp: Client) -> None:
    suffix = uuid.uuid4().hex[:8]  # each connection writes names of its own
    tags = await ok(mcp, "add_tag", run_id=NEW, key=f"seen-{suffix}", value="yes")
    assert tags["tags"][f"seen-{suffix}"] == "yes"
    assert (await ok(mcp, "get_tags", run_id=NEW))["tags"][f"seen-{suffix}"] == "yes"

    await ok(mcp, "set_note", run_id=OLD, note=f"# Baseline\nnoted by {suffix}")
    assert (await ok(mcp, "get_run", run_id=OLD))["note"] == f"# Baseline\nnoted by {suffix}"

    created = await ok(mcp, "create_experiment", name=f"cifar-{suffix}", owner="cy")
    assert (created["name"], created["owner"], created["run_count"]) == (
        f"cifar-{suffix}",
        "cy",
        0,
    )
    names = [e["name"] for e in (await ok(mcp, "list_experiments"))["experiments"]]
    assert f"cifar-{suffix}" in names


BAD_ARGUMENTS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("list_runs", {"status": "bogus"}, ["status", "running", "completed", "failed", "killed"]),
    ("list_runs", {"limit": 0}, ["limit", "greater than or equal to 1"]),
    ("list_runs", {"limit": 500}, ["limit", "less than or equal to 200"]),
    ("list_runs", {"since": "last tuesday"}, ["since must be an ISO date", "2026-01-31"]),
    ("best_run", {"metric": "acc", "until": "soon"}, ["until must be an ISO date"]),
    (
        "best_run",
        {"metric": "acc", "since": "2025-03-01", "until": "2025-01-01"},
        ["since", "must be before until"],
    ),
    ("best_run", {"metric": "acc", "direction": "up"}, ["direction", "'max'", "'min'"]),
    ("best_run", {}, ["best_run: argument 'metric' is required."]),
    ("compare_runs", {"run_ids": [MID]}, ["run_ids", "at least 2"]),
    ("search_runs", {"metric_key": "acc"}, ["metric_key, op and metric_value go together"]),
    ("search_runs", {"metric_key": "acc", "op": "~", "metric_value": 1}, ["op", "'>='"]),
    ("get_model_version", {"model_name": "digits", "stage": "live"}, ["stage", "production"]),
    ("get_model_version", {"model_name": "digits", "version": 0}, ["version"]),
    ("create_experiment", {"name": "  "}, ["experiment name must be a non-empty string"]),
    ("export_runs", {"limit": 5000}, ["limit", "less than or equal to 1000"]),
]

UNKNOWN_THINGS: list[tuple[str, dict[str, Any], str]] = [
    ("get_run", {"run_id": "nope"}, "run 'nope' not found"),
    ("get_tags", {"run_id": "nope"}, "run 'nope' not found"),
    ("get_datasets", {"run_id": "nope"}, "run 'nope' not found"),
    ("add_tag", {"run_id": "nope", "key": "k", "value": "v"}, "run 'nope' not found"),
    ("set_note", {"run_id": "nope", "note": "x"}, "run 'nope' not found"),
    ("compare_runs", {"run_ids": [MID, "nope"]}, "run 'nope' not found"),
    ("get_model", {"model_name": "nope"}, "nope"),
    ("get_model_version", {"model_name": "digits", "version": 9}, "9"),
    ("get_model_version", {"model_name": "nope"}, "nope"),
    ("diff_model_versions", {"model_name": "digits", "v1": 1, "v2": 9}, "9"),
    ("no_such_tool", {}, "Unknown tool: no_such_tool"),
]


@pytest.mark.anyio
async def test_bad_arguments_are_tool_errors_naming_the_field_and_what_is_allowed(
    mcp: Client,
) -> None:
    for tool, args, expected in BAD_ARGUMENTS:
        message = await error(mcp, tool, **args)
        for fragment in expected:
            assert fragment in message, f"{tool}({args}): {message!r} lacks {fragment!r}"
    assert ids(await ok(mcp, "list_runs", limit=1)) == [IRIS]  # still serving


@pytest.mark.anyio
async def test_unknown_runs_models_and_versions_are_tool_errors_saying_so(mcp: Client) -> None:
    for tool, args, expected in UNKNOWN_THINGS:
        message = await error(mcp, tool, **args)
        assert expected in message, f"{tool}({args}): {message!r}"
        if tool != "no_such_tool":
            assert "not found" in message or "no version" in message or "no " in message
    assert (await ok(mcp, "get_run", run_id=MID))["name"] == "wider"  # still serving


BEHAVIOURS: list[Callable[[Client], Awaitable[None]]] = [
    test_tools_list_is_exactly_the_default_16_with_schemas_and_annotations,
    test_run_listings_filter_by_experiment_status_user_and_iso_dates,
    test_get_run_compare_search_best_and_export_return_the_seeded_values,
    test_datasets_tags_and_experiments_are_read_back,
    test_registry_reads_show_versions_stages_and_diffs,
    test_writes_tag_note_and_create_experiment,
    test_bad_arguments_are_tool_errors_naming_the_field_and_what_is_allowed,
    test_unknown_runs_models_and_versions_are_tool_errors_saying_so,
]

"""Opt-in toolsets, read-only mode, resources and prompts, in memory; the catalogue itself."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp_types import ImageContent, TextContent, TextResourceContents

from chachaml.errors import InvalidInput
from chachaml.records.runs import MetricSeries
from chachaml.server.mcp.metrics import join_on_step
from chachaml.server.mcp.server import build_mcp
from chachaml.store import Store, open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools.catalogue import DEFAULT_TOOLS, parse_toolsets, selected_tools
from tests.support.mcp_seed import CHACHAML, MID, OLD, PNG_1PX, seeded_store


@pytest.fixture(scope="module")
def seeded_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One seeded store for the module's read-only tests: (URL, artifact root)."""
    import anyio

    path = tmp_path_factory.mktemp("toolsets")
    return anyio.run(seeded_store, path), path / "artifacts"


@pytest.fixture
async def seeded(seeded_once: tuple[str, Path]) -> AsyncIterator[tuple[Store, Path]]:
    url, artifacts = seeded_once
    store = await open_store(url)
    try:
        yield store, artifacts
    finally:
        await store.close()


@pytest.fixture
async def own_seeded(tmp_path: Path) -> AsyncIterator[tuple[Store, Path]]:
    """A seeded store of the test's own, for a test that writes."""
    store = await open_store(await seeded_store(tmp_path))
    try:
        yield store, tmp_path / "artifacts"
    finally:
        await store.close()


def connect(seeded: tuple[Store, Path], **options: object) -> Client:
    store, artifacts = seeded
    server = build_mcp(store, artifacts=open_artifact_store(str(artifacts)), **options)  # type: ignore[arg-type]
    return Client(server)


def only_text(blocks: list[object]) -> str:
    assert isinstance(blocks[0], TextContent)
    return blocks[0].text


def test_toolsets_parse_from_a_comma_list_and_reject_unknown_names() -> None:
    assert parse_toolsets("metrics, registry") == ("metrics", "registry")
    assert parse_toolsets("all") == (
        "metrics", "artifacts", "registry", "pipelines", "alerts", "experiments", "watch",
        "subscriptions",
    )  # fmt: skip
    assert parse_toolsets(None) == ()
    with pytest.raises(InvalidInput, match="unknown toolset 'pipes'; choose from metrics"):
        parse_toolsets("pipes")


def test_read_only_drops_every_write_and_toolsets_add_to_the_16() -> None:
    assert len(DEFAULT_TOOLS) == 16
    read_only = selected_tools(read_only=True)
    assert set(DEFAULT_TOOLS) - set(read_only) == {"add_tag", "set_note", "create_experiment"}
    everything = selected_tools(
        [
            "metrics",
            "artifacts",
            "registry",
            "pipelines",
            "alerts",
            "experiments",
            "watch",
            "subscriptions",
        ]
    )
    assert set(everything) - set(DEFAULT_TOOLS) == {
        "get_metric_history",
        "plot_metrics",
        "list_artifacts",
        "read_artifact",
        "promote_model",
        "set_model_note",
        "list_pipelines",
        "get_pipeline",
        "list_alerts",
        "alert_history",
        "check_alerts",
        "mute_alert",
        "send_test_alert",
        "rename_experiment",
        "archive_experiment",
        "set_experiment_tag",
        "wait_for_run",
        "stop_run",
        "subscribe",
        "unsubscribe",
        "list_subscriptions",
    }


def test_metric_histories_join_on_step_and_downsample_to_bucket_ends() -> None:
    loss = MetricSeries(
        run_id="r",
        key="loss",
        steps=list(range(10)),
        values=[10.0 - s for s in range(10)],
        timestamps=[0.0] * 10,
    )
    val = MetricSeries(run_id="r", key="val", steps=[4, 9], values=[0.5, 0.25], timestamps=[0, 0])
    full = join_on_step([loss, val], 100)
    assert full.steps == list(range(10)) and not full.downsampled
    assert full.values["val"][4] == 0.5 and full.values["val"][5] is None
    small = join_on_step([loss, val], 2)
    assert small.steps == [4, 9] and small.downsampled
    assert small.values == {"loss": [6.0, 1.0], "val": [0.5, 0.25]}
    assert small.points == 12


@pytest.mark.anyio
async def test_read_only_server_lists_no_write_tools_and_refuses_them(
    seeded: tuple[Store, Path],
) -> None:
    async with connect(seeded, read_only=True, toolsets=["registry"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == set(selected_tools(["registry"], read_only=True))
        assert not names & {"add_tag", "set_note", "create_experiment", "promote_model"}
        refused = await client.call_tool("add_tag", {"run_id": MID, "key": "k", "value": "v"})
        assert refused.is_error and "Unknown tool: add_tag" in only_text(list(refused.content))


@pytest.mark.anyio
async def test_metrics_toolset_returns_joined_history_and_a_png_chart(
    seeded: tuple[Store, Path],
) -> None:
    async with connect(seeded, toolsets=["metrics"]) as client:
        history = await client.call_tool(
            "get_metric_history", {"run_id": MID, "keys": ["acc", "loss"]}
        )
        assert history.structured_content == {
            "run_id": MID,
            "keys": ["acc", "loss"],
            "steps": [0, 1, 2],
            "values": {"acc": [0.6, 0.8, 0.92], "loss": [0.9, 0.5, 0.3]},
            "points": 6,
            "downsampled": False,
        }
        missing = await client.call_tool("get_metric_history", {"run_id": MID, "keys": ["f1"]})
        assert missing.is_error and "has no metric 'f1'" in only_text(list(missing.content))
        chart = await client.call_tool("plot_metrics", {"run_id": MID, "keys": ["loss"]})
        image = chart.content[0]
        assert isinstance(image, ImageContent) and image.mime_type == "image/png"
        assert base64.b64decode(image.data).startswith(b"\x89PNG")


@pytest.mark.anyio
async def test_artifacts_toolset_reads_text_tables_and_images(seeded: tuple[Store, Path]) -> None:
    async with connect(seeded, toolsets=["artifacts"]) as client:
        listing = await client.call_tool("list_artifacts", {"run_id": MID})
        names = [a["name"] for a in (listing.structured_content or {})["artifacts"]]
        assert sorted(names) == ["curve.png", "model.bin", "notes.txt", "recall"]

        async def read(name: str) -> list[object]:
            result = await client.call_tool("read_artifact", {"run_id": MID, "name": name})
            assert not result.is_error, result.content
            return list(result.content)

        assert only_text(await read("notes.txt")) == "trained on 4 GPUs"
        assert "label | recall" in only_text(await read("recall"))
        image = (await read("curve.png"))[0]
        assert isinstance(image, ImageContent)
        assert base64.b64decode(image.data) == PNG_1PX
        missing = await client.call_tool("read_artifact", {"run_id": MID, "name": "nope"})
        assert missing.is_error and "has no artifact 'nope'" in only_text(list(missing.content))


@pytest.mark.anyio
async def test_registry_toolset_promotes_and_notes_a_model(
    own_seeded: tuple[Store, Path],
) -> None:
    async with connect(own_seeded, toolsets=["registry"], user="agent") as client:
        promoted = await client.call_tool(
            "promote_model",
            {"model_name": "digits", "version": 1, "stage": "production", "reason": "rollback"},
        )
        assert (promoted.structured_content or {})["stage"] == "production"
        model = await client.call_tool("get_model", {"model_name": "digits"})
        content = model.structured_content or {}
        assert content["production_version"] == 1
        assert content["history"][-1]["user"] == "agent"
        noted = await client.call_tool(
            "set_model_note", {"model_name": "digits", "note": "v1 back"}
        )
        assert (noted.structured_content or {})["note"] == "v1 back"
        bad = await client.call_tool(
            "promote_model", {"model_name": "digits", "version": 1, "stage": "live"}
        )
        assert bad.is_error and "stage" in only_text(list(bad.content))


@pytest.mark.anyio
async def test_experiments_toolset_renames_archives_and_tags_as_the_caller(
    own_seeded: tuple[Store, Path],
) -> None:
    store = own_seeded[0]
    async with connect(own_seeded, toolsets=["experiments"], user="agent") as client:
        renamed = await client.call_tool(
            "rename_experiment", {"name": "mnist", "new_name": "digits-mnist"}
        )
        assert (renamed.structured_content or {})["name"] == "digits-mnist"
        archived = await client.call_tool("archive_experiment", {"name": "digits-mnist"})
        assert (archived.structured_content or {})["archived"] is True
        restored = await client.call_tool(
            "archive_experiment", {"name": "digits-mnist", "archived": False}
        )
        assert (restored.structured_content or {})["archived"] is False
        tagged = await client.call_tool(
            "set_experiment_tag", {"name": "digits-mnist", "key": "team", "value": "vision"}
        )
        assert (tagged.structured_content or {})["tags"] == {"team": "vision"}
        untagged = await client.call_tool(
            "set_experiment_tag", {"name": "digits-mnist", "key": "team"}
        )
        assert (untagged.structured_content or {})["tags"] == {}
        taken = await client.call_tool(
            "rename_experiment", {"name": "digits-mnist", "new_name": "iris"}
        )
        assert taken.is_error
        default = await client.call_tool("rename_experiment", {"name": "default", "new_name": "x"})
        assert default.is_error and "keeps its name" in only_text(list(default.content))
    events = await store.read_events(0, 10_000)  # type: ignore[attr-defined]
    edits = [(e.type, e.data["user"]) for e in events if e.type.startswith("experiment.")
             and e.type != "experiment.created"]  # fmt: skip
    assert edits == [("experiment.renamed", "agent"), ("experiment.archived", "agent"),
                     ("experiment.restored", "agent"), ("experiment.tagged", "agent"),
                     ("experiment.tagged", "agent")]  # fmt: skip


@pytest.mark.anyio
async def test_runs_models_and_pipelines_are_resources(seeded: tuple[Store, Path]) -> None:
    async with connect(seeded) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "chachaml://runs/{run_id}",
            "chachaml://models/{name}",
            "chachaml://models/{name}/{version}",
            "chachaml://pipelines/{pipeline_id}",
        }
        model = (await client.read_resource("chachaml://models/digits")).contents[0]
        assert isinstance(model, TextResourceContents) and '"version": 2' in model.text
        with pytest.raises(Exception, match="not found"):
            await client.read_resource("chachaml://pipelines/nope")
        run = (await client.read_resource(f"chachaml://runs/{OLD}")).contents[0]
        assert isinstance(run, TextResourceContents) and '"name": "baseline"' in run.text
        version = (await client.read_resource("chachaml://models/digits/production")).contents[0]
        assert isinstance(version, TextResourceContents) and f'"run_id": "{MID}"' in version.text
        with pytest.raises(Exception, match="run 'nope' not found"):
            await client.read_resource("chachaml://runs/nope")


@pytest.mark.anyio
async def test_prompts_analyse_an_experiment_and_compare_the_last_runs(
    seeded: tuple[Store, Path],
) -> None:
    async with connect(seeded) as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
        assert names == {"analyse_experiment", "compare_last_runs"}
        prompt = await client.get_prompt("analyse_experiment", {"experiment": "mnist"})
        body = prompt.messages[0].content
        assert isinstance(body, TextContent) and "experiment='mnist'" in body.text
        last = await client.get_prompt("compare_last_runs", {"n": "3"})
        content = last.messages[0].content
        assert isinstance(content, TextContent) and "last 3 runs" in content.text


def test_claude_desktop_example_launches_the_installed_mcp_command() -> None:
    import json
    import shutil

    root = Path(__file__).resolve().parents[3]
    config = json.loads((root / "claude_desktop_config.example.json").read_text())
    server = config["mcpServers"]["chachaml"]
    assert server["args"][0] == "mcp"
    # an absolute placeholder: clients start the command without a shell or PATH
    assert Path(server["command"]).is_absolute() and server["command"].startswith("/absolute/")
    assert Path(CHACHAML).name == Path(server["command"]).name
    assert shutil.which(Path(server["command"]).name, path=str(Path(CHACHAML).parent))
    assert all(
        a.startswith(("mcp", "--", "sqlite:////absolute/", "/absolute/")) for a in server["args"]
    )
    assert parse_toolsets(server["env"]["CHACHAML_MCP_TOOLSETS"]) == ("metrics", "artifacts")

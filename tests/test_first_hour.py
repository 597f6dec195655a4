"""The first hour: stores not created by accident, one CLI grammar, MCP client configs, and MCP
answers that say when the store is empty or an experiment is mistyped.

The configs that start real servers are in :mod:`tests.e2e.test_mcp_setup`, the missing extras
(each in a fresh interpreter) in :mod:`tests.e2e.test_imports`."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from mcp import Client as MCPClient
from mcp_types import TextContent

import chachaml as ml
from chachaml.cli import build_parser, main
from chachaml.client.client import Client
from chachaml.errors import InvalidInput, NotFound
from chachaml.records.runs import NewRun
from chachaml.server.mcp import client_config as cc
from chachaml.server.mcp.server import build_mcp
from chachaml.store import open_store
from tests.support.mcp_seed import open_seeded

pytestmark = pytest.mark.anyio
T = TypeVar("T")


def _text(result: object) -> str:
    content = result.content  # type: ignore[attr-defined]
    assert isinstance(content[0], TextContent)
    return content[0].text


async def test_a_store_in_a_folder_that_does_not_exist_is_an_error_naming_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'typo' / 'chachaml.db'}"
    with pytest.raises(InvalidInput, match=f"does not exist: {tmp_path / 'typo'}"):
        await open_store(url)
    assert not (tmp_path / "typo").exists()


def test_every_surface_refuses_a_store_folder_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'absolute' / 'path' / 'to' / 'chachaml.db'}"
    for argv in (
        ["--store", url, "runs"],
        ["runs", "--store", url],
        ["experiments", "--store", url],
    ):
        assert main(argv) == 2
        assert f"does not exist: {tmp_path / 'absolute' / 'path' / 'to'}" in capsys.readouterr().err
    client = Client(store=url, artifacts=str(tmp_path / "a"))
    try:
        with pytest.raises(InvalidInput, match="does not exist"):
            client.runs()
    finally:
        client.close()
    assert not (tmp_path / "absolute").exists()


def test_global_options_work_before_or_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'cli.db'}", "--artifacts", str(tmp_path / "a")]
    assert main(["demo", "--runs", "1", *store]) == 0
    capsys.readouterr()
    assert main(["runs", "--json", *store]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 1
    assert main(["show", runs[0]["id"][:12], *store]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == runs[0]["id"]
    assert main(["best", "accuracy", *store]) == 0
    assert "accuracy=" in capsys.readouterr().out


def test_help_is_plain_text_not_rst() -> None:
    assert "``" not in build_parser().format_help()


def test_best_says_when_the_experiment_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'cli.db'}", "--artifacts", str(tmp_path / "a")]
    assert main([*store, "demo", "--runs", "1"]) == 0
    capsys.readouterr()
    assert main([*store, "best", "accuracy", "-e", "dmeo"]) == 1
    assert "there is no experiment 'dmeo' (did you mean 'demo'?)" in capsys.readouterr().out


async def test_the_mcp_server_names_its_version_and_its_store(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with MCPClient(build_mcp(store)) as mcp:
            assert mcp.server_info is not None and mcp.server_info.version == ml.__version__
            assert mcp.instructions is not None and str(tmp_path / "x.db") in mcp.instructions
    finally:
        await store.close()


async def test_an_empty_store_says_so_instead_of_no_runs_match(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        async with MCPClient(build_mcp(store)) as mcp:
            for tool, args in (
                ("list_runs", {}),
                ("search_runs", {}),
                ("best_run", {"metric": "accuracy"}),
            ):
                text = _text(await mcp.call_tool(tool, args))
                assert f"the store sqlite:///{tmp_path / 'empty.db'} holds no runs yet" in text
    finally:
        await store.close()


async def test_a_mistyped_experiment_gets_did_you_mean(tmp_path: Path) -> None:
    async with open_seeded(tmp_path) as store, MCPClient(build_mcp(store)) as mcp:
        experiments = json.loads(
            json.dumps((await mcp.call_tool("list_experiments", {})).structured_content)
        )
        name = experiments["experiments"][0]["name"]
        typo = name[0] + name[2] + name[1] + name[3:]  # two letters swapped
        for tool, args in (
            ("list_runs", {"experiment": typo}),
            ("search_runs", {"experiment": typo}),
            ("best_run", {"metric": "accuracy", "experiment": typo}),
            ("export_runs", {"experiment": typo}),
        ):
            text = _text(await mcp.call_tool(tool, args))
            assert f"there is no experiment {typo!r} (did you mean {name!r}" in text, (tool, text)
        text = _text(await mcp.call_tool("list_runs", {"experiment": "zzzzqqq"}))
        assert "there is no experiment 'zzzzqqq'" in text and "did you mean" not in text


@pytest.mark.parametrize("client", cc.CLIENTS)
def test_mcp_config_names_absolute_paths(
    client: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["mcp", "config", "--client", client, "--store", "sqlite:///rel.db"]) == 0
    out = capsys.readouterr().out
    assert f"sqlite:///{tmp_path / 'rel.db'}" in out
    assert str(tmp_path / "chachaml-artifacts") in out
    if client == "claude-code":
        argv = shlex.split(out)
        command = argv[argv.index("--") + 1]
    elif client == "continue":
        command = json.loads(next(x for x in out.splitlines() if "command:" in x).split(": ", 1)[1])
    else:
        parsed = json.loads(out)
        command = (parsed.get("mcpServers") or parsed["servers"])["chachaml"]["command"]
    assert Path(command).is_absolute() and os.access(command, os.X_OK), command


async def test_mcp_argument_errors_name_the_argument_the_value_and_what_is_allowed(
    tmp_path: Path,
) -> None:
    async with open_seeded(tmp_path) as store, MCPClient(build_mcp(store)) as mcp:
        cases: dict[tuple[str, str], tuple[dict[str, object], str]] = {
            ("list_runs", "status"): (
                {"status": "done"},
                "list_runs: argument 'status' was 'done'; input should be 'running', 'completed',"
                " 'failed', 'killed' or 'stopped'.",
            ),
            ("list_runs", "limit"): (
                {"limit": "lots"},
                "argument 'limit' was 'lots'; input should",
            ),
            ("best_run", "metric"): ({}, "best_run: argument 'metric' is required."),
            ("compare_runs", "run_ids"): (
                {"run_ids": ["a"]},
                "argument 'run_ids' was ['a']; list should have at least 2 items",
            ),
            ("list_runs", "bogus"): (
                {"experiment": "x", "bogus": 1},
                "list_runs: unknown argument 'bogus'; it takes experiment, status, limit,",
            ),
        }
        for (tool, _), (args, expected) in cases.items():
            result = await mcp.call_tool(tool, args)
            text = _text(result)
            assert result.is_error and expected in text, (tool, text)
            assert "pydantic" not in text and "http" not in text and "\n" not in text
        ok = await mcp.call_tool("list_runs", {"limit": "2"})  # JSON-ish strings still coerce
        assert not ok.is_error


async def test_tools_that_overwrite_are_annotated_destructive(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with MCPClient(build_mcp(store)) as mcp:
            tools = {t.name: t for t in (await mcp.list_tools()).tools}
    finally:
        await store.close()
    for name in ("add_tag", "set_note", "create_experiment"):
        annotations = tools[name].annotations
        assert annotations is not None and annotations.destructive_hint is True, name
        assert annotations.read_only_hint is False
    listing = tools["list_runs"].annotations
    assert listing is not None and listing.read_only_hint is True


async def test_get_pipeline_given_a_run_id_names_the_pipeline_to_ask_for(tmp_path: Path) -> None:
    from chachaml.client.pipelines.pipeline import run_pipeline
    from chachaml.errors import NotFound
    from chachaml.tools import pipelines as pipeline_ops

    url = f"sqlite:///{tmp_path / 'p.db'}"
    client = Client(store=url, artifacts=str(tmp_path / "a"))
    try:
        done = await anyio_to_thread(lambda: run_pipeline("etl", [_one], client=client))
        with client.start_run(experiment="loose") as loose:
            pass
    finally:
        client.close()
    store = await open_store(url)
    try:
        assert (await pipeline_ops.get_pipeline(store, done.id)).id == done.id
        with pytest.raises(NotFound, match=f"run of pipeline {done.id!r}; ask for {done.id!r}"):
            await pipeline_ops.get_pipeline(store, done.run_id)
        with pytest.raises(NotFound, match="belongs to no pipeline"):
            await pipeline_ops.get_pipeline(store, loose.id)
        with pytest.raises(NotFound, match=r"pipeline 'nope' not found$"):
            await pipeline_ops.get_pipeline(store, "nope")
    finally:
        await store.close()


def _one(ctx: object) -> int:
    return 1


async def anyio_to_thread(fn: Callable[[], T]) -> T:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(fn)


def test_long_copies_show_progress_on_a_terminal_and_nothing_in_a_log() -> None:
    import io

    from chachaml.cli.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    drawn, logged = Terminal(), io.StringIO()
    with Progress(drawn) as bars:
        for done in range(0, 11):
            bars("runs", done, 10)
        bars("models", 3, 3)
    assert "runs" in drawn.getvalue() and "10/10" in drawn.getvalue() and "3/3" in drawn.getvalue()
    with Progress(logged) as quiet:
        quiet("runs", 5, 10)
    assert logged.getvalue() == ""


async def test_a_copied_id_prefix_works_on_every_surface(tmp_path: Path) -> None:
    import httpx

    from chachaml.server.app import create_app
    from chachaml.store.artifacts import open_artifact_store
    from chachaml.tools import runs as run_ops

    url = f"sqlite:///{tmp_path / 'ids.db'}"
    client = Client(store=url, artifacts=str(tmp_path / "a"))
    try:
        with client.run("ids") as run:
            client.log_metric("acc", 0.5)
        assert client.get_run(run.id[:12]).id == run.id  # Python API
        client.set_run_tag(run.id[:8], "seen", "yes")
        assert client.metric_history(run.id[:10], "acc").values == [0.5]
    finally:
        client.close()
    assert main(["show", run.id[:12], "--store", url]) == 0  # CLI
    store = await open_store(url)
    try:
        async with MCPClient(build_mcp(store)) as mcp:  # MCP
            found = await mcp.call_tool("get_run", {"run_id": run.id[:12]})
            assert not found.is_error and (found.structured_content or {})["id"] == run.id
        app = create_app(store, artifacts=open_artifact_store(str(tmp_path / "a")), user="me")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as web:
            page = await web.get(f"/runs/{run.id[:12]}")  # UI
            assert page.status_code == 200 and run.id in page.text
            twin = await web.get(f"/api/runs/{run.id[:12]}")  # its JSON twin
            assert twin.status_code == 200 and run.id in twin.text
        # two runs sharing a prefix: an error listing both, never a guess
        for suffix in ("0" * 24, "1" * 24):
            await store.create_run(
                NewRun(id="abcdef01" + suffix, experiment="ids", name=None, created_by="me",
                       started_at=1.0, heartbeat_timeout=30.0)
            )  # fmt: skip
        with pytest.raises(InvalidInput, match="'abcdef01' is ambiguous: it starts abcdef01"):
            await run_ops.get_run(store, "abcdef01")
        with pytest.raises(NotFound):
            await run_ops.get_run(store, "fedcba98")  # no such prefix: not found, as before
        with pytest.raises(NotFound):
            await run_ops.get_run(store, "abc")  # too short to be a prefix
    finally:
        await store.close()


async def test_a_misspelt_metric_or_a_pipeline_name_gets_a_hint(tmp_path: Path) -> None:
    from chachaml.client.pipelines.pipeline import run_pipeline
    from chachaml.tools import pipelines as pipeline_ops

    async with open_seeded(tmp_path) as store, MCPClient(build_mcp(store)) as mcp:
        text = _text(await mcp.call_tool("best_run", {"metric": "acq"}))
        assert text.endswith("(all runs): did you mean 'acc'?"), text
    url = f"sqlite:///{tmp_path / 'p.db'}"
    client = Client(store=url, artifacts=str(tmp_path / "a"))
    try:
        done = await anyio_to_thread(lambda: run_pipeline("nightly", [_one], client=client))
    finally:
        client.close()
    opened = await open_store(url)
    try:
        with pytest.raises(NotFound, match=f"that is a pipeline name; .*{done.id}"):
            await pipeline_ops.get_pipeline(opened, "nightly")
    finally:
        await opened.close()


@pytest.mark.postgres
def test_migrating_to_a_postgres_schema_that_does_not_exist_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.services import POSTGRES_URL

    source = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["demo", "--runs", "1", "--store", source, "--artifacts", str(tmp_path)]) == 0
    capsys.readouterr()
    sep = "&" if "?" in POSTGRES_URL else "?"
    target = f"{POSTGRES_URL}{sep}options=-csearch_path%3Dno_such_schema_here"
    assert main(["migrate", "--from", source, "--to", target]) == 2
    err = capsys.readouterr().err
    assert "cannot prepare the store" in err and "create the schema" in err
    assert "Traceback" not in err

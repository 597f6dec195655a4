"""One validation at every boundary, the same on SQLite and PostgreSQL (issue 15, findings 9, 12).

Each test drives a real store (both backends where storage is involved), the HTTP app in
memory, the MCP server in memory, or the Python client: hostile input gets a clear
``InvalidInput`` (HTTP 422, an MCP tool error), never a 500 or a driver error.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client as McpClient
from mcp_types import TextContent

import chachaml.store.artifacts as artifact_store
from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import Pipeline, Step, pipelines
from chachaml.client.registry import Registry
from chachaml.errors import InvalidInput, NotFound, StoreUnavailable
from chachaml.records import validation
from chachaml.records.runs import NewRun
from chachaml.server.app import create_app
from chachaml.server.mcp.server import build_mcp
from chachaml.store import ServerStore, open_store
from chachaml.store.artifacts import LocalArtifactStore, open_artifact_store
from chachaml.store.sqlite import SQLiteStore
from chachaml.tools import alerts as alert_ops
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import pipelines as pipeline_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio
NUL = "a\x00b"
AUTH: dict[str, str] = {}  # a local server (loopback, no tokens) takes same-origin writes
BASE = "http://127.0.0.1"
OCTETS = "application/octet-stream"


@pytest.fixture
async def api(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in memory over ``store``, as a local ``chachaml serve`` runs it."""
    app = create_app(store, artifacts=open_artifact_store(str(tmp_path / "a")))
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, headers={"Origin": BASE}
    ) as client:
        yield client


async def _run(api: httpx.AsyncClient, **body: object) -> str:
    r = await api.post("/api/w/runs", json={"experiment": "e", **body}, headers=AUTH)
    assert r.status_code == 201, r.text
    run_id: str = r.json()["id"]
    return run_id


def _is_422(r: httpx.Response, *words: str) -> None:
    assert r.status_code == 422, (r.status_code, r.text)
    text = r.text.lower()
    for word in words:
        assert word.lower() in text, (word, r.text)


# 1. NUL characters: refused with InvalidInput on both backends, everywhere ----------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/w/runs", {"experiment": "e", "tags": {"k": NUL}}),
        ("/api/w/runs", {"experiment": "e", "params": {"k": NUL}}),
        ("/api/w/runs", {"experiment": "e", "name": NUL}),
        ("/api/w/runs", {"experiment": NUL}),
        ("{run}/tags", {"k": NUL}),
        ("{run}/params", {"k": NUL}),
        ("{run}/note", {"note": NUL}),
        ("{run}/end", {"status": "failed", "error": NUL}),
        ("/api/w/experiments", {"name": "x", "description": NUL}),
        ("/api/w/experiments", {"name": "x", "owner": NUL}),
        ("/api/store/v1/runs/query", {"experiment": NUL}),
        ("/api/store/v1/runs/query", {"created_by": NUL}),
        ("/api/store/v1/runs/query", {"tags": {"a": NUL}}),
        ("/api/store/v1/runs/query", {"params": {"a": NUL}}),
        ("/api/store/v1/runs/count", {"experiment": NUL}),
    ],
)
async def test_nul_in_any_text_of_a_json_body_is_a_422(
    api: httpx.AsyncClient, store: ServerStore, path: str, body: dict[str, Any]
) -> None:
    rid = await _run(api)
    r = await api.post(path.replace("{run}", f"/api/w/runs/{rid}"), json=body, headers=AUTH)
    _is_422(r, "NUL")
    run = await store.get_run(rid)
    assert run.status == "running" and not run.tags and not run.params and run.note in (None, "")


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/ab%00c",
        "/runs/ab%00c",
        "/api/runs?experiment=a%00b",
        "/api/runs?user=a%00b",
        "/api/runs?q=tags.a%3D%22a%00b%22",
        "/api/runs?q=params.a%3D%22a%00b%22",
        "/api/runs?q=a%00b",
        "/api/experiments/a%00b",
        "/api/export?experiment=a%00b",
    ],
)
async def test_nul_in_a_path_segment_or_filter_of_the_ui_is_a_422(
    api: httpx.AsyncClient, path: str
) -> None:
    await _run(api)
    r = await api.get(path)
    _is_422(r, "NUL")


async def test_the_python_api_refuses_nul_text_on_both_backends(store: ServerStore) -> None:
    await store.create_run(_new_run("r1"))
    for attempt in (
        lambda: run_ops.set_note(store, "r1", NUL),
        lambda: run_ops.add_tag(store, "r1", "k", NUL),
        lambda: experiment_ops.create_experiment(store, "x", description=NUL),
        lambda: experiment_ops.create_experiment(store, "x", owner=NUL),
        lambda: run_ops.list_runs(store, experiment=NUL),
        lambda: run_ops.list_runs(store, created_by=NUL),
        lambda: run_ops.search_runs(store, tags={"k": NUL}),
        lambda: run_ops.search_runs(store, params={"k": NUL}),
        lambda: run_ops.get_run(store, NUL),
        lambda: run_ops.export_runs(store, experiment=NUL),
    ):
        with pytest.raises(InvalidInput, match="NUL"):
            await attempt()
    run = await store.get_run("r1")
    assert run.note in (None, "") and not run.tags


async def test_mcp_tools_answer_nul_text_with_a_tool_error_naming_it(
    store_url: str, tmp_path: Path
) -> None:
    store = await open_store(store_url)
    try:
        await store.create_run(_new_run("r1"))
        server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path / "a")))
        async with McpClient(server) as mcp:
            for tool, args in (
                ("set_note", {"run_id": "r1", "note": NUL}),
                ("add_tag", {"run_id": "r1", "key": "k", "value": NUL}),
                ("create_experiment", {"name": "x", "description": NUL}),
                ("list_runs", {"experiment": NUL}),
                ("get_run", {"run_id": NUL}),
            ):
                result = await mcp.call_tool(tool, args)
                assert result.is_error, (tool, args)
                block = result.content[0]
                assert isinstance(block, TextContent)
                assert "NUL" in block.text, block.text  # the reason, not a bare failure
    finally:
        await store.close()


# 2. limit and offset are bounded ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "word"),
    [({"limit": -1}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset")],
)
async def test_a_negative_limit_or_offset_on_a_run_query_is_a_422(
    api: httpx.AsyncClient, body: dict[str, int], word: str
) -> None:
    await _run(api)
    _is_422(await api.post("/api/store/v1/runs/query", json=body, headers=AUTH), word)


async def test_the_tools_refuse_a_negative_offset(store: ServerStore) -> None:
    with pytest.raises(InvalidInput, match="offset"):
        await run_ops.list_runs(store, offset=-1)


# 3. length limits --------------------------------------------------------------------------


async def test_notes_descriptions_tags_and_params_have_length_limits(store: ServerStore) -> None:
    await store.create_run(_new_run("r1"))
    with pytest.raises(InvalidInput, match="100000"):
        await run_ops.set_note(store, "r1", "x" * 100_001)
    await run_ops.set_note(store, "r1", "x" * 100_000)
    with pytest.raises(InvalidInput, match="100000"):
        await experiment_ops.create_experiment(store, "x", description="d" * 100_001)
    with pytest.raises(InvalidInput, match="5000"):
        await run_ops.add_tag(store, "r1", "k", "v" * 5001)
    await run_ops.add_tag(store, "r1", "k", "v" * 5000)
    with pytest.raises(InvalidInput, match="6000"):
        await store.log_params("r1", validation.params({"p": "v" * 6001}))
    run = await store.get_run("r1")
    assert len(run.note or "") == 100_000 and run.tags == {"k": "v" * 5000} and not run.params


@pytest.mark.parametrize(
    ("path", "body", "limit"),
    [
        ("{run}/note", {"note": "x" * 100_001}, "100000"),
        ("/api/w/experiments", {"name": "x", "description": "d" * 100_001}, "100000"),
        ("{run}/tags", {"k": "v" * 5001}, "5000"),
        ("{run}/params", {"k": "v" * 6001}, "6000"),
        ("/api/w/runs", {"experiment": "e" * 501}, "500"),
        (
            "/api/w/models",
            {"name": "m", "run_id": "r", "artifact": "a", "description": "d" * 100_001},
            "100000",
        ),
    ],
)
async def test_http_bodies_over_a_length_limit_are_a_422_naming_it(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], limit: str
) -> None:
    rid = await _run(api)
    r = await api.post(path.replace("{run}", f"/api/w/runs/{rid}"), json=body, headers=AUTH)
    _is_422(r, limit)


async def test_mcp_set_note_over_the_limit_is_a_tool_error(store_url: str, tmp_path: Path) -> None:
    store = await open_store(store_url)
    try:
        await store.create_run(_new_run("r1"))
        server = build_mcp(store, artifacts=open_artifact_store(str(tmp_path / "a")))
        async with McpClient(server) as mcp:
            result = await mcp.call_tool("set_note", {"run_id": "r1", "note": "x" * 100_001})
            assert result.is_error
            block = result.content[0]
            assert isinstance(block, TextContent) and "100000" in block.text
        assert (await store.get_run("r1")).note in (None, "")
    finally:
        await store.close()


# 4. step overflow ---------------------------------------------------------------------------


async def test_a_default_step_after_the_last_int64_step_is_a_422_not_a_500(
    api: httpx.AsyncClient, store: ServerStore
) -> None:
    rid = await _run(api)
    last = {"metrics": [{"key": "x", "value": 1.0, "step": 2**63 - 1}]}
    assert (await api.post(f"/api/w/runs/{rid}/metrics", json=last, headers=AUTH)).is_success
    for body in ({"x": 2.0}, {"metrics": [{"key": "x", "value": 2.0}]}):
        r = await api.post(f"/api/w/runs/{rid}/metrics", json=body, headers=AUTH)
        _is_422(r, "overflow")
    assert (await store.metric_history(rid, "x")).steps == [2**63 - 1]


def test_the_python_client_refuses_a_step_past_the_last_int64(
    store_url: str, tmp_path: Path
) -> None:
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=make_settings())
    try:
        with client.start_run("e") as run:
            run.log_metric("x", 1.0, step=2**63 - 1)
            with pytest.raises(InvalidInput, match="overflow"):
                run.log_metric("x", 2.0)
        assert client.metric_history(run.id, "x").steps == [2**63 - 1]
        assert client.get_run(run.id).status == "completed"
    finally:
        client.close()


# 5. times out of range ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("when", ["0001-01-01T00:00:00", "1969-12-31T23:59:59+00:00"])
async def test_a_time_before_1970_is_a_422(api: httpx.AsyncClient, field: str, when: str) -> None:
    await _run(api)
    r = await api.post("/api/store/v1/runs/query", json={field: when}, headers=AUTH)
    _is_422(r, field)
    _is_422(await api.get(f"/api/runs?{field}={when.replace('+', '%2B')}"), field)


async def test_the_tools_refuse_times_before_1970(store: ServerStore) -> None:
    with pytest.raises(InvalidInput, match="1970"):
        await run_ops.list_runs(store, since="0001-01-01T00:00:00")
    with pytest.raises(InvalidInput, match="1970"):
        await run_ops.best_run(store, "m", until="0001-01-01")


# 6. the HTTP API accepts no more than the Python API ---------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"x": "1"},
        {"x": True},
        {"metrics": [{"key": "x", "value": "1"}]},
        {"metrics": [{"key": "x", "value": False}]},
        {"metrics": [{"key": "x", "value": 1.0, "step": "3"}]},
    ],
)
async def test_metric_values_must_be_numbers_over_http(
    api: httpx.AsyncClient, store: ServerStore, body: dict[str, Any]
) -> None:
    rid = await _run(api)
    _is_422(await api.post(f"/api/w/runs/{rid}/metrics", json=body, headers=AUTH))
    assert (await store.get_run(rid)).metrics == {}


async def test_integer_metric_values_are_still_numbers(api: httpx.AsyncClient) -> None:
    rid = await _run(api)
    r = await api.post(f"/api/w/runs/{rid}/metrics", json={"x": 3}, headers=AUTH)
    assert r.json() == {"points": 1}


@pytest.mark.parametrize("timeout", [1e400, -1, 0, 8 * 86400])
async def test_a_heartbeat_timeout_must_be_finite_positive_and_at_most_a_week(
    api: httpx.AsyncClient, timeout: float
) -> None:
    raw = '{"experiment": "e", "heartbeat_timeout": ' + repr(timeout).replace("inf", "1e400") + "}"
    r = await api.post(
        "/api/w/runs", content=raw, headers={**AUTH, "content-type": "application/json"}
    )
    _is_422(r, "heartbeat_timeout")


async def test_a_run_cannot_end_before_it_started(
    api: httpx.AsyncClient, store: ServerStore
) -> None:
    started = time.time() - 100
    rid = await _run(api, started_at=started)
    r = await api.post(
        f"/api/w/runs/{rid}/end", json={"status": "completed", "ended_at": started - 1},
        headers=AUTH,
    )  # fmt: skip
    _is_422(r, "ended_at")
    assert (await store.get_run(rid)).status == "running"
    r = await api.post(
        f"/api/w/runs/{rid}/end", json={"status": "completed", "ended_at": started}, headers=AUTH
    )
    assert r.status_code == 200, r.text


# 7. a full disk on SQLite names the real cause ----------------------------------------------


async def test_a_full_sqlite_disk_reports_the_full_disk_not_a_rollback_error(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'full.db'}")
    assert isinstance(store, SQLiteStore)
    try:
        await store.create_run(_new_run("r1"))
        (pages,) = store.database._writer.execute("PRAGMA page_count").fetchone()
        store.database._writer.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreUnavailable) as caught:
            for i in range(1000):
                await store.set_note("r1", f"{i}" + "x" * 50_000)
        assert "full" in str(caught.value), str(caught.value)
        assert "rollback" not in str(caught.value)
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "full.db") as db:  # the file is still a sound database
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# 8. CSV export escapes formula cells ----------------------------------------------------------


async def test_the_csv_export_defuses_formula_cells_but_keeps_numbers(
    api: httpx.AsyncClient,
) -> None:
    rid = await _run(
        api,
        name='=HYPERLINK("http://evil")',
        tags={"a": "+1+cmd", "b": "@SUM(A1)", "c": "\tx", "d": "\rx", "e": "-2+3"},
        params={"neg": -0.5, "text": "=1+1", "ok": "plain"},
    )
    r = await api.post(f"/api/w/runs/{rid}/metrics", json={"loss": -1.5}, headers=AUTH)
    assert r.is_success
    export = await api.get("/api/export")
    assert export.status_code == 200
    (row,) = list(csv.DictReader(io.StringIO(export.text)))
    assert row["name"] == '\'=HYPERLINK("http://evil")'
    assert (row["tags.a"], row["tags.b"], row["tags.c"], row["tags.d"], row["tags.e"]) == (
        "'+1+cmd", "'@SUM(A1)", "'\tx", "'\rx", "'-2+3"
    )  # fmt: skip
    assert (row["params.neg"], row["params.text"], row["params.ok"]) == ("-0.5", "'=1+1", "plain")
    assert row["metrics.loss"] == "-1.5"


# 9. experiments with a slash in the name have pages ------------------------------------------


async def test_an_experiment_named_with_a_slash_has_a_page_and_json_twin(
    api: httpx.AsyncClient,
) -> None:
    await _run(api, experiment="team/mnist")
    page = await api.get("/experiments/team/mnist")
    assert page.status_code == 200 and "team/mnist" in page.text
    twin = await api.get("/api/experiments/team%2Fmnist")
    assert twin.status_code == 200 and twin.json()["experiment"]["name"] == "team/mnist"
    assert len(twin.json()["runs"]) == 1


# 10. artifact 404s name the run and artifact, never a filesystem path --------------------------


async def test_a_missing_artifact_file_is_a_404_without_the_artifact_root(
    api: httpx.AsyncClient, store: ServerStore, tmp_path: Path
) -> None:
    rid = await _run(api)
    files = {"file": ("model.bin", b"weights", "application/octet-stream")}
    r = await api.post(f"/api/w/runs/{rid}/artifacts", files=files, headers=AUTH)
    assert r.status_code == 201, r.text
    uri = r.json()["uri"]
    root = tmp_path / "a"
    LocalArtifactStore(root).path_of(_object(uri)).unlink()
    for path in (f"/api/artifacts/{rid}/model.bin", f"/api/artifacts/{rid}/model.bin?download=1"):
        missing = await api.get(path)
        assert missing.status_code == 404, (path, missing.status_code, missing.text)
        assert str(root) not in missing.text and str(tmp_path) not in missing.text
        assert "model.bin" in missing.text and rid in missing.text
    with pytest.raises(NotFound) as caught:
        await LocalArtifactStore(root).get_bytes(uri)
    assert str(tmp_path) not in str(caught.value)


# 11. artifact records must name stored objects -------------------------------------------------


async def test_an_artifact_record_for_an_object_never_uploaded_is_a_422(
    api: httpx.AsyncClient, store: ServerStore
) -> None:
    rid = await _run(api)
    digest = "ab" * 32
    record = {"name": "ghost.bin", "uri": f"objects/ab/{digest[2:]}", "sha256": digest, "size": 3}
    r = await api.post(f"/api/w/runs/{rid}/artifact-records", json=record, headers=AUTH)
    _is_422(r, "ghost.bin")
    assert await store.list_artifacts(rid) == []
    up = await api.post(
        "/api/w/objects", content=b"abc",
        headers={**AUTH, "content-type": "application/octet-stream"},
    )  # fmt: skip
    assert up.status_code == 201, up.text
    real = {"name": "real.bin", **up.json()}
    r = await api.post(f"/api/w/runs/{rid}/artifact-records", json=real, headers=AUTH)
    assert r.status_code == 201, r.text
    wrong_size = {**real, "name": "lying.bin", "size": 4}
    r = await api.post(f"/api/w/runs/{rid}/artifact-records", json=wrong_size, headers=AUTH)
    _is_422(r, "lying.bin")


# 12. deleting archived runs never removes bytes another run has just logged --------------------


async def test_the_archive_sweep_keeps_a_file_logged_again_after_the_delete(
    store: ServerStore, tmp_path: Path
) -> None:
    artifacts = open_artifact_store(str(tmp_path / "a"))
    await store.create_run(_new_run("old"))
    await artifact_ops.put_bytes(
        store, artifacts, "old", "w.bin", b"same bytes", content_type=OCTETS, serializer="bytes"
    )
    await store.end_run("old", "completed", None, time.time())
    assert await store.archive_runs(time.time() + 10, None) == 1
    deleted, uris = await store.delete_archived()  # committed: the old run's file is unused
    assert deleted == 1 and len(uris) == 1
    # before the files are swept, another run logs identical bytes (the object is reused)
    await store.create_run(_new_run("new"))
    art = await artifact_ops.put_bytes(
        store, artifacts, "new", "w.bin", b"same bytes", content_type=OCTETS, serializer="bytes"
    )
    assert art.uri == uris[0]
    await artifact_store.sweep_unused(store, artifacts, uris)
    _, data = await artifact_ops.read_bytes(store, artifacts, "new", "w.bin")
    assert data == b"same bytes"
    # and once nothing references it, the sweep removes it
    await store.end_run("new", "completed", None, time.time())
    await store.archive_runs(time.time() + 10, None)
    _, uris = await store.delete_archived()
    await artifact_store.sweep_unused(store, artifacts, uris)
    with pytest.raises(NotFound):
        await artifacts.get_bytes(art.uri)


# 13. path segments of /api/store and /api/w, and the UI's pages and JSON twins -----------------


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("GET", "/api/store/v1/runs/ab%00c", None, "run_id"),
        ("GET", "/api/store/v1/runs/ab%00c/metrics", None, "run_id"),
        ("GET", "/api/store/v1/runs/{run}/metrics/a%00b", None, "key"),
        ("GET", "/api/store/v1/runs/{run}/series/a%00b", None, "key"),
        ("GET", "/api/store/v1/runs/ab%00c/artifacts", None, "run_id"),
        ("GET", "/api/store/v1/runs/{run}/artifacts/a%00b", None, "name"),
        ("GET", "/api/store/v1/experiments/a%00b", None, "name"),
        ("GET", "/api/store/v1/models/a%00b", None, "name"),
        ("GET", "/api/store/v1/models/a%00b/versions/1", None, "name"),
        ("GET", "/api/store/v1/objects/objects/ab/c%00d", None, "uri"),
        ("POST", "/api/w/models/a%00b/versions/1/promote", {"stage": "staging"}, "name"),
        ("POST", "/api/w/runs/ab%00c/tags", {"k": "v"}, "run_id"),
        ("POST", "/api/w/runs/ab%00c/note", {"note": "n"}, "run_id"),
    ],
)
async def test_nul_in_an_api_path_segment_is_a_422_naming_the_parameter(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, param: str
) -> None:
    rid = await _run(api)
    url = path.replace("{run}", rid)
    r = await api.request(method, url, json=body, headers=AUTH)
    _is_422(r, "NUL", param)


@pytest.mark.parametrize(
    "path",
    [
        "/models/a%00b",
        "/api/models/a%00b",
        "/diff/a%00b/1/2",
        "/api/diff/a%00b/1/2",
        "/pipelines/a%00b",
        "/api/pipelines/a%00b",
        "/runs/ab%00c/artifacts",
        "/api/runs/ab%00c/artifacts",
        "/api/runs/{run}/metrics/a%00b",
        "/api/artifacts/{run}/a%00b",
        "/experiments/a%00b",
    ],
)
async def test_nul_in_a_ui_page_or_its_json_twin_path_is_a_422(
    api: httpx.AsyncClient, path: str
) -> None:
    rid = await _run(api)
    _is_422(await api.get(path.replace("{run}", rid)), "NUL")


# 14. datasets: no NUL, bounded lengths, on every surface -----------------------------------


DATASET_NUL: list[dict[str, Any]] = [
    {"role": NUL},
    {"role": "train", "name": NUL},
    {"role": "train", "source": NUL},
    {"role": "train", "digest": NUL},
    {"role": "train", "features": ["ok", NUL]},
    {"role": "train", "extra": {"k": NUL}},
    {"role": "train", "extra": {NUL: 1}},
    {"role": "train", "extra": {"k": [{"deep": NUL}]}},
]
DATASET_LONG: list[tuple[dict[str, Any], str]] = [
    ({"role": "r" * 251}, "250"),
    ({"role": "train", "name": "n" * 501}, "500"),
    ({"role": "train", "source": "s" * 2001}, "2000"),
    ({"role": "train", "digest": "d" * 501}, "500"),
    ({"role": "train", "features": ["f" * 501]}, "500"),
    ({"role": "train", "features": ["f"] * 100_001}, "100000"),
    ({"role": "train", "extra": {"k": "x" * 100_001}}, "100000"),
]


@pytest.mark.parametrize("body", DATASET_NUL)
async def test_a_dataset_with_nul_is_a_422_over_http(
    api: httpx.AsyncClient, store: ServerStore, body: dict[str, Any]
) -> None:
    rid = await _run(api)
    r = await api.post(f"/api/w/runs/{rid}/datasets", json=body, headers=AUTH)
    _is_422(r, "NUL")
    assert (await store.get_run(rid)).datasets == []


@pytest.mark.parametrize(("body", "limit"), DATASET_LONG)
async def test_a_dataset_over_a_length_limit_is_a_422_naming_it(
    api: httpx.AsyncClient, store: ServerStore, body: dict[str, Any], limit: str
) -> None:
    rid = await _run(api)
    r = await api.post(f"/api/w/runs/{rid}/datasets", json=body, headers=AUTH)
    _is_422(r, limit)
    assert (await store.get_run(rid)).datasets == []


def test_the_python_log_dataset_refuses_nul_and_overlong_fields(
    store_url: str, tmp_path: Path
) -> None:
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=make_settings())
    try:
        with client.start_run("e") as run:
            for body in DATASET_NUL:
                fields = {**body, **body.get("extra", {})}
                fields.pop("extra", None)
                with pytest.raises(InvalidInput, match="NUL"):
                    run.log_dataset(**fields)
            for body, limit in DATASET_LONG:
                fields = {**body, **body.get("extra", {})}
                fields.pop("extra", None)
                with pytest.raises(InvalidInput, match=limit):
                    run.log_dataset(**fields)
            run.log_dataset("train", name="n" * 500, source="s" * 2000, features=["f"] * 10_000)
        stored = client.get_run(run.id)
        assert stored.status == "completed"
        assert [(d.role, d.name, len(d.features)) for d in stored.datasets] == [
            ("train", "n" * 500, 10_000)
        ]
    finally:
        client.close()


# 15. the registry refuses NUL and overlong text through Python, MCP and HTTP alike --------------


async def _model(store: ServerStore, tmp_path: Path) -> None:
    """A run ``r1`` with an artifact ``model`` registered as version 1 of model ``m``."""
    artifacts = open_artifact_store(str(tmp_path / "a"))
    await store.create_run(_new_run("r1"))
    await artifact_ops.put_bytes(
        store, artifacts, "r1", "model", b"weights", content_type=OCTETS, serializer="bytes"
    )
    await registry_ops.register_model(store, "m", "r1", "model", "ada")


async def test_the_registry_operations_refuse_nul_text(store: ServerStore, tmp_path: Path) -> None:
    await _model(store, tmp_path)
    for attempt in (
        lambda: registry_ops.register_model(store, "m", "r1", "model", "ada", description=NUL),
        lambda: registry_ops.register_model(store, "m", "r1", NUL, "ada"),
        lambda: registry_ops.register_model(store, "m", "r1", "model", "ada", tags={"k": NUL}),
        lambda: registry_ops.promote(store, "m", 1, "staging", "ada", reason=NUL),
        lambda: registry_ops.set_model_note(store, "m", NUL),
        lambda: registry_ops.set_model_tags(store, "m", {"k": NUL}),
        lambda: registry_ops.set_model_version_tags(store, "m", 1, {"k": NUL}),
        lambda: registry_ops.set_alias(store, "m", NUL, 1, "ada"),
    ):
        with pytest.raises(InvalidInput, match=r"NUL|alias"):
            await attempt()
    model = await store.get_model("m")
    assert len(model.versions) == 1 and model.versions[0].stage == "none"
    assert model.note in (None, "") and not model.tags and not model.versions[0].tags


async def test_the_registry_operations_cap_text_lengths(store: ServerStore, tmp_path: Path) -> None:
    await _model(store, tmp_path)
    long = "x" * 100_001
    for attempt in (
        lambda: registry_ops.register_model(store, "m", "r1", "model", "ada", description=long),
        lambda: registry_ops.promote(store, "m", 1, "staging", "ada", reason=long),
        lambda: registry_ops.set_model_note(store, "m", long),
    ):
        with pytest.raises(InvalidInput, match="100000"):
            await attempt()
    with pytest.raises(InvalidInput, match="5000"):
        await registry_ops.set_model_tags(store, "m", {"k": "v" * 5001})
    await registry_ops.set_model_note(store, "m", "x" * 100_000)
    assert len((await store.get_model("m")).note or "") == 100_000


def test_the_python_registry_refuses_nul_text(store_url: str, tmp_path: Path) -> None:
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=make_settings())
    registry = Registry(client)
    try:
        with client.start_run("e") as run:
            run.log_artifact("model", b"weights")
            with pytest.raises(InvalidInput, match="NUL"):
                registry.register_model("m", "model", description=NUL)
            registry.register_model("m", "model")
        with pytest.raises(InvalidInput, match="NUL"):
            registry.promote("m", 1, "production", reason=NUL)
        with pytest.raises(InvalidInput, match="NUL"):
            registry.set_model_note("m", NUL)
        with pytest.raises(InvalidInput, match="NUL"):
            registry.set_model_tag("m", "k", NUL)
        model = registry.model("m")
        assert [v.stage for v in model.versions] == ["none"] and model.note in (None, "")
    finally:
        client.close()


async def test_mcp_registry_and_pipeline_tools_answer_nul_with_a_tool_error_naming_it(
    store_url: str, tmp_path: Path
) -> None:
    store = await open_store(store_url)
    try:
        await _model(store, tmp_path)
        server = build_mcp(
            store,
            artifacts=open_artifact_store(str(tmp_path / "a")),
            toolsets=["registry", "pipelines"],
        )
        async with McpClient(server) as mcp:
            for tool, args in (
                ("promote_model", {"model_name": "m", "version": 1, "stage": "staging",
                                   "reason": NUL}),
                ("set_model_note", {"model_name": "m", "note": NUL}),
                ("set_model_note", {"model_name": "m", "note": "x" * 100_001}),
                ("get_pipeline", {"pipeline_id": NUL}),
                ("create_experiment", {"name": "x", "owner": NUL}),
            ):  # fmt: skip
                result = await mcp.call_tool(tool, args)
                assert result.is_error, (tool, args)
                block = result.content[0]
                assert isinstance(block, TextContent)
                assert "NUL" in block.text or "100000" in block.text, (tool, block.text)
        model = await store.get_model("m")
        assert model.versions[0].stage == "none" and model.note in (None, "")
    finally:
        await store.close()


async def test_http_registry_writes_refuse_nul_the_same_way(
    api: httpx.AsyncClient, store: ServerStore
) -> None:
    rid = await _run(api)
    files = {"file": ("model.bin", b"weights", OCTETS)}
    assert (await api.post(f"/api/w/runs/{rid}/artifacts", files=files, headers=AUTH)).is_success
    body = {"name": "m", "run_id": rid, "artifact": "model.bin"}
    _is_422(await api.post("/api/w/models", json={**body, "description": NUL}, headers=AUTH))
    r = await api.post("/api/w/models", json=body, headers=AUTH)
    assert r.status_code == 200 or r.status_code == 201, r.text
    promote = "/api/w/models/m/versions/1/promote"
    _is_422(await api.post(promote, json={"stage": "staging", "reason": NUL}, headers=AUTH))
    assert (await store.get_model("m")).versions[0].stage == "none"


# 16. a run can always be ended, whatever error text it is given --------------------------------


def test_end_run_with_a_nul_or_overlong_error_still_ends_the_run(
    store_url: str, tmp_path: Path
) -> None:
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=make_settings())
    try:
        first = client.start_run("e")
        first.end("failed", "boom\x00bang")
        second = client.start_run("e")
        client.end_run("failed", error="e" * 100_001)
        third = client.start_run("e")
        with pytest.raises(InvalidInput, match="error"):
            third.end("failed", 42)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="status"):
            third.end("exploded")  # type: ignore[arg-type]
        third.end("killed", "stopped")  # still endable after the refusals
        one, two, three = (client.get_run(r.id) for r in (first, second, third))
        assert (one.status, one.error) == ("failed", "boom\\x00bang")
        assert two.status == "failed" and len(two.error or "") == 100_000
        assert (three.status, three.error) == ("killed", "stopped")
    finally:
        client.close()


# 17. pipelines and alerts refuse NUL before the store sees it -----------------------------------


async def test_pipeline_and_alert_operations_refuse_nul_text(store: ServerStore) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        await pipeline_ops.get_pipeline(store, NUL)
    for url, secret in (("https://example.com/a\x00b", None), ("https://example.com/h", NUL)):
        with pytest.raises(InvalidInput, match="NUL"):
            alert_ops.build_rule(
                "a", "ada", metric_key="loss", op=">", threshold=1.0, webhook_url=url, secret=secret
            )
    with pytest.raises(InvalidInput, match="2000"):
        alert_ops.build_rule("a", "ada", metric_key="loss", op=">", threshold=1.0,
                             webhook_url="https://example.com/" + "p" * 2000)  # fmt: skip
    assert await store.list_alerts() == []


def test_a_pipeline_with_a_nul_or_overlong_description_is_refused_and_runs_nothing(
    store_url: str, tmp_path: Path
) -> None:
    client = Client(store=store_url, artifacts=str(tmp_path / "a"), settings=make_settings())
    ran: list[str] = []
    try:
        for description in (NUL, "d" * 100_001):
            with pytest.raises(InvalidInput, match=r"NUL|100000"):
                Pipeline(
                    "p", [Step("a", lambda ctx: ran.append("a"))], description=description,
                    client=client,
                ).run()  # fmt: skip
        assert ran == [] and pipelines(client=client) == []
    finally:
        client.close()


# helpers ---------------------------------------------------------------------------------------


def _new_run(run_id: str, experiment: str = "e") -> NewRun:
    return NewRun(id=run_id, experiment=experiment, name=None, created_by="ada",
                  started_at=time.time(), parent_id=None, tags={}, environment={},
                  heartbeat_timeout=3600.0)  # fmt: skip


def _object(uri: str) -> Any:
    from chachaml.store.artifacts import StoredObject, uri_digest

    return StoredObject(uri=uri, sha256=uri_digest(uri), size=0)

"""The pipeline page draws the step graph with each step's status and reloads while live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import Step, run_pipeline
from chachaml.server.app import create_app
from chachaml.server.ui.pipelines import NODE_W, step_graph
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store

pytestmark = pytest.mark.anyio


def test_a_diamond_is_laid_out_in_dependency_columns() -> None:
    steps = [
        {"name": "a", "depends_on": [], "status": "completed"},
        {"name": "b", "depends_on": ["a"], "status": "completed"},
        {"name": "c", "depends_on": ["a"], "status": "failed"},
        {"name": "d", "depends_on": ["b", "c"], "status": "skipped"},
    ]
    graph = step_graph(steps)
    x = {n["name"]: n["x"] for n in graph["nodes"]}
    assert x["a"] < x["b"] == x["c"] < x["d"]
    assert len({n["y"] for n in graph["nodes"] if n["name"] in "bc"}) == 2  # one above the other
    assert len(graph["edges"]) == 4
    assert all(e["x1"] == e["x2"] - 60 for e in graph["edges"]) and NODE_W == 160


@pytest.fixture
async def web(client: Client, store_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = await open_store(store_url)
    app = create_app(store, artifacts=open_artifact_store(str(tmp_path / "artifacts")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as http:
        yield http
    await store.close()


async def test_the_pipeline_page_draws_each_step_with_its_status(
    client: Client, web: httpx.AsyncClient
) -> None:
    import anyio

    def boom(ctx: object) -> None:
        raise ValueError("bad batch")

    steps = [
        Step("load", lambda ctx: [1, 2]),
        Step("<b>clean</b>", boom, depends_on=["load"]),
        Step("fit", lambda ctx: None, depends_on=["<b>clean</b>"]),
    ]
    with pytest.raises(Exception, match="bad batch"):
        await anyio.to_thread.run_sync(lambda: run_pipeline("etl", steps, client=client))
    (pipeline,) = (await web.get("/api/pipelines")).json()["pipelines"]
    data = (await web.get(f"/api/pipelines/{pipeline['id']}")).json()
    statuses = {n["name"]: n["status"] for n in data["graph"]["nodes"]}
    assert statuses == {"load": "completed", "<b>clean</b>": "failed", "fit": "skipped"}
    assert data["refresh_seconds"] is None  # finished: no reloading
    page = (await web.get(f"/pipelines/{pipeline['id']}")).text
    assert '<svg class="pipeline-graph"' in page and 'class="node status-failed"' in page
    assert "&lt;b&gt;clean&lt;/b&gt;" in page and "<b>clean</b>" not in page

"""Route tests for the pipeline pages: linked nodes with arrowheads and full names, durations,
every attempt of a retried step, steps a killed pipeline never ran, updating only while live."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from chachaml.client.client import Client
from chachaml.client.pipelines.pipeline import Step, run_pipeline
from chachaml.records.pipelines import PIPELINE_TAG, NewPipeline, NewPipelineStep
from chachaml.records.runs import NewRun
from chachaml.server.app import create_app
from chachaml.server.ui.pipelines import MAX_NODE_W, step_graph
from chachaml.store import ServerStore, open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.protocol import Store
from chachaml.tools import pipelines as pipeline_ops

pytestmark = pytest.mark.anyio
LONG = "normalise-the-features-and-write-them-to-parquet-for-every-shard"
PID, PRUN, ARUN = "f" * 32, "1" * 32, "2" * 32
T0 = 1_745_000_000.0


def test_nodes_widen_and_wrap_to_show_full_names() -> None:
    graph = step_graph(
        [
            {"name": "load", "depends_on": [], "status": "completed", "run_id": "r1"},
            {"name": LONG, "depends_on": ["load"], "status": "pending", "run_id": None},
        ]
    )
    assert graph["node_width"] == MAX_NODE_W
    node = graph["nodes"][1]
    assert "".join(node["lines"]) == LONG and len(node["lines"]) > 1
    assert graph["nodes"][0]["href"] == "/runs/r1" and node["href"] == "#step-2"
    assert node["height"] >= 10 + 15 * (len(node["lines"]) + 1) > graph["nodes"][0]["height"]
    short = step_graph([{"name": "a", "depends_on": [], "status": "completed"}])
    assert short["node_width"] == 160 and short["nodes"][0]["lines"] == ["a"]


@pytest.mark.parametrize(
    "name",
    [
        "preprocess_the_raw_shards_from_object_storage_and_decode_every_record",  # mid-word
        "load the raw shards from object storage and decode every record of the archive",
        "x" * 500,  # the longest name a step may have: shown in full, never cut
    ],
)
def test_a_wrapped_name_reads_as_the_name_itself(name: str) -> None:
    """The lines are slices of the name (a wrapped space ends its line), so the node's text is
    the name its link's label holds: axe's label-in-name rule (WCAG 2.5.3)."""
    (node,) = step_graph([{"name": name, "depends_on": [], "status": "running"}])["nodes"]
    assert len(node["lines"]) > 1 and "".join(node["lines"]) == name
    assert all(len(line.rstrip()) * 7 + 16 <= MAX_NODE_W for line in node["lines"])


@pytest.fixture
async def web(
    store_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, ServerStore]]:
    store = await open_store(store_url)
    app = create_app(store, artifacts=open_artifact_store(str(tmp_path / "artifacts")))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as http:
        yield http, store
    await store.close()


async def test_retried_steps_link_every_attempt_and_nodes_link_runs(
    client: Client, web: tuple[httpx.AsyncClient, ServerStore]
) -> None:
    http, _ = web
    tries = {"n": 0}

    def flaky(ctx: object) -> int:
        tries["n"] += 1
        if tries["n"] < 3:
            raise RuntimeError(f"flake {tries['n']}")
        return 1

    steps = [Step("load", lambda ctx: 1), Step(LONG, flaky, retries=2, backoff=0.0)]
    await anyio.to_thread.run_sync(lambda: run_pipeline("etl", steps, client=client))
    (pipeline,) = (await http.get("/api/pipelines")).json()["pipelines"]
    assert pipeline["duration_seconds"] is not None
    data = (await http.get(f"/api/pipelines/{pipeline['id']}")).json()
    assert data["refresh_seconds"] is None
    step = {s["name"]: s for s in data["pipeline"]["steps"]}[LONG]
    attempts = step["attempt_runs"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["status"] for a in attempts] == ["failed", "failed", "completed"]
    assert attempts[-1]["run_id"] == step["run_id"] and step["duration_seconds"] is not None
    page = (await http.get(f"/pipelines/{pipeline['id']}")).text
    for a in attempts:
        assert f'<a href="/runs/{a["run_id"]}" title="attempt {a["attempt"]}' in page
    node = {n["name"]: n for n in data["graph"]["nodes"]}[LONG]
    assert node["href"] == f"/runs/{step['run_id']}"
    assert f'<a href="/runs/{step["run_id"]}" aria-label="step {LONG}: completed">' in page
    assert f"<title>{LONG} · completed</title>" in page
    assert '<marker id="arrow"' in page and 'marker-end="url(#arrow)"' in page
    assert re.search(r"<th scope=\"col\" class=\"num\">duration</th>", page)


async def _killed(store: Store) -> None:
    """A pipeline killed while its first step ran: the second never started."""
    await store.create_run(NewRun(id=PRUN, experiment="etl", name="etl", created_by="ana",
                                  started_at=T0, heartbeat_timeout=3600.0,
                                  tags={PIPELINE_TAG: PID}))  # fmt: skip
    await pipeline_ops.create_pipeline(
        store,
        NewPipeline(id=PID, name="etl", run_id=PRUN, created_by="ana", started_at=T0,
                    max_parallel=1, steps=[NewPipelineStep(name="load"),
                                           NewPipelineStep(name="fit", depends_on=["load"])]),
    )  # fmt: skip
    await store.create_run(NewRun(id=ARUN, experiment="etl", name="load", created_by="ana",
                                  started_at=T0 + 1, heartbeat_timeout=3600.0, parent_id=PRUN,
                                  tags={PIPELINE_TAG: PID, "chachaml.step": "load",
                                        "chachaml.attempt": "1"}))  # fmt: skip
    await pipeline_ops.start_step(store, PID, "load", ARUN, 1, T0 + 1)
    await pipeline_ops.end_step(store, PID, "load", "killed", T0 + 5, "interrupted")
    await pipeline_ops.end_pipeline(store, PID, "killed", "interrupted", T0 + 5)


async def test_steps_a_killed_pipeline_never_ran_say_so(
    web: tuple[httpx.AsyncClient, ServerStore],
) -> None:
    http, store = web
    await _killed(store)
    data = (await http.get(f"/api/pipelines/{PID}")).json()
    steps = {s["name"]: s for s in data["pipeline"]["steps"]}
    assert steps["fit"]["status"] == "pending"  # the record is unchanged...
    assert steps["fit"]["shown_status"] == "not run (pipeline killed)"  # ...the page says
    assert steps["load"]["shown_status"] == "killed" and steps["load"]["duration_seconds"] == 4.0
    assert [a["run_id"] for a in steps["load"]["attempt_runs"]] == [ARUN]
    page = (await http.get(f"/pipelines/{PID}")).text
    assert "not run (pipeline killed)" in page and 'class="node status-notrun"' in page
    assert ">pending<" not in page and '<a href="#step-2"' in page and 'id="step-2"' in page
    assert data["refresh_seconds"] is None


async def test_only_running_pipelines_refresh(web: tuple[httpx.AsyncClient, ServerStore]) -> None:
    http, store = web
    await _killed(store)
    idle = (await http.get("/api/pipelines")).json()
    assert idle["refresh_seconds"] is None  # nothing to poll, but new pipelines still appear:
    assert idle["events_after"] == str(await store.last_event_id())  # the list follows events
    now = time.time()  # a live heartbeat
    await store.create_run(NewRun(id="3" * 32, experiment="etl", name="etl", created_by="ana",
                                  started_at=now, heartbeat_timeout=3600.0))  # fmt: skip
    live = NewPipeline(
        id="e" * 32,
        name="etl",
        run_id="3" * 32,
        created_by="ana",
        started_at=now,
        max_parallel=1,
        steps=[NewPipelineStep(name="a")],
    )
    await pipeline_ops.create_pipeline(store, live)
    listing = (await http.get("/pipelines")).text
    assert (await http.get("/api/pipelines")).json()["refresh_seconds"] == 2
    assert (await http.get(f"/api/pipelines/{'e' * 32}")).json()["refresh_seconds"] == 2
    live_page = (await http.get(f"/pipelines/{'e' * 32}")).text
    head = str(await store.last_event_id())  # where the pages' event streams start
    assert (await http.get(f"/api/pipelines/{'e' * 32}")).json()["events_after"] == head
    for page in (listing, live_page):  # updated in place by pipelines.js, never reloaded
        assert '<script src="/static/pipelines.js" defer></script>' in page
        assert 'data-seconds="2"' in page and "data-refresh" not in page
        assert f'data-events-after="{head}"' in page
    assert f'<tr data-pipeline="{"e" * 32}">' in listing
    assert '<tr id="step-1" data-step="a">' in live_page
    assert '<g class="node status-pending"' in live_page
    ended = (await http.get(f"/pipelines/{PID}")).text
    assert "pipelines.js" not in ended and "pipelines-live" not in ended
    assert (await http.get(f"/api/pipelines/{PID}")).json()["events_after"] == ""
    assert (await http.get("/static/pipelines.js")).status_code == 200

"""Route tests for the run page and its series endpoint: step ranges, live ``after_step``,
bad parameters, one-point metrics, NaN/inf points, killed runs, children and compare-with."""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from chachaml.records.runs import MetricChunk, NewRun
from chachaml.server.app import create_app
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store

pytestmark = pytest.mark.anyio
RUN, KILLED, CHILD, SIBLING = "1" * 32, "2" * 32, "3" * 32, "4" * 32
LONG = 5_000


def chunk(run_id: str, key: str, steps: Sequence[int], values: Sequence[float]) -> MetricChunk:
    n, finite = len(steps), [v for v in values if math.isfinite(v)]
    now = time.time()
    return MetricChunk(
        run_id=run_id,
        key=key,
        count=n,
        steps=struct.pack(f"<{n}q", *steps),
        values=struct.pack(f"<{n}d", *values),
        timestamps=struct.pack(f"<{n}d", *(now - n + i for i in range(n))),
        last_value=values[-1] if math.isfinite(values[-1]) else None,
        last_step=steps[-1],
        last_time=now,
        min_value=min(finite) if finite else None,
        max_value=max(finite) if finite else None,
    )


def new_run(
    run_id: str, name: str, *, parent: str | None = None, timeout: float = 3600.0
) -> NewRun:
    return NewRun(
        id=run_id,
        experiment="charts",
        name=name,
        created_by="ana",
        started_at=time.time() - 100,
        heartbeat_timeout=timeout,
        parent_id=parent,
    )


@pytest.fixture(scope="module")
async def web(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    store = await open_store(module_store_url)
    path = tmp_path_factory.mktemp("run-page")
    try:
        await store.create_run(new_run(RUN, "parent"))
        await store.create_run(new_run(CHILD, "trial-7", parent=RUN))
        await store.create_run(new_run(SIBLING, "other"))
        await store.create_run(new_run(KILLED, "crashed", timeout=5.0))
        wave = [math.sin(i / 50) + (10.0 if i == 2_345 else 0.0) for i in range(LONG)]
        odd = [1.0, math.nan, math.inf, 2.0, -math.inf, 3.0]
        await store.log_metrics(
            [
                chunk(RUN, "train/loss", range(LONG), wave),
                chunk(RUN, "val/loss", range(0, LONG, 100), wave[::100]),
                chunk(RUN, "odd", range(6), odd),
                chunk(RUN, "final_score", [9], [0.875]),
            ]
        )
        app = create_app(store, artifacts=open_artifact_store(str(path / "a")), user="bo")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await store.close()


async def test_a_step_range_is_downsampled_on_its_own(web: httpx.AsyncClient) -> None:
    url = f"/api/runs/{RUN}/metrics/train/loss"
    whole = (await web.get(url, params={"points": 100})).json()
    assert whole["total"] == LONG and whole["downsampled"] and whole["shown"] <= 100
    assert 10.0 + math.sin(2_345 / 50) in whole["values"], "the spike survives downsampling"
    part = (await web.get(url, params={"min_step": 2_300, "max_step": 2_399, "points": 100})).json()
    assert part["steps"] == list(range(2_300, 2_400)) and part["in_range"] == 100
    assert part["downsampled"] is False and part["total"] == LONG
    assert len(part["times"]) == 100 and part["last_step"] == LONG - 1


async def test_after_step_returns_only_newer_points(web: httpx.AsyncClient) -> None:
    url = f"/api/runs/{RUN}/metrics/train/loss"
    newer = (await web.get(url, params={"after_step": LONG - 4})).json()
    assert newer["steps"] == [LONG - 3, LONG - 2, LONG - 1] and newer["last_step"] == LONG - 1
    assert (await web.get(url, params={"after_step": LONG})).json()["steps"] == []


@pytest.mark.parametrize(
    "query",
    ["min_step=abc", "max_step=1.5", "after_step=", "min_step=10&max_step=5", "points=1"],
)
async def test_bad_series_parameters_are_a_422_envelope(web: httpx.AsyncClient, query: str) -> None:
    if query == "after_step=":  # empty means absent
        assert (await web.get(f"/api/runs/{RUN}/metrics/odd?{query}")).status_code == 200
        return
    answer = await web.get(f"/api/runs/{RUN}/metrics/odd?{query}")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["status"] == 422 and error["message"]


async def test_nan_and_inf_points_come_back_marked(web: httpx.AsyncClient) -> None:
    answer = await web.get(f"/api/runs/{RUN}/metrics/odd")
    data = json.loads(answer.text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert data["steps"] == [0, 3, 5] and data["values"] == [1.0, 2.0, 3.0]
    assert [(p["step"], p["value"]) for p in data["nonfinite"]] == [
        (1, "NaN"),
        (2, "inf"),
        (4, "-inf"),
    ]
    assert data["downsampled"] is False


async def test_page_groups_metrics_and_shows_a_one_point_metric_as_a_value(
    web: httpx.AsyncClient,
) -> None:
    data = (await web.get(f"/api/runs/{RUN}")).json()
    groups = {g["prefix"]: [m["key"] for m in g["metrics"]] for g in data["metric_groups"]}
    assert groups == {"": ["final_score", "odd"], "train": ["train/loss"], "val": ["val/loss"]}
    page = (await web.get(f"/runs/{RUN}")).text
    assert 'class="metric-value"' in page and "0.875" in page and "(one point)" in page
    assert 'data-key="final_score"' in page
    assert page.count('class="chart"') == 3, "a chart per multi-point metric, none for one point"
    assert 'aria-label="Line chart of train/loss, latest' in page
    assert f'data-series="/api/runs/{RUN}/metrics/train%2Floss"' in page
    assert 'id="metric-filter"' in page and "data-chart-x" in page and "data-chart-smooth" in page


async def test_children_are_listed_by_name_and_status(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/runs/{RUN}")).json()
    assert [(c["id"], c["name"]) for c in data["children"]] == [(CHILD, "trial-7")]
    page = (await web.get(f"/runs/{RUN}")).text
    assert f'<a href="/runs/{CHILD}">trial-7</a>' in page


async def test_compare_with_offers_a_picker_not_a_one_id_compare(web: httpx.AsyncClient) -> None:
    page = (await web.get(f"/runs/{RUN}")).text
    assert f"/compare?ids={RUN}" not in page
    assert 'action="/compare"' in page and f'<option value="{SIBLING}">' in page
    assert 'select name="ids" required' in page


async def test_a_killed_run_says_why(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/runs/{KILLED}")).json()
    assert data["run"]["status"] == "killed" and data["live"] is False
    assert data["killed_reason"].startswith("heartbeat lost at ")
    assert "last heartbeat" in data["killed_reason"] and " ago" in data["killed_reason"]
    page = (await web.get(f"/runs/{KILLED}")).text
    assert "Killed: heartbeat lost at" in page
    running = (await web.get(f"/api/runs/{RUN}")).json()
    assert running["live"] is True and running["killed_reason"] is None
    assert 90 <= running["elapsed_seconds"] < 3600


async def test_a_running_run_page_starts_its_event_stream_where_the_page_was_built(
    web: httpx.AsyncClient,
) -> None:
    running = (await web.get(f"/api/runs/{RUN}")).json()
    assert running["events_after"].isdigit()  # the store's newest event id when it was built
    assert f'data-events-after="{running["events_after"]}"' in (await web.get(f"/runs/{RUN}")).text
    assert (await web.get(f"/api/runs/{KILLED}")).json()["events_after"] == ""  # nothing to follow

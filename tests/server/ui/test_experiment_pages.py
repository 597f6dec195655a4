"""Route tests for the experiment pages: odd names link, sorting, paging with a total, chart."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import httpx
import pytest

from chachaml.records.runs import MetricChunk, NewRun
from chachaml.server.app import create_app
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.protocol import Store

pytestmark = pytest.mark.anyio
ODD = "team/a#b?c d%"
RUNS = 130
T0 = 1_745_000_000.0


def _metric(run_id: str, key: str, value: float, at: float) -> MetricChunk:
    return MetricChunk(
        run_id=run_id, key=key, count=1, steps=struct.pack("<q", 0),
        values=struct.pack("<d", value), timestamps=struct.pack("<d", at), last_value=value,
        last_step=0, last_time=at, min_value=value, max_value=value,
    )  # fmt: skip


async def _fill(store: Store) -> None:
    await store.create_experiment(ODD, "slashes and all", "ana")
    for i in range(RUNS):
        rid = f"{i:032x}"
        start = T0 + 60 * i
        await store.create_run(NewRun(id=rid, experiment=ODD, name=f"r{i:03d}", created_by="ana",
                                      started_at=start, heartbeat_timeout=3600.0))  # fmt: skip
        # loss falls, then rises again: the best so far stops at run 99
        loss = abs(100 - i) / 100 + (0.5 if i % 10 == 3 else 0.0)
        await store.log_metrics([_metric(rid, "loss", loss, start)])
        await store.end_run(rid, "completed", None, start + 30)


@pytest.fixture(scope="module")
async def web(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    path = tmp_path_factory.mktemp("experiments")
    store = await open_store(module_store_url)
    try:
        await _fill(store)
        app = create_app(store, artifacts=open_artifact_store(str(path / "artifacts")), user="bo")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await store.close()


QUOTED = "/experiments/team%2Fa%23b%3Fc%20d%25"


async def test_names_with_slash_hash_and_question_mark_link_to_their_page(
    web: httpx.AsyncClient,
) -> None:
    listing = await web.get("/experiments")
    assert f'href="{QUOTED}"' in listing.text
    page = await web.get(QUOTED)
    assert page.status_code == 200, page.text
    assert "Experiment team/a#b?c d%" in page.text and f'action="{QUOTED}"' in page.text
    data = (await web.get("/api" + QUOTED)).json()
    assert data["experiment"]["name"] == ODD and data["experiment"]["href"] == QUOTED
    assert (await web.get("/experiments/team%2Fa")).status_code == 404


async def test_the_runs_page_through_all_with_a_total(web: httpx.AsyncClient) -> None:
    first = (await web.get("/api" + QUOTED)).json()
    assert first["total"] == RUNS and len(first["runs"]) == 50
    assert first["runs"][0]["name"] == f"r{RUNS - 1:03d}"  # newest first
    last = (await web.get("/api" + QUOTED + "?offset=100&limit=50")).json()
    assert [r["name"] for r in last["runs"]] == [f"r{i:03d}" for i in range(29, -1, -1)]
    page = (await web.get(QUOTED + "?offset=100&limit=50")).text
    assert f"rows 101\N{EN DASH}130 of {RUNS} · page 3 of 3" in page and "next →" not in page
    assert "← previous" in page and "« first" in page


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("sort=name&dir=min", ["r000", "r001", "r002"]),
        ("sort=name&dir=max", ["r129", "r128", "r127"]),
        ("sort=loss&dir=min", ["r100", "r099", "r101"]),
        ("sort=loss&dir=max", ["r003", "r013", "r023"]),  # 0.97 + 0.5, 0.87 + 0.5, ...
    ],
)
async def test_the_runs_sort_on_the_server_by_field_or_metric(
    web: httpx.AsyncClient, query: str, names: list[str]
) -> None:
    data = (await web.get("/api" + QUOTED + "?" + query)).json()
    assert [r["name"] for r in data["runs"][:3]] == names
    assert data["total"] == RUNS
    page = (await web.get(QUOTED + "?" + query)).text
    assert 'aria-sort="' in page


async def test_a_bad_sort_key_is_a_422_page(web: httpx.AsyncClient) -> None:
    answer = await web.get(QUOTED + "?sort=%00")
    assert answer.status_code == 422 and "Error 422" in answer.text


async def test_the_chart_shows_each_runs_metric_and_the_best_so_far(
    web: httpx.AsyncClient,
) -> None:
    chart = (await web.get("/api" + QUOTED)).json()["chart"]
    assert chart["metric"] == "loss" and chart["direction"] == "min" and chart["runs"] == RUNS
    rows = chart["spec"]["data"]["values"]
    assert [r["run"] for r in rows[:2]] == ["r000", "r001"]  # by start time
    bests = [r["best"] for r in rows]
    assert bests == sorted(bests, reverse=True) and bests[-1] == pytest.approx(0.0)
    chosen = (await web.get("/api" + QUOTED + "?metric=loss&direction=max")).json()["chart"]
    assert chosen["direction"] == "max" and chosen["spec"]["data"]["values"][-1]["best"] == 1.47
    guessed = (await web.get("/api/experiments?metric=loss")).json()
    assert guessed["direction"] == "min"  # loss: lower is better unless asked otherwise

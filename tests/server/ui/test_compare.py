"""Route tests for the Compare page: picker, best values, hidden identical params, charts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from chachaml.records.runs import NewRun
from chachaml.server.app import create_app
from chachaml.server.ui.figures import PALETTE, parallel_spec
from chachaml.server.ui.goals import best_indices, better_direction
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from tests.support.mcp_seed import IRIS, MID, NEW, OLD, seed

pytestmark = pytest.mark.anyio
NEEDLE = "e" * 32  # the oldest run, behind FILLERS newer ones
FILLERS = 1005


@pytest.fixture(scope="module")
async def web(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    path = tmp_path_factory.mktemp("compare")
    store = await open_store(module_store_url)
    try:
        await seed(store, path / "artifacts")
        old = NewRun(id=NEEDLE, experiment="archive-2023", name="needle-in-the-haystack",
                     created_by="bo", started_at=1.6e9, heartbeat_timeout=60.0)  # fmt: skip
        await store.create_run(old)
        for i in range(FILLERS):  # newer than the needle, older than the seeded runs
            await store.create_run(
                NewRun(id=f"{i:032x}", experiment="bulk", name=f"filler-{i}", created_by="bo",
                       started_at=1.7e9 + i, heartbeat_timeout=60.0)
            )  # fmt: skip
        app = create_app(store, artifacts=open_artifact_store(str(path / "artifacts")), user="bo")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("key", "way"),
    [
        ("loss", "min"),
        ("val_loss", "min"),
        ("train/error_rate", "min"),
        ("test-rmse", "min"),
        ("valMse", "min"),
        ("mae", "min"),
        ("perplexity", "min"),
        ("epoch_time", "min"),
        ("acc", "max"),
        ("val_accuracy", "max"),
        ("f1", "max"),
        ("timesteps", "max"),
        ("auc", "max"),
    ],
)
def test_the_better_direction_comes_from_the_metric_name(key: str, way: str) -> None:
    assert better_direction(key) == way


def test_best_values_tie_and_need_two_different_values() -> None:
    assert best_indices([0.5, 0.9, 0.9, None], "max") == [1, 2]
    assert best_indices([0.5, 0.9, float("nan")], "min") == [0]
    assert best_indices([0.5, 0.5], "max") == [] and best_indices([0.5, None], "max") == []
    assert best_indices(["a", True, 3, 1], "min") == [3]


@pytest.mark.parametrize("ids", ["", OLD, f"{OLD},{OLD}"])
async def test_fewer_than_two_runs_is_the_picker_and_a_message(
    web: httpx.AsyncClient, ids: str
) -> None:
    page = await web.get(f"/compare?ids={ids}")
    assert page.status_code == 200, page.text
    assert "Error 422" not in page.text and "Pick 2 to 10 runs" in page.text
    assert 'name="q"' in page.text and "+ add" in page.text
    data = (await web.get(f"/api/compare?ids={ids}")).json()
    assert data["runs"] == [] and data["message"]
    if ids:  # the one picked run is not offered again, and adding one keeps it in the URL
        offered = [c["id"] for c in data["candidates"]]
        assert OLD not in offered and offered[:2] == [NEW, MID]  # its experiment's first
        assert [r["name"] for r in data["picked"]] == ["baseline"]
        assert f'Picked: <a href="/runs/{OLD}">baseline</a>' in page.text
        assert all(c["add_href"].startswith(f"/compare?ids={OLD}%2C") for c in data["candidates"])


async def test_too_many_or_unknown_runs_keep_the_picker_with_the_error(
    web: httpx.AsyncClient,
) -> None:
    many = ",".join(f"{i:032x}" for i in range(11))
    page = await web.get(f"/compare?ids={many}")
    assert page.status_code == 422 and "compare takes 2 to 10" in page.text
    assert 'name="q"' in page.text and many in page.text  # the pasted ids are kept
    assert (await web.get(f"/api/compare?ids={many}")).status_code == 422
    unknown = await web.get(f"/compare?ids={OLD},{'f' * 32}")
    assert unknown.status_code == 404 and 'name="q"' in unknown.text
    assert (await web.get(f"/api/compare?ids={OLD},{'f' * 32}")).json()["error"]["status"] == 404


async def test_the_picker_finds_runs_by_name_experiment_or_id(web: httpx.AsyncClient) -> None:
    async def found(q: str) -> list[str]:
        data = (await web.get(f"/api/compare?ids={OLD}&q={q}")).json()
        return [c["id"] for c in data["candidates"]]

    assert await found("WID") == [MID]  # a name, any case
    assert set(await found("iris")) == {IRIS}  # an experiment
    assert set(await found("mnist")) == {MID, NEW}  # the picked run is left out
    assert await found(IRIS[:10]) == [IRIS]  # an id prefix
    assert await found("nothing-like-it") == []
    # the store filters names: a run behind more than a thousand newer ones is found too
    assert await found("HAYSTACK") == [NEEDLE]
    assert await found("archive-20") == [NEEDLE]  # part of its experiment's name
    assert len(await found("filler-")) == 20  # the newest twenty of many
    page = (await web.get(f"/compare?ids={OLD}&q=wider")).text
    assert f'href="/compare?ids={OLD}%2C{MID}&amp;q=wider"' in page


async def test_best_value_per_metric_row_follows_the_name(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/compare?ids={OLD},{MID},{NEW}")).json()
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["acc"]["direction"] == "max" and metrics["acc"]["best"]["max"] == [1]
    assert metrics["loss"]["direction"] == "min" and metrics["loss"]["best"]["min"] == [1]
    assert metrics["loss"]["best"]["max"] == [2]  # what the per-row toggle switches to
    page = (await web.get(f"/compare?ids={OLD},{MID},{NEW}")).text
    assert page.count('class="num best"') == 2
    assert 'data-best-max="2" data-best-min="1"' in page
    flipped = (await web.get(f"/api/compare?ids={OLD},{MID},{NEW}&flip=loss")).json()
    assert {m["key"]: m["direction"] for m in flipped["metrics"]} == {"acc": "max", "loss": "max"}


async def test_one_colour_per_run_in_headers_legend_and_charts(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/compare?ids={OLD},{MID},{NEW}")).json()
    labels = [r["label"] for r in data["runs"]]
    # colours go by label order, as Vega's default scale would give them: baseline, deeper, wider
    assert [r["color"] for r in data["runs"]] == [0, 2, 1]
    for chart in data["charts"]:
        color = chart["spec"]["encoding"]["color"]
        assert color["scale"] == {"domain": sorted(labels), "range": list(PALETTE[:3])}
        assert color["legend"] is None  # the page's legend, below the charts, names them
    assert PALETTE[:2] == ("#4c78a8", "#f58518")  # Vega's tableau10
    page = (await web.get(f"/compare?ids={OLD},{MID},{NEW}")).text
    legend = page[page.index('class="run-legend"') :]
    for i, name in ((0, "baseline"), (2, "wider"), (1, "deeper")):
        assert f'run-head run-c{i}"' in page
        assert f'swatch run-c{i}" aria-hidden="true"></span><a href="/runs/' in legend
        assert name in legend


async def test_identical_params_can_be_hidden(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/compare?ids={MID},{NEW}")).json()
    assert {p["key"]: p["differs"] for p in data["params"]} == {"depth": True, "lr": False}
    page = (await web.get(f"/compare?ids={MID},{NEW}")).text
    assert '<tr class="same"><th scope="row">lr</th>' in page and 'id="hide-same"' in page
    assert 'class="compare"' in page
    hidden = (await web.get(f"/compare?ids={MID},{NEW}&same=hide")).text
    assert 'class="compare hide-same"' in hidden and 'id="hide-same" checked' in hidden
    assert "/static/compare.js" in hidden


async def test_parallel_coordinates_and_scatter_with_chosen_axes(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/compare?ids={OLD},{MID},{NEW}")).json()
    assert (
        'class="chart figure-chart" id="parallel" data-vega='
        in (await web.get(f"/compare?ids={OLD},{MID},{NEW}")).text
    )
    axes = data["parallel"]["layer"][0]["data"]["values"]
    assert [a["axis"] for a in axes] == ["depth", "lr", "acc", "loss"]
    lines = data["parallel"]["layer"][1]["data"]["values"]
    depth = {row["run"][:5]: row["y"] for row in lines if row["axis"] == "depth"}
    assert depth == {"basel": 0.0, "wider": pytest.approx(2 / 6), "deepe": 1.0}
    scatter = data["scatter"]
    assert scatter["x"] == "param:depth" and scatter["y"] == "metric:acc"
    assert {"param:lr", "metric:loss"} <= set(scatter["x_choices"])
    chosen = (await web.get(f"/api/compare?ids={OLD},{MID}&x=param:lr&y=metric:loss")).json()
    rows = chosen["scatter"]["spec"]["data"]["values"]
    assert sorted((r["x"], r["y"]) for r in rows) == [(0.01, 0.3), (0.1, 0.6)]
    assert chosen["scatter"]["spec"]["encoding"]["x"]["title"] == "lr"
    odd = (await web.get(f"/api/compare?ids={OLD},{MID}&x=nope&y=param:lr")).json()
    assert odd["scatter"]["x"] == "param:depth" and odd["scatter"]["y"] == "metric:acc"


def test_parallel_axes_place_categories_and_skip_missing_values() -> None:
    spec = parallel_spec(["a", "b", "c"], [("opt", ["adam", "sgd", None]), ("acc", [1, 2, 3])])
    assert spec is not None
    rows = spec["layer"][1]["data"]["values"]
    assert [(r["run"], r["y"]) for r in rows if r["axis"] == "opt"] == [("a", 0.0), ("b", 1.0)]
    assert parallel_spec(["a", "b"], [("x", [None, None]), ("y", [1, 2])]) is None

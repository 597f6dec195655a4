"""Route tests for the web UI and its JSON read API, over the seeded store on each backend."""

from __future__ import annotations

import re
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from chachaml.records.runs import MetricChunk, NewRun
from chachaml.server.app import create_app
from chachaml.server.ui.markdown import note_html
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.server_state import ServerStore
from tests.support.mcp_seed import IRIS, MID, NEW, OLD, seed

pytestmark = pytest.mark.anyio
PAGES = [
    "/",
    "/runs",
    f"/runs/{MID}",
    f"/runs/{MID}/artifacts",
    "/experiments",
    "/experiments/mnist",
    "/compare",
    "/models",
    "/models/digits",
    "/diff/digits/1/2",
    "/pipelines",
]


@asynccontextmanager
async def seeded_web(store: ServerStore, path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ``store`` once seeded, as user bo, through an in-process client."""
    await seed(store, path / "artifacts")
    app = create_app(store, artifacts=open_artifact_store(str(path / "artifacts")), user="bo")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture(scope="module")
async def web(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """One seeded store per backend for the module's read-only tests."""
    store = await open_store(module_store_url)
    try:
        async with seeded_web(store, tmp_path_factory.mktemp("ui")) as client:
            yield client
    finally:
        await store.close()


@pytest.fixture
async def own_web(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A seeded store of the test's own, for tests that add rows."""
    async with seeded_web(store, tmp_path) as client:
        yield client


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_renders_with_a_csp_and_has_a_json_twin(
    web: httpx.AsyncClient, path: str
) -> None:
    page = await web.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"<[^>]*\son[a-z]+=", page.text), "inline event handler"
    assert not re.search(r"<script>", page.text), "inline script"
    twin = await web.get("/api" + path)
    assert twin.status_code == 200
    assert isinstance(twin.json(), dict)


async def test_runs_lists_newest_first_and_filters(web: httpx.AsyncClient) -> None:
    ids = [r["id"] for r in (await web.get("/api/runs")).json()["runs"]]
    assert ids == [IRIS, NEW, MID, OLD]
    failed = (await web.get("/api/runs?status=failed")).json()["runs"]
    assert [r["id"] for r in failed] == [NEW]
    mine = (await web.get("/api/runs?mine=1")).json()
    assert [r["id"] for r in mine["runs"]] == [IRIS] and mine["filters"]["created_by"] == "bo"
    window = (await web.get("/api/runs?since=2025-02-01&until=2025-03-10")).json()["runs"]
    assert [r["id"] for r in window] == [NEW, MID]
    mnist = (await web.get("/api/runs?experiment=mnist")).json()
    assert len(mnist["runs"]) == 3 and mnist["live_seconds"] is None


async def test_runs_sort_by_a_metric_and_paginate(web: httpx.AsyncClient) -> None:
    best = (await web.get("/api/runs?sort=acc&dir=max")).json()["runs"]
    assert [r["id"] for r in best] == [IRIS, MID, OLD, NEW]
    worst = (await web.get("/api/runs?sort=acc&dir=min&limit=2")).json()
    assert [r["id"] for r in worst["runs"]] == [NEW, OLD] and worst["more"] is True
    rest = (await web.get("/api/runs?sort=acc&dir=min&limit=2&offset=2")).json()
    assert [r["id"] for r in rest["runs"]] == [MID, IRIS] and rest["more"] is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sort=name&dir=min", [OLD, NEW, IRIS, MID]),  # baseline, deeper, svm, wider
        ("sort=name&dir=max", [MID, IRIS, NEW, OLD]),
        ("sort=experiment&dir=min", [IRIS, NEW, MID, OLD]),  # iris, then mnist newest first
        ("sort=status&dir=min", [IRIS, MID, OLD, NEW]),  # completed before failed
        ("sort=user&dir=max", [IRIS, NEW, MID, OLD]),  # bo before ana
        ("sort=started&dir=min", [OLD, MID, NEW, IRIS]),
        ("sort=duration&dir=max", [IRIS, NEW, MID, OLD]),  # all 600 s: newest first
    ],
)
async def test_runs_sort_by_every_column(
    web: httpx.AsyncClient, query: str, expected: list[str]
) -> None:
    assert [r["id"] for r in (await web.get(f"/api/runs?{query}")).json()["runs"]] == expected


async def test_run_table_headers_link_to_their_sort_and_mark_the_current_one(
    web: httpx.AsyncClient,
) -> None:
    page = (await web.get("/runs?sort=name&dir=min")).text
    assert 'aria-sort="ascending"><a href="?sort=name&amp;dir=max">name</a> ▲' in page
    for key in ("experiment", "status", "user"):  # text columns sort A to Z first
        assert f'<a href="?sort={key}&amp;dir=min">{key}</a>' in page
    for key in ("started", "duration"):  # times and numbers largest first
        assert f'<a href="?sort={key}&amp;dir=max">{key}</a>' in page
    assert '<a href="?sort=metrics.acc&amp;dir=max">metrics.acc</a>' in page
    assert "By name, ascending." in page


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=0",
        "limit=1000",
        "offset=-1",
        "status=sleeping",
        "since=yesterday",
        "since=2025-03-01&until=2025-01-01",
        "dir=up",
    ],
)
async def test_bad_runs_query_parameters_are_4xx_with_a_message(
    web: httpx.AsyncClient, query: str
) -> None:
    answer = await web.get(f"/api/runs?{query}")
    assert answer.status_code == 422
    assert answer.json()["error"]["message"]
    page = await web.get(f"/runs?{query}")
    assert page.status_code == 422 and "Error 422" in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/runs/" + "f" * 32,
        "/runs/" + "f" * 32 + "/artifacts",
        "/experiments/nope",
        "/models/nope",
        "/diff/digits/1/9",
        "/pipelines/" + "e" * 32,
    ],
)
async def test_unknown_ids_are_404_in_page_and_json(web: httpx.AsyncClient, path: str) -> None:
    assert (await web.get(path)).status_code == 404
    answer = await web.get("/api" + path)
    assert answer.status_code == 404
    assert answer.json()["error"]["status"] == 404


async def test_unknown_metric_and_artifact_are_404(web: httpx.AsyncClient) -> None:
    assert (await web.get(f"/api/runs/{MID}/metrics/nope")).status_code == 404
    assert (await web.get(f"/api/artifacts/{MID}/nope.bin")).status_code == 404
    assert (await web.get(f"/api/artifacts/{'f' * 32}/model.bin")).status_code == 404


@pytest.mark.parametrize("name", ["%2e%2e/%2e%2e/etc/passwd", "a/%2e%2e/b", "%2Fetc%2Fpasswd"])
async def test_artifact_names_that_escape_are_refused(web: httpx.AsyncClient, name: str) -> None:
    answer = await web.get(f"/api/artifacts/{MID}/{name}")
    assert 400 <= answer.status_code < 500


async def test_run_detail_has_params_metrics_charts_note_and_artifacts(
    web: httpx.AsyncClient,
) -> None:
    data = (await web.get(f"/api/runs/{MID}")).json()
    assert data["run"]["params"] == {"lr": 0.01, "depth": 4}
    assert data["run"]["metrics"]["acc"] == 0.92
    assert [m["key"] for m in data["metrics"]] == ["acc", "loss"]
    assert data["metrics"][0]["count"] == 3
    assert data["metrics"][0]["series_url"] == f"/api/runs/{MID}/metrics/acc"
    assert data["note_html"] == "<p>Promising: lower lr helps.</p>\n"
    names = {a["name"]: a for a in data["artifacts"]}
    assert set(names) == {"model.bin", "notes.txt", "recall", "curve.png"}
    assert "uri" not in names["model.bin"]
    page = (await web.get(f"/runs/{MID}")).text
    assert "reviewed=yes" in page and "mnist-train" in page and 'class="chart"' in page


async def test_artifact_download_is_inline_only_for_raster_images(web: httpx.AsyncClient) -> None:
    image = await web.get(f"/api/artifacts/{MID}/curve.png")
    assert image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    assert "sandbox" in image.headers["content-security-policy"]
    text = await web.get(f"/api/artifacts/{MID}/notes.txt")
    assert text.content == b"trained on 4 GPUs"
    assert text.headers["content-type"] == "application/octet-stream"
    assert text.headers["content-disposition"].startswith("attachment")
    forced = await web.get(f"/api/artifacts/{MID}/curve.png?download=1")
    assert forced.headers["content-disposition"].startswith("attachment")


async def test_metric_series_json_and_full_csv(web: httpx.AsyncClient) -> None:
    series = (await web.get(f"/api/runs/{OLD}/metrics/loss")).json()
    assert series["steps"] == [0, 1, 2] and series["values"] == [1.0, 0.8, 0.6]
    assert series["downsampled"] is False
    csv_text = (await web.get(f"/api/runs/{OLD}/metrics/loss?format=csv")).text
    assert csv_text.splitlines()[0] == "step,value,timestamp" and len(csv_text.splitlines()) == 4
    assert (await web.get(f"/api/runs/{OLD}/metrics/loss?format=xml")).status_code == 422
    assert (await web.get(f"/api/runs/{OLD}/metrics/loss?points=1")).status_code == 422


async def test_long_series_are_downsampled_for_display(
    store: ServerStore, own_web: httpx.AsyncClient
) -> None:
    n = 100_000
    await store.create_run(
        NewRun(
            id="e" * 32,
            experiment="long",
            name="long",
            created_by="ana",
            started_at=1.0,
            heartbeat_timeout=60.0,
        )
    )
    values = [float(i % 977) for i in range(n)]
    await store.log_metrics(
        [
            MetricChunk(
                run_id="e" * 32,
                key="loss",
                count=n,
                steps=struct.pack(f"<{n}q", *range(n)),
                values=struct.pack(f"<{n}d", *values),
                timestamps=struct.pack(f"<{n}d", *([2.0] * n)),
                last_value=values[-1],
                last_step=n - 1,
                last_time=2.0,
                min_value=0.0,
                max_value=976.0,
            )
        ]
    )
    chart = (await own_web.get(f"/api/runs/{'e' * 32}/metrics/loss")).json()
    assert chart["total"] == n and chart["downsampled"] is True
    assert len(chart["values"]) <= 1000 and set(chart["values"]) >= {0.0, 976.0}
    full = (await own_web.get(f"/api/runs/{'e' * 32}/metrics/loss?format=csv")).text
    assert len(full.splitlines()) == n + 1


async def test_export_is_csv_of_the_filtered_set(web: httpx.AsyncClient) -> None:
    answer = await web.get("/api/export?experiment=mnist&status=completed")
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.splitlines()
    assert "params.lr" in lines[0] and "metrics.acc" in lines[0]
    assert sorted(line.split(",")[0] for line in lines[1:]) == [OLD, MID]
    assert (await web.get("/api/export?status=nope")).status_code == 422


async def test_experiments_show_the_best_value_of_a_chosen_metric(web: httpx.AsyncClient) -> None:
    rows = {
        e["name"]: e for e in (await web.get("/api/experiments?metric=acc")).json()["experiments"]
    }
    assert rows["mnist"]["best"] == {"run_id": MID, "value": 0.92}
    assert rows["mnist"]["description"] == "handwritten digits" and rows["mnist"]["run_count"] == 3
    low = (await web.get("/api/experiments?metric=loss&direction=min")).json()["experiments"]
    assert {e["name"]: e["best"] for e in low}["iris"] is None
    one = (await web.get("/api/experiments/mnist?metric=loss&direction=min")).json()
    assert one["best"]["run"]["id"] == MID and len(one["runs"]) == 3


async def test_compare_flags_differing_params_and_overlays_curves(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/compare?ids={OLD},{MID}&ids={NEW}")).json()
    assert data["ids"] == [OLD, MID, NEW]
    params = {p["key"]: p for p in data["params"]}
    assert params["lr"]["differs"] is True and params["lr"]["cells"] == [0.1, 0.01, 0.01]
    spec = {c["key"]: c["spec"] for c in data["charts"]}["acc"]
    assert {row["run"] for row in spec["data"]["values"]} == {r["label"] for r in data["runs"]}
    assert 'class="differs"' in (await web.get(f"/compare?ids={OLD},{MID}")).text


async def test_compare_takes_at_most_10_runs(web: httpx.AsyncClient) -> None:
    ids = ",".join(f"{i:032x}" for i in range(11))  # fewer than 2: see test_compare.py
    assert (await web.get(f"/api/compare?ids={ids}")).status_code == 422


async def test_models_show_stages_aliases_history_and_a_diff(web: httpx.AsyncClient) -> None:
    models = (await web.get("/api/models")).json()["models"]
    assert models[0]["name"] == "digits" and models[0]["production_version"] == 2
    model = (await web.get("/api/models/digits")).json()["model"]
    assert {v["version"]: v["stage"] for v in model["versions"]} == {1: "staging", 2: "production"}
    assert len(model["history"]) >= 2
    page = (await web.get("/models/digits")).text
    assert "stage-production" in page and "/diff/digits/1/2" in page
    diff = (await web.get("/api/diff/digits/1/2")).json()["diff"]
    assert diff["params"]["lr"] == {"v1": 0.1, "v2": 0.01, "in_v1": True, "in_v2": True}
    assert (await web.get("/api/diff/digits/one/2")).status_code == 422


async def test_pipelines_page_lists_and_rejects_bad_status(web: httpx.AsyncClient) -> None:
    assert (await web.get("/api/pipelines")).json()["pipelines"] == []
    assert (await web.get("/api/pipelines?status=weird")).status_code == 422


async def test_user_text_is_escaped_and_notes_are_sanitized(
    store: ServerStore, own_web: httpx.AsyncClient
) -> None:
    evil = "<img src=x onerror=alert(1)>"
    await store.create_run(
        NewRun(
            id="9" * 32,
            experiment="x",
            name=evil,
            created_by="ana",
            started_at=1.0,
            heartbeat_timeout=60.0,
            tags={"t": evil},
        )
    )
    await store.set_note("9" * 32, "<script>alert(1)</script> and $a<b$")
    for path in ("/runs", f"/runs/{'9' * 32}"):
        page = (await own_web.get(path)).text
        assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    detail = (await own_web.get(f"/runs/{'9' * 32}")).text
    assert "<script>alert" not in detail and "&lt;script&gt;" in detail


def test_markdown_notes_keep_math_and_drop_dangerous_links() -> None:
    html = note_html("**b** $x^2$ [a](javascript:alert(1)) [ok](https://example.org)")
    assert '<span class="math inline">x^2</span>' in html
    assert "javascript:" not in html.replace("[a](javascript:alert(1))", "")
    assert 'href="https://example.org"' in html
    assert note_html(None) == ""


async def test_static_bundles_are_served_locally(web: httpx.AsyncClient) -> None:
    page = (await web.get(f"/runs/{MID}")).text  # a page with charts; KaTeX comes with math
    for script in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "katex.min.js"):
        assert script == "katex.min.js" or f'src="/static/vendor/{script}"' in page
        assert (await web.get(f"/static/vendor/{script}")).status_code == 200
    assert not re.search(r'(src|href)="(https?:)?//', page), "a request to another host"

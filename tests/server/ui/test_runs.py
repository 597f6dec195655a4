"""Route tests of the Runs table: filter expression, columns, nesting, counts, paging, search.

Over the seeded store (see tests.support.mcp_seed) plus a sweep: a parent run with three
trials, on each backend.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from chachaml.errors import InvalidInput
from chachaml.records.runs import NewRun
from chachaml.server.app import create_app
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools.run_filter import parse_filter
from tests.support.mcp_seed import IRIS, MID, NEW, OLD, seed

pytestmark = pytest.mark.anyio
SWEEP = "5" * 32
TRIALS = [f"{i}" * 32 for i in (6, 7, 8)]


@pytest.fixture(scope="module")
async def web(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The seeded store plus a sweep (a parent and three trials with an lr each)."""
    path = tmp_path_factory.mktemp("runs-ui")
    store = await open_store(module_store_url)
    try:
        await seed(store, path / "artifacts")
        t0 = datetime(2025, 4, 1, tzinfo=UTC).timestamp()
        await store.create_run(
            NewRun(id=SWEEP, experiment="sweeps", name="lr sweep", created_by="bo",
                   started_at=t0, heartbeat_timeout=3600.0)
        )  # fmt: skip
        for i, trial in enumerate(TRIALS):
            await store.create_run(NewRun(id=trial, experiment="sweeps", name=f"trial-{i}",
                                          created_by="bo", started_at=t0 + 1 + i,
                                          parent_id=SWEEP, heartbeat_timeout=3600.0))  # fmt: skip
            await store.log_params(trial, {"lr": [0.3, 0.03, 3][i]})
            await store.end_run(trial, "completed", None, t0 + 10 + i)
        app = create_app(store, artifacts=open_artifact_store(str(path / "artifacts")), user="bo")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await store.close()


async def ids(web: httpx.AsyncClient, query: str) -> list[str]:
    answer = await web.get(f"/api/runs?{query}")
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["runs"]]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("metrics.acc > 0.5 and params.lr = 0.01", [MID]),
        ("acc >= 0.7", [IRIS, MID, OLD]),  # a bare key is a metric
        ('tags.reviewed = "yes"', [MID]),
        ("status = failed", [NEW]),
        ("user = bo and experiment = iris", [IRIS]),
        ("started > 2025-02-10 and started <= 2025-03-05", [NEW]),  # whole days
        ("started = 2025-02-10", [MID]),
        ("name ~ DEEP", [NEW]),
        ("experiment ~ nis and params.depth = 2", [OLD]),
        ("params.lr = 3", [TRIALS[2]]),
    ],
)
async def test_the_filter_expression_narrows_runs(
    web: httpx.AsyncClient, expression: str, expected: list[str]
) -> None:
    assert await ids(web, f"q={quote(expression)}") == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("acc>>0.9", "at character 5: expected a value after acc >"),
        ("acc > high", "needs a finite number"),
        ("params.lr > 1", "params.lr takes =, not >"),
        ("status = sleeping", "status is one of"),
        ("acc > 1 or loss < 2", "only 'and' joins conditions"),
        ("bogus.key = 1", "unknown key 'bogus.key'"),
        ("started > yesterday", "started needs a date"),
        ('tags.team = "x', "unexpected"),
        ("acc >", "but the filter ends"),
    ],
)
async def test_a_filter_typo_is_an_inline_error_that_keeps_the_text(
    web: httpx.AsyncClient, expression: str, message: str
) -> None:
    answer = await web.get(f"/api/runs?q={quote(expression)}")
    assert answer.status_code == 422 and message in answer.json()["error"]["message"]
    page = await web.get(f"/runs?q={quote(expression)}&experiment=mni")
    assert page.status_code == 422 and "Error 422" not in page.text
    assert 'id="runs-q-error" role="alert"' in page.text and message in html.unescape(page.text)
    typed = re.search(r'id="runs-q" name="q" value="([^"]*)"', page.text)
    assert typed is not None and html.unescape(typed.group(1)) == expression
    assert 'name="experiment" value="mni"' in page.text


async def test_filter_and_form_fields_that_disagree_say_so(web: httpx.AsyncClient) -> None:
    answer = await web.get("/api/runs?status=completed&q=status%20%3D%20failed")
    assert answer.status_code == 422 and "status is set both" in answer.json()["error"]["message"]
    assert await ids(web, "status=failed&q=status%20%3D%20failed") == [NEW]


def test_the_parser_reads_quotes_types_and_date_bounds() -> None:
    flt = parse_filter(
        "params.opt = 'a b' and params.n = 3 and params.s = \"3\" and started < 2025-01-02T12:00"
    )
    assert flt.params == {"opt": "a b", "n": 3, "s": "3"}
    assert flt.until == datetime(2025, 1, 2, 12, tzinfo=UTC) and flt.since is None
    assert parse_filter("  ").metric_conditions == []
    with pytest.raises(InvalidInput, match="given twice"):
        parse_filter("status = failed and status = completed")


async def test_name_search_and_the_experiment_picker_match_substrings(
    web: httpx.AsyncClient,
) -> None:
    assert await ids(web, "name=DEE") == [NEW]
    assert await ids(web, "experiment=nis") == [NEW, MID, OLD]
    assert await ids(web, "experiment=mnist") == [NEW, MID, OLD]  # the exact name
    assert await ids(web, "experiment=sweep") == [SWEEP]  # nested: the trials hide under it
    keys = (await web.get("/api/runs/keys")).json()
    assert {"mnist", "iris", "sweeps"} <= set(keys["experiments"])
    assert "acc" in keys["metrics"] and "lr" in keys["params"] and "reviewed" in keys["tags"]
    assert (await web.get("/api/runs/keys?q=acc>>")).status_code == 200  # half typed


async def test_columns_come_from_the_url_and_survive_paging(web: httpx.AsyncClient) -> None:
    first = await web.get("/runs?cols=params.lr,tags.reviewed,metrics.acc&limit=2&nest=0")
    assert first.status_code == 200
    for key in ("params.lr", "tags.reviewed", "metrics.acc"):
        assert f"{key}</a>" in first.text or f">{key}<" in first.text
    nxt = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert nxt is not None
    href = nxt.group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(href).query)["cols"] == ["params.lr,tags.reviewed,metrics.acc"]
    second = (await web.get("/api" + "/runs" + href)).json()
    assert [c["key"] for c in second["columns"]] == ["params.lr", "tags.reviewed", "metrics.acc"]
    assert second["offset"] == 2
    lrs = {r["id"]: r["params"].get("lr") for r in second["runs"]}
    assert lrs  # params of the shown runs ride along for the param column
    default_one = (await web.get("/api/runs?limit=1")).json()["columns"]
    default_two = (await web.get("/api/runs?limit=1&offset=3")).json()["columns"]
    assert default_one == default_two and {"key": "metrics.acc", "kind": "metrics",
                                           "name": "acc"} in default_one  # fmt: skip


async def test_sort_by_a_param_or_metric_column(web: httpx.AsyncClient) -> None:
    assert await ids(web, "sort=params.lr&dir=min&nest=0&experiment=sweeps") == [
        TRIALS[1], TRIALS[0], TRIALS[2]
    ]  # fmt: skip
    assert (await ids(web, "sort=metrics.acc&dir=max"))[0] == IRIS
    data = (await web.get("/api/runs?sort=params.depth&cols=metrics.acc")).json()
    assert [c["key"] for c in data["columns"]] == ["metrics.acc", "params.depth"]
    assert (await web.get("/api/runs?sort=tags.reviewed")).status_code == 422


async def test_child_runs_nest_under_their_parent_with_a_count(web: httpx.AsyncClient) -> None:
    data = (await web.get("/api/runs")).json()
    assert [r["id"] for r in data["runs"]] == [SWEEP, IRIS, NEW, MID, OLD]
    assert data["total"] == 5
    sweep = data["runs"][0]
    assert sweep["child_count"] == 3 and [c["id"] for c in sweep["children"]] == TRIALS
    assert data["runs"][1]["child_count"] == 0 and data["runs"][1]["children"] == []
    page = (await web.get("/runs")).text
    assert f'data-toggle="{SWEEP}" aria-expanded="false"' in page
    assert page.count(f'data-parent="{SWEEP}" hidden') == 3
    flat = (await web.get("/api/runs?nest=0")).json()
    assert flat["total"] == 8 and len(flat["runs"]) == 8
    assert await ids(web, f"parent={SWEEP}") == TRIALS[::-1]
    assert (await web.get("/api/runs?q=acc%3E0")).json()["total"] == 4  # a search lists flat


async def test_total_count_and_page_jumping(web: httpx.AsyncClient) -> None:
    data = (await web.get("/api/runs?limit=2")).json()
    assert (data["total"], data["pages"], data["page"], data["more"]) == (5, 3, 1, True)
    third = (await web.get("/api/runs?limit=2&page=3")).json()
    assert (third["offset"], third["page"], third["more"]) == (4, 3, False)
    assert [r["id"] for r in third["runs"]] == [OLD]
    beyond = (await web.get("/api/runs?limit=2&page=99")).json()
    assert beyond["page"] == 3  # past the end: the last page
    page = (await web.get("/runs?limit=2&offset=2")).text
    assert "3\u20134 of 5 runs" in page
    assert 'rel="first"' in page and 'rel="prev"' in page and 'rel="last"' in page
    assert 'name="page"' in page and 'max="3"' in page
    assert (await web.get("/api/runs?page=0")).status_code == 422


async def test_the_table_ticks_runs_for_compare(web: httpx.AsyncClient) -> None:
    page = (await web.get("/runs")).text
    assert '<form method="get" action="/compare" id="compare-form"' in page
    assert f'name="ids" value="{MID}"' in page and 'id="compare-button"' in page
    assert '<script src="/static/runs.js" defer></script>' in page
    assert (await web.get("/static/runs.js")).status_code == 200


async def test_live_rows_poll_only_while_runs_are_running(web: httpx.AsyncClient) -> None:
    data = (await web.get("/api/runs")).json()
    assert data["live_seconds"] is None
    page = (await web.get("/runs")).text
    assert "data-refresh" not in page and 'id="runs-live" hidden' in page
    # runs.js still follows run events from where the page was built (new runs appear)
    assert data["events_after"].isdigit() and 'data-events-after="' in page
    assert "data-columns='[\"metrics." in page  # the columns a new row gets


async def test_search_redirects_to_the_runs_filter(web: httpx.AsyncClient) -> None:
    answer = await web.get("/search?where=acc>0.5&param=lr=0.01&tag=reviewed=yes&experiment=mnist")
    assert answer.status_code == 303
    target = answer.headers["location"]
    assert target.startswith("/runs?")
    query = parse_qs(urlsplit(target).query)
    assert query["q"] == ['metrics.acc >0.5 and params.lr = 0.01 and tags.reviewed = "yes"']
    assert query["experiment"] == ["mnist"]
    assert await ids(web, urlsplit(target).query) == [MID]
    api = await web.get("/api/search?where=acc>>1")
    assert api.headers["location"].startswith("/api/runs?")
    bad = await web.get(api.headers["location"])
    assert bad.status_code == 422 and "character" in bad.json()["error"]["message"]
    assert (await web.get("/search")).headers["location"] == "/runs"


async def test_a_costly_count_stops_at_a_cap_and_says_so(
    web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chachaml.server.ui import runs as runs_ui

    monkeypatch.setattr(runs_ui, "COUNT_CAP", 2)
    data = (await web.get("/api/runs?sort=metrics.acc&limit=1")).json()
    assert (data["total"], data["total_capped"], data["more"]) == (2, True, True)
    far = (await web.get("/api/runs?sort=metrics.acc&limit=1&offset=3")).json()
    assert [r["id"] for r in far["runs"]] == [NEW]  # pages past the cap still open
    page = (await web.get("/runs?sort=metrics.acc&limit=1")).text
    assert "of 2+ runs" in page and 'rel="last"' not in page
    plain = (await web.get("/api/runs?limit=1")).json()
    assert (plain["total"], plain["total_capped"]) == (5, False)  # plain filters: higher cap
    monkeypatch.setattr(runs_ui, "PLAIN_COUNT_CAP", 3)
    plain = (await web.get("/api/runs?limit=1")).json()
    assert (plain["total"], plain["total_capped"], plain["pages"]) == (3, True, 3)


async def test_export_follows_the_filter_expression_and_lists_children(
    web: httpx.AsyncClient,
) -> None:
    answer = await web.get(f"/api/export?q={quote('params.lr = 0.01 and acc > 0.5')}")
    assert answer.status_code == 200
    assert [line.split(",")[0] for line in answer.text.splitlines()[1:]] == [MID]
    sweep = (await web.get("/api/export?experiment=sweeps")).text.splitlines()
    assert len(sweep) == 1 + 4  # the parent and its trials
    assert (await web.get("/api/export?q=acc%3E%3E1")).status_code == 422


async def test_default_columns_are_the_commonest_metrics_of_the_filtered_runs(
    web: httpx.AsyncClient,
) -> None:
    for filters in ("", "experiment=sweeps", "q=acc>0.5"):
        keys = (await web.get(f"/api/runs/keys?{filters}")).json()["metrics"]
        page = (await web.get(f"/api/runs?{filters}")).json()
        assert [c["key"] for c in page["columns"]] == [f"metrics.{k}" for k in sorted(keys[:6])]
        assert "acc" in keys or filters == "experiment=sweeps"

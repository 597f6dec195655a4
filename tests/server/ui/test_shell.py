"""The page shell on every page, the overview at ``/`` and the styled error pages, in-process.

Landmarks and the skip link, times as ``<time>`` elements (the JSON keeps ISO strings), the
vendored chart and math scripts only on the pages that use them, a styled 404/405/500 with
the nav outside ``/api`` and the API's error envelope inside it.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.requests import Request
from starlette.routing import Route

from chachaml.records.runs import NewRun
from chachaml.server.app import create_app
from chachaml.server.ui.times import when
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from tests.support.alerts_seed import seed_alerts
from tests.support.mcp_seed import MID, NEW, OLD, seed

pytestmark = pytest.mark.anyio
LIVE = "5" * 32
VEGA, KATEX = "/static/vendor/vega.min.js", "/static/vendor/katex.min.js"


async def _boom(request: Request) -> None:
    raise RuntimeError("a bug, with a secret: hunter2")


@pytest.fixture(scope="module")
async def web(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The seeded store plus alerts and one live run; two routes that fail with a bug."""
    path = tmp_path_factory.mktemp("shell")
    store = await open_store(module_store_url)
    try:
        await seed(store, path / "artifacts")
        await seed_alerts(store)
        await store.create_run(
            NewRun(
                id=LIVE,
                experiment="mnist",
                name="still-training",
                created_by="bo",
                started_at=time.time() - 90,
                heartbeat_timeout=86_400.0,
            )
        )
        app = create_app(store, artifacts=open_artifact_store(str(path / "artifacts")), user="bo")
        app.router.routes += [Route("/boom", _boom), Route("/api/boom", _boom)]
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await store.close()


async def test_overview_json_lists_running_failures_registry_changes_and_alerts(
    web: httpx.AsyncClient,
) -> None:
    answer = await web.get("/api/")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    data = answer.json()
    assert [r["id"] for r in data["running"]] == [LIVE]
    assert data["running"][0]["started_at"].endswith("Z")  # ISO, as every twin prints times
    assert [r["id"] for r in data["failures"]] == [NEW]
    assert data["failures"][0]["error"] == "CUDA out of memory"
    changes = data["registry_changes"]
    assert {(c["model"], c["version"], c["new"]) for c in changes} >= {
        ("digits", 1, "staging"),
        ("digits", 2, "production"),
    }
    assert [c["at"] for c in changes] == sorted((c["at"] for c in changes), reverse=True)
    [fired] = data["alerts"]
    assert (fired["alert"], fired["run_id"], fired["delivery"]) == ("acc-low", NEW, "delivered")


async def test_overview_page_links_each_row_to_its_page(web: httpx.AsyncClient) -> None:
    page = await web.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for href in (f"/runs/{LIVE}", f"/runs/{NEW}", "/models/digits", "/alerts?alert=acc-low"):
        assert f'href="{href}"' in html, href
    assert "still-training" in html and "CUDA out of memory" in html
    assert '<a href="/" class="active">Overview</a>' in html
    assert '<a class="brand" href="/">' in html
    assert '<a class="json" href="/api/">' in html


async def test_overview_says_so_when_a_table_is_empty(tmp_path: object) -> None:
    store = await open_store("sqlite:///:memory:")
    try:
        app = create_app(store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as web:
            html = (await web.get("/")).text
            data = (await web.get("/api/")).json()
    finally:
        await store.close()
    assert data == {"running": [], "failures": [], "registry_changes": [], "alerts": [], "rows": 10}
    for text in ("Nothing is running.", "No failed or killed runs.", "No alert has fired."):
        assert text in html


@pytest.mark.parametrize("path", ["/", "/runs", f"/runs/{MID}", "/models/digits", "/nope"])
async def test_every_page_has_a_skip_link_and_named_landmarks(
    web: httpx.AsyncClient, path: str
) -> None:
    html = (await web.get(path)).text
    assert '<a class="skip-link" href="#main">' in html
    assert html.count('<main id="main"') == 1
    assert len(re.findall(r"<nav\b", html)) == len(re.findall(r"<nav\b[^>]*aria-label=", html))
    assert html.count('aria-label="Main"') == 1
    assert 'aria-controls="site-menu"' in html and 'id="site-menu"' in html


async def test_vendored_scripts_load_only_where_they_are_used(web: httpx.AsyncClient) -> None:
    for path in ("/", "/runs", "/experiments", "/models", "/alerts", "/nope"):
        html = (await web.get(path)).text
        assert VEGA not in html and KATEX not in html, path
        assert '<script src="/static/shell.js"></script>' in html
    run = (await web.get(f"/runs/{MID}")).text
    assert VEGA in run and KATEX not in run  # its note has no math
    assert VEGA in (await web.get(f"/compare?ids={OLD},{MID}")).text
    await web.post(f"/runs/{OLD}/note", json={"note": "loss $x^2$"})
    assert KATEX in (await web.get(f"/runs/{OLD}")).text


async def test_times_print_as_time_elements_and_the_twin_keeps_iso(
    web: httpx.AsyncClient,
) -> None:
    html = (await web.get(f"/runs/{MID}")).text
    started = (await web.get(f"/api/runs/{MID}")).json()["run"]["started_at"]
    assert re.fullmatch(r"2025-02-10T\d\d:\d\d:\d\d(\.\d+)?Z", started)
    shown = datetime.fromisoformat(started).astimezone(UTC)
    iso = shown.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time datetime="{iso}">{shown:%Y-%m-%d %H:%M:%S} UTC</time>' in html
    runs = (await web.get("/runs")).text
    assert len(re.findall(r'<time datetime="[^"]+Z">', runs)) >= 4


def test_when_marks_aware_instants_and_leaves_the_rest_as_text() -> None:
    assert when("2025-03-05T10:00:00.5+02:00") == (
        '<time datetime="2025-03-05T08:00:00Z">2025-03-05 08:00:00 UTC</time>'
    )
    assert when(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)).startswith(
        '<time datetime="2025-01-02T03:04:05Z">'
    )
    assert when("2025-03-05T10:00:00") == "2025-03-05 10:00:00"  # zone unknown: as written
    assert when(None) == "" and when("") == "" and when("soon") == "soon"
    assert when('"><script>') == '"><script>'  # plain text: the template escapes it
    assert str(when("2025-03-05T10:00:00Z")).count("<time") == 1


async def test_an_unknown_page_is_a_styled_404_with_the_nav(web: httpx.AsyncClient) -> None:
    answer = await web.get("/no/such/<page>")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    html = answer.text
    assert "<h1>Page not found</h1>" in html and '<nav aria-label="Main">' in html
    assert "/static/app.css" in html
    assert "/no/such/&lt;page&gt;" in html and "<page>" not in html


async def test_an_unknown_api_path_keeps_the_error_envelope(web: httpx.AsyncClient) -> None:
    answer = await web.get("/api/no-such-thing")
    assert answer.status_code == 404
    assert answer.json()["error"] == {"status": 404, "code": "not_found", "message": "Not Found"}


async def test_a_wrong_method_is_a_styled_405_that_says_what_is_allowed(
    web: httpx.AsyncClient,
) -> None:
    answer = await web.delete("/runs")
    assert answer.status_code == 405
    assert "GET" in answer.headers["allow"]
    assert "<h1>Method not allowed</h1>" in answer.text


async def test_a_bug_is_a_styled_500_page_or_the_envelope_never_a_traceback(
    web: httpx.AsyncClient,
) -> None:
    page = await web.get("/boom")
    assert page.status_code == 500 and "<h1>Something went wrong</h1>" in page.text
    assert '<nav aria-label="Main">' in page.text
    api = await web.get("/api/boom")
    assert api.status_code == 500 and api.json()["error"]["code"] == "internal_error"
    for answer in (page, api):
        assert "hunter2" not in answer.text and "Traceback" not in answer.text

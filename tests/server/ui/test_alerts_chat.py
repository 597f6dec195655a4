"""Route tests for the Alerts and Chat pages and their JSON twins, on each backend."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chachaml.chat.models import DEFAULT_MODELS
from chachaml.server.api.chat import ChatOptions
from chachaml.server.app import create_app
from chachaml.settings import Settings
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from tests.support.alerts_seed import EVIL_RULE, seed_alerts
from tests.support.mcp_seed import IRIS, NEW, seed

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def web(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """One seeded store per backend: every test here only reads."""
    path = tmp_path_factory.mktemp("alerts-chat")
    store = await open_store(module_store_url)
    try:
        await seed(store, path / "artifacts")
        await seed_alerts(store)
        app = create_app(store, artifacts=open_artifact_store(str(path / "artifacts")), user="bo")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client
    finally:
        await store.close()


@pytest.mark.parametrize("path", ["/alerts", "/chat"])
async def test_the_page_renders_with_a_csp_in_the_nav_and_has_a_json_twin(
    web: httpx.AsyncClient, path: str
) -> None:
    page = await web.get(path)
    assert page.status_code == 200, page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"<[^>]*\son[a-z]+=", page.text), "inline event handler"
    assert "<script>" not in page.text, "inline script"
    assert re.search(rf'<a href="{path}" class="active">', page.text)
    runs = await web.get("/runs")
    assert f'<a href="{path}">' in runs.text
    twin = await web.get("/api" + path)
    assert twin.status_code == 200 and twin.headers["content-type"] == "application/json"


async def test_alerts_json_lists_rules_and_events_with_deliveries(web: httpx.AsyncClient) -> None:
    data = (await web.get("/api/alerts")).json()
    by_name = {r["name"]: r for r in data["rules"]}
    assert set(by_name) == {"acc-low", EVIL_RULE}
    rule = by_name["acc-low"]
    assert (rule["kind"], rule["condition"], rule["experiment"]) == (
        "threshold",
        "acc < 0.5",
        "mnist",
    )
    assert (rule["webhook"], rule["signed"]) == ("https://hooks.example.com/…", True)
    assert rule["last_fired_at"].startswith("2025-03-06T12:00")
    assert by_name[EVIL_RULE]["condition"] == "no completed run for 24 h"
    assert by_name[EVIL_RULE]["last_fired_at"] is None
    [event] = data["events"]
    assert (event["alert"], event["run_id"], event["value"]) == ("acc-low", NEW, 0.4)
    assert event["delivery"] == "delivered"
    assert [a["status_code"] for a in event["attempts"]] == [500, 200]
    text = (await web.get("/api/alerts")).text
    assert "secret-path" not in text and "s3cret" not in text


async def test_alerts_page_shows_rules_events_and_escapes_names(web: httpx.AsyncClient) -> None:
    html = (await web.get("/alerts")).text
    for text in ("acc-low", "acc &lt; 0.5", "hooks.example.com", "no completed run for 24 h"):
        assert text in html
    assert f'href="/runs/{NEW}"' in html and "delivered" in html
    assert "HTTP 500" in html and "HTTP 200" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "secret-path" not in html and "s3cret" not in html


async def test_alerts_filter_by_rule_and_limit(web: httpx.AsyncClient) -> None:
    mine = (await web.get("/api/alerts?alert=acc-low&limit=1")).json()
    assert (mine["alert"], mine["limit"], len(mine["events"])) == ("acc-low", 1, 1)
    quiet = await web.get("/api/alerts", params={"alert": EVIL_RULE})
    assert quiet.status_code == 200 and quiet.json()["events"] == []
    assert len(quiet.json()["rules"]) == 2


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("limit=0", 422, "between 1 and 500"),
        ("limit=many", 422, "must be an integer"),
        ("alert=" + "x" * 201, 422, "longer than 200"),
        ("alert=no-such-rule", 404, "no-such-rule"),
    ],
)
async def test_bad_alerts_query_params_are_4xx(
    web: httpx.AsyncClient, query: str, status: int, message: str
) -> None:
    api = await web.get(f"/api/alerts?{query}")
    assert api.status_code == status
    assert message in api.json()["error"]["message"]
    page = await web.get(f"/alerts?{query}")
    assert page.status_code == status and message in page.text


async def test_chat_page_offers_providers_and_keeps_the_key_out_of_forms(
    web: httpx.AsyncClient,
) -> None:
    data = (await web.get("/api/chat")).json()
    assert data["providers"] == [
        {"name": p, "default_model": m, "server_key": False} for p, m in DEFAULT_MODELS.items()
    ]
    assert data["models"] == ["digits"] and data["key_header"] == "X-Chat-Api-Key"
    html = (await web.get("/chat")).text
    assert '<script src="/static/chat.js" defer></script>' in html
    assert '<option value="openai" data-default-model="gpt-5.5" data-server-key="no">' in html
    assert """data-models='["digits"]'""" in html
    key_input = re.search(r'<input id="chat-key"[^>]*>', html)
    assert key_input and 'type="password"' in key_input[0] and "name=" not in key_input[0]
    script = await web.get("/static/chat.js")
    assert script.status_code == 200 and "innerHTML" not in script.text


async def test_the_chat_twin_leaves_post_api_chat_answering(web: httpx.AsyncClient) -> None:
    response = await web.post("/api/chat", json={"question": f"about {IRIS}?"})
    assert response.status_code == 401
    assert "X-Chat-Api-Key" in response.json()["error"]["message"]


async def test_the_chat_page_says_up_front_whether_the_server_holds_a_key(
    web: httpx.AsyncClient, tmp_path: Path
) -> None:
    html = (await web.get("/chat")).text
    assert "This server holds no provider API key" in html and "chat-key-missing" in html
    assert (await web.get("/api/chat")).json()["server_keys"] == []
    # a server started with an OpenAI key says so, picks openai, and never shows the key
    store = await open_store(f"sqlite:///{tmp_path / 'keyed.db'}")
    try:
        settings = Settings(openai_api_key="sk-server-only-secret-1")
        app = create_app(store, chat=ChatOptions(settings=settings))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as keyed:
            page = (await keyed.get("/chat")).text
            data = (await keyed.get("/api/chat")).json()
    finally:
        await store.close()
    assert "This server holds an API key for openai: openai · gpt-5.5 answers" in page
    assert (
        '<option value="openai" data-default-model="gpt-5.5" data-server-key="yes" selected>'
        in page
    )
    assert data["server_keys"] == ["openai"] and data["default_provider"] == "openai"
    assert "sk-server-only-secret-1" not in page + json.dumps(data)

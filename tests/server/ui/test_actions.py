"""Route tests for the UI's writes (tag, note, promote): same-origin JSON POSTs, tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chachaml.server.access import AccessConfig
from chachaml.server.app import create_app
from chachaml.server.tokens import create_token
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.server_state import ServerStore
from tests.support.mcp_seed import MID, seed

pytestmark = pytest.mark.anyio
BASE = "http://127.0.0.1"
SAME = {"Origin": BASE}
TOKEN = "ada-write-token"
ACTIONS: list[tuple[str, dict[str, Any]]] = [
    (f"/runs/{MID}/tags", {"key": "owner", "value": "ada"}),
    (f"/runs/{MID}/note", {"note": "Better with **lr** $10^{-2}$."}),
    ("/models/digits/promote", {"version": 1, "stage": "production"}),
]


async def _client(
    store: ServerStore, tmp_path: Path, access: AccessConfig
) -> AsyncIterator[httpx.AsyncClient]:
    await seed(store, tmp_path / "artifacts")
    app = create_app(store, artifacts=open_artifact_store(str(tmp_path / "artifacts")),
                     user="bo", access=access)  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.fixture
async def web(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """No tokens configured: writes are open (as on a loopback server)."""
    async for client in _client(store, tmp_path, AccessConfig(local_user="bo")):
        yield client


@pytest.fixture
async def guarded(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A static write token for ada; the store holds a read token (see ``reader``)."""
    async for client in _client(store, tmp_path, AccessConfig(tokens=(("ada", TOKEN),))):
        yield client


def _message(answer: httpx.Response) -> str:
    message: str = answer.json()["error"]["message"]
    return message


async def test_adding_a_tag_returns_the_runs_tags(web: httpx.AsyncClient) -> None:
    answer = await web.post(f"/runs/{MID}/tags", json={"key": "owner", "value": "ada"},
                            headers=SAME)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"tags": {"reviewed": "yes", "owner": "ada"}}
    assert (await web.get(f"/api/runs/{MID}")).json()["run"]["tags"]["owner"] == "ada"


async def test_editing_the_note_returns_it_rendered(web: httpx.AsyncClient) -> None:
    note = "Better with **lr** <script>x</script>"
    answer = await web.post(f"/runs/{MID}/note", json={"note": note}, headers=SAME)
    assert answer.status_code == 200, answer.text
    assert answer.json()["note"] == note
    assert "<strong>lr</strong>" in answer.json()["note_html"]
    assert "<script>" not in answer.json()["note_html"]
    assert (await web.get(f"/api/runs/{MID}")).json()["run"]["note"] == note


async def test_promote_moves_the_version_and_records_who(web: httpx.AsyncClient) -> None:
    body = {"version": 1, "stage": "production", "reason": "better on holdout"}
    answer = await web.post("/models/digits/promote", json=body, headers=SAME)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"]["version"] == 1
    assert answer.json()["version"]["stage"] == "production"
    model = (await web.get("/api/models/digits")).json()["model"]
    stages = {v["version"]: v["stage"] for v in model["versions"]}
    assert stages == {1: "production", 2: "archived"}
    last = model["history"][-1] if model["history"][-1]["version"] == 1 else model["history"][0]
    assert last["reason"] == "better on holdout" and last["user"] == "bo"


async def test_a_same_host_referer_is_enough(web: httpx.AsyncClient) -> None:
    answer = await web.post(f"/runs/{MID}/tags", json={"key": "k", "value": "v"},
                            headers={"Referer": f"{BASE}/runs/{MID}"})  # fmt: skip
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("path", "body"), ACTIONS)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:9999"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/runs"},
    ],
)
async def test_cross_site_requests_are_403(
    web: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    answer = await web.post(path, json=body, headers=headers)
    assert answer.status_code == 403
    assert "cross-site" in _message(answer)


@pytest.mark.parametrize(("path", "body"), ACTIONS)
async def test_a_browser_cross_site_request_without_origin_is_403(
    web: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    # Browsers mark every request with Sec-Fetch-Site; a program sends neither it nor Origin
    answer = await web.post(path, json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403 and "cross-site" in _message(answer)
    assert (await web.post(path, json=body)).status_code == 200  # a local program


@pytest.mark.parametrize(("path", "body"), ACTIONS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_bodies_must_be_json(
    web: httpx.AsyncClient, path: str, body: dict[str, Any], content_type: str | None
) -> None:
    headers = {**SAME, **({"Content-Type": content_type} if content_type else {})}
    answer = await web.post(path, content=httpx.Request("POST", "/", json=body).content,
                            headers=headers)  # fmt: skip
    assert answer.status_code == 415
    assert "application/json" in _message(answer)


@pytest.mark.parametrize(("path", "body"), ACTIONS)
async def test_configured_tokens_are_required(
    guarded: httpx.AsyncClient, store: ServerStore, path: str, body: dict[str, Any]
) -> None:
    answer = await guarded.post(path, json=body, headers=SAME)
    assert answer.status_code == 401 and "Bearer" in _message(answer)
    bad = await guarded.post(path, json=body, headers={**SAME, "Authorization": "Bearer nope"})
    assert bad.status_code == 401
    reader, _ = await create_token(store, "rex", "read")
    read = await guarded.post(
        path, json=body, headers={**SAME, "Authorization": f"Bearer {reader}"}
    )
    assert read.status_code == 403 and "read scope" in _message(read)
    ok = await guarded.post(path, json=body, headers={**SAME, "Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200, ok.text


async def test_promote_is_attributed_to_the_tokens_user(guarded: httpx.AsyncClient) -> None:
    answer = await guarded.post(
        "/models/digits/promote",
        json={"version": 1, "stage": "archived"},
        headers={**SAME, "Authorization": f"Bearer {TOKEN}", "X-Chachaml-User": "mallory"},
    )
    assert answer.status_code == 200, answer.text
    auth = {"Authorization": f"Bearer {TOKEN}"}
    history = (await guarded.get("/api/models/digits", headers=auth)).json()["model"]["history"]
    assert [h["user"] for h in history if h["new"] == "archived" and h["version"] == 1] == ["ada"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/runs/" + "f" * 32 + "/tags", {"key": "k", "value": "v"}),
        ("/runs/" + "f" * 32 + "/note", {"note": "n"}),
        ("/runs/not-an-id/note", {"note": "n"}),
        ("/models/nope/promote", {"version": 1, "stage": "staging"}),
        ("/models/digits/promote", {"version": 9, "stage": "staging"}),
    ],
)
async def test_unknown_runs_models_and_versions_are_404(
    web: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    answer = await web.post(path, json=body, headers=SAME)
    assert answer.status_code == 404, answer.text
    assert _message(answer)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/models/digits/promote", {"version": 1, "stage": "retired"}),
        ("/models/digits/promote", {"version": 0, "stage": "staging"}),
        ("/models/digits/promote", {"version": "one", "stage": "staging"}),
        ("/models/digits/promote", {"stage": "staging"}),
        (f"/runs/{MID}/tags", {"key": "", "value": "v"}),
        (f"/runs/{MID}/tags", {"key": "k", "value": 3}),
        (f"/runs/{MID}/tags", {"key": "k", "value": "v", "extra": 1}),
        (f"/runs/{MID}/note", {"note": None}),
        (f"/runs/{MID}/note", "not an object"),
    ],
)
async def test_bad_values_are_422(web: httpx.AsyncClient, path: str, body: Any) -> None:
    answer = await web.post(path, json=body, headers=SAME)
    assert answer.status_code == 422, answer.text
    assert _message(answer)


async def test_malformed_json_is_422(web: httpx.AsyncClient) -> None:
    answer = await web.post(f"/runs/{MID}/note", content=b"{", headers={**SAME,
                            "Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 422


async def test_the_actions_only_take_posts(web: httpx.AsyncClient) -> None:
    assert (await web.get(f"/runs/{MID}/tags")).status_code == 405


async def test_run_and_model_pages_carry_the_forms(web: httpx.AsyncClient) -> None:
    run = (await web.get(f"/runs/{MID}")).text
    assert f'data-action="/runs/{MID}/tags"' in run and f'data-action="/runs/{MID}/note"' in run
    assert 'id="write-token"' in run and "Promising: lower lr helps." in run
    model = (await web.get("/models/digits")).text
    assert 'data-action="/models/digits/promote"' in model
    assert '<option value="production">' in model and '<option value="2">v2</option>' in model

"""Route tests for the registry pages and their writes: descriptions and tags, a diff of any
two versions, archived-alias warnings, the promote confirm step, alias set and remove under
the same access rules as every UI write, each recorded as its caller."""

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
from chachaml.tools import registry as registry_ops
from tests.support.mcp_seed import OLD, seed

pytestmark = pytest.mark.anyio
BASE = "http://127.0.0.1"
SAME = {"Origin": BASE}
TOKEN = "ada-write-token"
ALIAS_ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("/models/digits/aliases", {"alias": "champion", "version": 2}),
    ("/models/digits/aliases/delete", {"alias": "best"}),
]


async def _client(
    store: ServerStore, tmp_path: Path, access: AccessConfig
) -> AsyncIterator[httpx.AsyncClient]:
    await seed(store, tmp_path / "artifacts")
    # v3: v1's bytes again, described and tagged; "best" points at v1
    await registry_ops.register_model(store, "digits", OLD, "model.bin", "ana",
                                      description="v1 retrained <b>twice</b>",
                                      tags={"team": "vision"})  # fmt: skip
    await registry_ops.set_alias(store, "digits", "best", 1, "ana")
    app = create_app(store, artifacts=open_artifact_store(str(tmp_path / "artifacts")),
                     user="bo", access=access)  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.fixture
async def web(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Local mode: writes open to this machine, recorded as the server's user (bo)."""
    async for client in _client(store, tmp_path, AccessConfig(local_user="bo")):
        yield client


@pytest.fixture
async def team(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Team mode: ada's static write token; more tokens are made in the store by tests."""
    async for client in _client(store, tmp_path, AccessConfig(tokens=(("ada", TOKEN),))):
        yield client


async def _history(client: httpx.AsyncClient, **headers: str) -> list[dict[str, Any]]:
    model = (await client.get("/api/models/digits", headers=headers)).json()["model"]
    history: list[dict[str, Any]] = model["history"]
    return history


async def test_versions_show_descriptions_tags_and_hashes(web: httpx.AsyncClient) -> None:
    page = (await web.get("/models/digits")).text
    assert "v1 retrained &lt;b&gt;twice&lt;/b&gt;" in page and "team=vision" in page
    version = (await web.get("/api/models/digits")).json()["model"]["versions"][0]
    assert version["description"] == "v1 retrained <b>twice</b>"
    assert f'title="sha256 {version["sha256"]}"' in page


async def test_any_two_versions_can_be_diffed(web: httpx.AsyncClient) -> None:
    page = (await web.get("/models/digits")).text
    assert 'action="/diff"' in page and '<option value="2" selected>v2</option>' in page
    picked = await web.get("/diff?model=digits&v1=1&v2=3")
    assert picked.status_code == 200 and "digits</a>: v1 vs v3" in picked.text
    same = (await web.get("/api/diff?model=digits&v1=1&v2=3")).json()
    assert same["artifact"] == {"name_changed": False, "content_changed": False,
                                "hash_v1": same["artifact"]["hash_v2"],
                                "hash_v2": same["artifact"]["hash_v1"]}  # fmt: skip
    assert "differs" not in picked.text.split("<h2>")[0] and "identical" in picked.text
    assert (await web.get("/diff?model=digits&v1=1")).status_code == 422
    assert (await web.get("/diff?model=digits&v1=1&v2=9")).status_code == 404


async def test_same_artifact_name_with_new_bytes_shows_the_hashes(web: httpx.AsyncClient) -> None:
    data = (await web.get("/api/diff/digits/1/2")).json()
    art = data["artifact"]
    assert art["name_changed"] is False and art["content_changed"] is True
    assert len(art["hash_v1"]) == 12 and art["hash_v1"] != art["hash_v2"]
    page = (await web.get("/diff/digits/1/2")).text
    assert "<tr><th>artifact</th><td>model.bin</td><td>model.bin</td></tr>" in page
    full = data["diff"]["v1"]["sha256"]
    row = '<tr class="differs"><th>content (sha256)</th><td><code class="hash" title="{}">{}</code>'
    assert row.format(full, art["hash_v1"]) in page
    assert "same name, different content" in page


async def test_an_alias_on_an_archived_version_is_warned_about(web: httpx.AsyncClient) -> None:
    assert "which is archived" not in (await web.get("/models/digits")).text
    answer = await web.post("/models/digits/promote", json={"version": 1, "stage": "archived"},
                            headers=SAME)  # fmt: skip
    assert answer.status_code == 200, answer.text
    data = (await web.get("/api/models/digits")).json()
    assert data["archived_aliases"] == [{"alias": "best", "version": 1}]
    page = (await web.get("/models/digits")).text
    assert "Alias <strong>@best</strong> points at v1, which is archived" in page
    assert "alias-archived" in page


async def test_the_page_asks_before_promoting_to_production(web: httpx.AsyncClient) -> None:
    page = (await web.get("/models/digits")).text
    assert 'id="promote-form"' in page and 'data-action="/models/digits/promote"' in page
    assert 'data-production="2"' in page and "Confirm promote to production" in page
    assert '<div class="confirm" id="promote-confirm" role="alert" hidden>' in page
    assert 'class="action"' not in page.split('id="promote-form"')[0][-40:]  # not app.js's
    assert "/static/registry.js" in page
    assert "Changes made here are recorded as <strong>bo</strong>" in page


async def test_aliases_are_set_and_removed_as_the_local_user(web: httpx.AsyncClient) -> None:
    answer = await web.post("/models/digits/aliases", json={"alias": "champion", "version": 3},
                            headers=SAME)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"]["aliases"] == ["champion"]
    gone = await web.post("/models/digits/aliases/delete", json={"alias": "best"}, headers=SAME)
    assert gone.status_code == 200 and gone.json()["aliases"] == {"champion": 3}
    history = await _history(web)
    changes = {(h["alias"], h["new"]): h["user"] for h in history if h["alias"]}
    assert changes[("champion", "3")] == "bo"
    assert [u for (a, new), u in changes.items() if a == "best" and new is None] == ["bo"]
    page = (await web.get("/models/digits")).text
    assert 'data-alias="champion"' in page and 'data-action="/models/digits/aliases"' in page


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/models/digits/aliases", {"alias": "production", "version": 1}, 422),  # a stage
        ("/models/digits/aliases", {"alias": "9lives", "version": 1}, 422),
        ("/models/digits/aliases", {"alias": "ok", "version": 0}, 422),
        ("/models/digits/aliases", {"alias": "ok", "version": 1, "x": 1}, 422),
        ("/models/digits/aliases", {"alias": "ok", "version": 9}, 404),
        ("/models/nope/aliases", {"alias": "ok", "version": 1}, 404),
        ("/models/digits/aliases/delete", {"alias": "never"}, 404),
        ("/models/digits/aliases/delete", {}, 422),
    ],
)
async def test_bad_alias_writes_say_why(
    web: httpx.AsyncClient, path: str, body: dict[str, Any], status: int
) -> None:
    answer = await web.post(path, json=body, headers=SAME)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"]


@pytest.mark.parametrize(("path", "body"), ALIAS_ACTIONS)
@pytest.mark.parametrize(
    "headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}]
)
async def test_cross_site_alias_writes_are_refused(
    web: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    answer = await web.post(path, json=body, headers=headers)
    assert answer.status_code == 403 and "cross-site" in answer.json()["error"]["message"]
    form = await web.post(path, content=b"alias=x", headers={**SAME, "Content-Type":
                          "application/x-www-form-urlencoded"})  # fmt: skip
    assert form.status_code == 415


@pytest.mark.parametrize(("path", "body"), ALIAS_ACTIONS)
async def test_alias_writes_need_a_write_token_and_record_its_user(
    team: httpx.AsyncClient, store: ServerStore, path: str, body: dict[str, Any]
) -> None:
    assert (await team.post(path, json=body, headers=SAME)).status_code == 401
    reader, _ = await create_token(store, "rex", "read")
    read = await team.post(path, json=body, headers={**SAME, "Authorization": f"Bearer {reader}"})
    assert read.status_code == 403
    ok = await team.post(path, json=body, headers={**SAME, "Authorization": f"Bearer {TOKEN}",
                                                   "X-Chachaml-User": "mallory"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    history = await _history(team, Authorization=f"Bearer {TOKEN}")
    assert history[-1]["alias"] == body["alias"] and history[-1]["user"] == "ada"


async def test_a_signed_in_browser_writes_as_its_user_with_the_csrf_header(
    team: httpx.AsyncClient, store: ServerStore
) -> None:
    session, _ = await create_token(store, "cy", "write")
    team.cookies.set("chachaml_session", session)
    team.cookies.set("chachaml_csrf", "csrf-value")
    body = {"version": 3, "stage": "production"}
    refused = await team.post("/models/digits/promote", json=body, headers=SAME)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    csrf = {**SAME, "X-CSRF-Token": "csrf-value"}
    assert (await team.post("/models/digits/promote", json=body, headers=csrf)).status_code == 200
    alias = {"alias": "champion", "version": 3}
    assert (await team.post("/models/digits/aliases", json=alias, headers=csrf)).status_code == 200
    history = await _history(team)
    mine = [h for h in history if h["version"] == 3 and h["user"] != "ana"]
    assert len(mine) == 2 and {h["user"] for h in mine} == {"cy"}
    page = (await team.get("/models/digits")).text
    assert "Changes made here are recorded as <strong>cy</strong>" in page


async def test_model_names_with_a_slash_have_pages_diffs_and_writes(
    web: httpx.AsyncClient, store: ServerStore
) -> None:
    for _ in range(2):
        await registry_ops.register_model(store, "team/digits", OLD, "model.bin", "ana")
    listing = (await web.get("/models")).text
    assert 'href="/models/team/digits"' in listing
    assert (await web.get("/models/team/digits")).status_code == 200
    assert (await web.get("/diff/team/digits/1/2")).status_code == 200
    assert (await web.get("/api/diff?model=team/digits&v1=2&v2=1")).status_code == 200
    answer = await web.post("/models/team/digits/aliases", json={"alias": "a", "version": 2},
                            headers=SAME)  # fmt: skip
    assert answer.status_code == 200, answer.text
    promoted = await web.post("/models/team/digits/promote",
                              json={"version": 1, "stage": "staging"}, headers=SAME)  # fmt: skip
    assert promoted.status_code == 200, promoted.text

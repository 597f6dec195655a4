"""The one access layer (issue findings 2-6 and 11): local mode, team mode, every surface.

Each test drives the real app in process (``httpx.ASGITransport``, with the app's lifespan
running so ``/mcp`` answers) over a seeded SQLite store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from chachaml.server.access import AccessConfig
from chachaml.server.app import create_app
from chachaml.server.tokens import create_token, revoke_token
from chachaml.store import ServerStore
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools.catalogue import OPT_IN_TOOLSETS
from tests.support.mcp_seed import MID, open_seeded
from tests.support.waiting import await_for

pytestmark = pytest.mark.anyio
BASE = "http://127.0.0.1:8080"
TOKEN = "ada-static-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", **JSON}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ServerStore]:
    async with open_seeded(tmp_path) as opened:
        yield opened


@asynccontextmanager
async def serving(
    store: ServerStore, tmp_path: Path, access: AccessConfig
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        store,
        artifacts=open_artifact_store(str(tmp_path / "artifacts")),
        toolsets=OPT_IN_TOOLSETS,
        access=access,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


def mcp_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def tool_text(answer: httpx.Response) -> tuple[bool, str]:
    """Whether an MCP tools/call answer is an error, and its text."""
    body = answer.json()
    if "error" in body:
        return True, str(body["error"])
    result = body["result"]
    return bool(result.get("isError")), " ".join(c.get("text", "") for c in result["content"])


# -- finding 2: a page of another origin cannot write to a local server ----------------------


async def test_a_cross_site_text_plain_post_cannot_write(
    store: ServerStore, tmp_path: Path
) -> None:
    async with serving(store, tmp_path, AccessConfig()) as web:
        evil = {"Origin": "http://127.0.0.1:9999", "Content-Type": "text/plain"}
        for path, body in [
            ("/api/w/archive", {"older_than_days": 0}),
            ("/api/w/archived/delete", {}),
            ("/api/w/runs", {"experiment": "planted"}),
        ]:
            answer = await web.post(path, content=json.dumps(body), headers=evil)
            assert answer.status_code == 403, (path, answer.text)
        # the same body without an Origin, as text/plain: refused for its type (no preflight)
        answer = await web.post(
            "/api/w/runs", content=b"{}", headers={"Content-Type": "text/plain"}
        )
        assert answer.status_code == 415
        # Sec-Fetch-Site tells a cross-site request even without an Origin
        answer = await web.post("/api/w/runs", json={}, headers={"Sec-Fetch-Site": "cross-site"})
        assert answer.status_code == 403
    assert all(r.experiment != "planted" for r in await _runs(store))


async def _runs(store: ServerStore) -> list[Any]:
    from chachaml.tools import runs as run_ops

    return list(await run_ops.list_runs(store, limit=100))


async def test_a_same_origin_write_and_a_non_browser_write_pass(
    store: ServerStore, tmp_path: Path
) -> None:
    async with serving(store, tmp_path, AccessConfig(local_user="kim")) as web:
        same = await web.post("/api/w/runs", json={}, headers={"Origin": BASE})
        script = await web.post("/api/w/runs", json={})
    assert same.status_code == script.status_code == 201
    assert script.json()["created_by"] == "kim"


# -- finding 5: DNS rebinding: the Host must be this server's ------------------------------


@pytest.mark.parametrize(
    "path", ["/api/runs", "/api/export", "/api/store/v1/experiments", "/runs", "/mcp"]
)
async def test_a_rebound_host_is_refused_everywhere(
    store: ServerStore, tmp_path: Path, path: str
) -> None:
    async with serving(store, tmp_path, AccessConfig()) as web:
        answer = await web.get(path, headers={"Host": "evil.example:8080"})
        assert answer.status_code == 403 and "Host" in answer.json()["error"]["message"]
        # a rebinding page passes an Origin == Host check; the Host check still refuses it
        rebound = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"}
        answer = await web.post("/api/w/runs", json={}, headers=rebound)
        assert answer.status_code == 403


async def test_configured_public_hosts_and_loopback_names_are_accepted(
    store: ServerStore, tmp_path: Path
) -> None:
    access = AccessConfig(allowed_hosts=("ml.internal",))
    async with serving(store, tmp_path, access) as web:
        for host in ["localhost:8080", "127.0.0.1", "[::1]:8080", "ml.internal", "ml.internal:80"]:
            assert (await web.get("/api/runs", headers={"Host": host})).status_code == 200, host


# -- findings 3 and 4: team mode covers every surface, reads included ------------------------


async def test_team_mode_refuses_anonymous_reads_on_every_surface(
    store: ServerStore, tmp_path: Path
) -> None:
    access = AccessConfig(tokens=(("ada", TOKEN),))
    async with serving(store, tmp_path, access) as web:
        for path in [
            "/api/runs",
            f"/api/runs/{MID}",
            "/api/export",
            "/api/export?format=csv",
            f"/api/artifacts/{MID}/model",
            f"/api/store/v1/runs/{MID}",
            "/api/models",
        ]:
            answer = await web.get(path)
            assert answer.status_code == 401, path
            assert (await web.get(path, headers=AUTH)).status_code in (200, 404), path
        page = await web.get("/runs", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/signin?next=")
        for method, params in [
            ("tools/call", {"name": "get_run", "arguments": {"run_id": MID}}),
            ("resources/read", {"uri": f"chachaml://runs/{MID}"}),
        ]:
            rpc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            assert (await web.post("/mcp", json=rpc, headers=MCP_HEADERS)).status_code == 401
        rpc = mcp_call("get_run", {"run_id": MID})
        answer = await web.post("/mcp", json=rpc, headers={**MCP_HEADERS, **AUTH})
        assert answer.status_code == 200 and not tool_text(answer)[0]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("set_note", {"run_id": MID, "note": "pwned"}),
        ("add_tag", {"run_id": MID, "key": "k", "value": "v"}),
        ("create_experiment", {"name": "planted"}),
        ("promote_model", {"model_name": "digits", "version": 1, "stage": "production"}),
        ("check_alerts", {}),
        ("mute_alert", {"alert": "any"}),
        ("send_test_alert", {"alert": "any"}),
    ],
)
async def test_mcp_over_http_needs_a_write_token_to_write(
    store: ServerStore, tmp_path: Path, tool: str, arguments: dict[str, Any]
) -> None:
    reader, _ = await create_token(store, "rita", "read")
    access = AccessConfig(bind="0.0.0.0")  # a team server: the store's tokens decide
    async with serving(store, tmp_path, access) as web:
        anonymous = await web.post("/mcp", json=mcp_call(tool, arguments), headers=MCP_HEADERS)
        assert anonymous.status_code == 401
        read_only = {**MCP_HEADERS, "Authorization": f"Bearer {reader}"}
        answer = await web.post("/mcp", json=mcp_call(tool, arguments), headers=read_only)
        failed, text = tool_text(answer)
        assert failed and "write scope" in text, text


async def test_webhook_subscriptions_need_an_admin_token_over_http_and_mcp(
    store: ServerStore, tmp_path: Path
) -> None:
    writer, _ = await create_token(store, "wes", "write")
    admin, _ = await create_token(store, "root", "admin")
    body = {"url": "https://93.184.216.34/hook", "types": ["run.ended"]}
    async with serving(store, tmp_path, AccessConfig(bind="0.0.0.0")) as web:
        as_writer = {"Authorization": f"Bearer {writer}"}
        assert (
            await web.post("/api/w/subscriptions", json=body, headers=as_writer)
        ).status_code == 403
        assert (await web.get("/api/store/v1/subscriptions", headers=as_writer)).status_code == 403
        for tool, arguments in [("subscribe", body), ("list_subscriptions", {})]:
            answer = await web.post("/mcp", json=mcp_call(tool, arguments),
                                    headers={**MCP_HEADERS, **as_writer})  # fmt: skip
            failed, text = tool_text(answer)
            assert failed and "admin scope" in text, text
        as_admin = {"Authorization": f"Bearer {admin}"}
        made = await web.post("/api/w/subscriptions", json=body, headers=as_admin)
        assert made.status_code == 200 and made.json()["created_by"] == "root", made.text
        answer = await web.post("/mcp", json=mcp_call("list_subscriptions", {}),
                                headers={**MCP_HEADERS, **as_admin})  # fmt: skip
        failed, text = tool_text(answer)
        assert not failed and "run.ended" in text, text


async def test_an_mcp_session_belongs_to_the_caller_who_opened_it(
    store: ServerStore, tmp_path: Path
) -> None:
    ada, _ = await create_token(store, "ada", "read")
    bob, _ = await create_token(store, "bob", "read")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }}  # fmt: skip
    subscribe = {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe",
                 "params": {"uri": f"chachaml://runs/{MID}"}}  # fmt: skip
    as_ada = {**MCP_HEADERS, "Authorization": f"Bearer {ada}"}
    as_bob = {**MCP_HEADERS, "Authorization": f"Bearer {bob}"}
    async with serving(store, tmp_path, AccessConfig(bind="0.0.0.0")) as web:
        lone = (await web.post("/mcp", json=subscribe, headers=as_ada)).json()
        assert "needs a session" in lone["error"]["message"]  # a stateless request cannot
        opened = await web.post("/mcp", json=init, headers=as_ada)
        session = opened.headers["mcp-session-id"]
        assert opened.json()["result"]["capabilities"]["resources"]["subscribe"] is True
        mine = {"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"}
        ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await web.post("/mcp", json=ready, headers={**as_ada, **mine})).is_success
        answer = await web.post("/mcp", json=subscribe, headers={**as_ada, **mine})
        assert answer.json()["result"] == {}, answer.text
        stolen = await web.post("/mcp", json=subscribe, headers={**as_bob, **mine})
        assert stolen.status_code == 404  # as if the session did not exist


async def test_mcp_writes_are_attributed_to_the_tokens_user(
    store: ServerStore, tmp_path: Path
) -> None:
    writer, _ = await create_token(store, "wes", "write")
    async with serving(store, tmp_path, AccessConfig(bind="0.0.0.0")) as web:
        call = mcp_call(
            "promote_model", {"model_name": "digits", "version": 1, "stage": "archived"}
        )
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {writer}"}
        answer = await web.post("/mcp", json=call, headers=headers)
        assert not tool_text(answer)[0], answer.text
    from chachaml.tools import registry as registry_ops

    model = await registry_ops.get_model(store, "digits")
    mine = [h.user for h in model.history if (h.version, h.new) == (1, "archived")]
    assert mine == ["wes"]


async def test_public_reads_open_reads_only(store: ServerStore, tmp_path: Path) -> None:
    access = AccessConfig(tokens=(("ada", TOKEN),), public_reads=True)
    async with serving(store, tmp_path, access) as web:
        assert (await web.get("/api/runs")).status_code == 200
        assert (await web.post("/api/store/v1/runs/query", json={})).status_code == 200
        read = await web.post(
            "/mcp", json=mcp_call("get_run", {"run_id": MID}), headers=MCP_HEADERS
        )
        assert not tool_text(read)[0]
        write = await web.post(
            "/mcp", json=mcp_call("set_note", {"run_id": MID, "note": "x"}), headers=MCP_HEADERS
        )
        assert tool_text(write)[0]
        assert (await web.post("/api/w/runs", json={})).status_code == 401
        chat = await web.post("/api/chat", json={"question": "q"})
        assert chat.status_code == 401  # the server's provider key is never spent anonymously


async def test_admin_scope_is_needed_to_delete(store: ServerStore, tmp_path: Path) -> None:
    writer, _ = await create_token(store, "wes", "write")
    admin, _ = await create_token(store, "root", "admin")
    async with serving(store, tmp_path, AccessConfig()) as web:
        as_writer = {"Authorization": f"Bearer {writer}"}
        answer = await web.post("/api/w/archived/delete", json={}, headers=as_writer)
        assert answer.status_code == 403 and "admin" in answer.json()["error"]["message"]
        as_admin = {"Authorization": f"Bearer {admin}"}
        assert (await web.post("/api/w/archived/delete", json={}, headers=as_admin)).is_success


# -- finding 6: chat answers same-origin callers only in local mode --------------------------


async def test_chat_refuses_cross_site_callers(store: ServerStore, tmp_path: Path) -> None:
    async with serving(store, tmp_path, AccessConfig()) as web:
        body = json.dumps({"question": "spend the key"})
        plain = {"Origin": "http://127.0.0.1:9999", "Content-Type": "text/plain"}
        assert (await web.post("/api/chat", content=body, headers=plain)).status_code == 403
        cors = {"Origin": "https://evil.example", **JSON}
        assert (await web.post("/api/chat", content=body, headers=cors)).status_code == 403


# -- finding 11: tokens can be listed and revoked, and a running server follows -------------


async def test_a_running_server_follows_token_changes_without_a_restart(
    store: ServerStore, tmp_path: Path
) -> None:
    access = AccessConfig(refresh_seconds=0.2)
    async with serving(store, tmp_path, access) as web:
        assert (await web.post("/api/w/runs", json={})).status_code == 201  # local mode
        token, info = await create_token(store, "ada", "write")

        async def anonymous_refused() -> bool:
            return (await web.post("/api/w/runs", json={})).status_code == 401

        await await_for(anonymous_refused, 5.0)
        headers = {"Authorization": f"Bearer {token}"}
        assert (await web.post("/api/w/runs", json={}, headers=headers)).status_code == 201
        await revoke_token(store, str(info.id))

        async def token_refused() -> bool:
            return (await web.post("/api/w/runs", json={}, headers=headers)).status_code == 401

        await await_for(token_refused, 5.0)
    listed = await store.list_tokens()
    assert [(t.user, t.scope, t.revoked_at is not None) for t in listed] == [("ada", "write", True)]
    assert all(token not in repr(t) and t.hint == token[:12] for t in listed)


# -- the browser session: sign in, HttpOnly SameSite=Strict cookie, CSRF on writes -----------


async def test_a_browser_signs_in_and_its_writes_need_the_csrf_header(
    store: ServerStore, tmp_path: Path
) -> None:
    async with serving(store, tmp_path, AccessConfig(tokens=(("ada", TOKEN),))) as web:
        form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE}
        bad = await web.post("/signin", content="token=nope&next=/runs", headers=form)
        assert bad.status_code == 401
        ok = await web.post("/signin", content=f"token={TOKEN}&next=//evil.example", headers=form)
        assert ok.status_code == 303 and ok.headers["location"] == "/runs"
        cookies = ok.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("chachaml_session="))
        assert "HttpOnly" in session and "SameSite=Strict" in session
        assert (await web.get("/api/runs")).status_code == 200  # the cookie signs reads in
        write = f"/runs/{MID}/tags"
        refused = await web.post(write, json={"key": "k", "value": "v"}, headers={"Origin": BASE})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
        csrf = {"Origin": BASE, "X-CSRF-Token": web.cookies["chachaml_csrf"]}
        assert (await web.post(write, json={"key": "k", "value": "v"}, headers=csrf)).is_success
        out = await web.post("/signout", headers={"Origin": BASE})
        assert out.status_code == 303
        web.cookies.clear()
        assert (await web.get("/api/runs")).status_code == 401


# -- every route of the app, enumerated: in team mode none answers an anonymous caller -------

PUBLIC = {"/health", "/healthz", "/readyz", "/signin", "/signout", "/static", "/api/openapi.json",
          # MLflow 3's capability probe, asked before the client sends its token, as in MLflow
          "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"}  # fmt: skip


def _concrete(path: str) -> str:
    """A path with each parameter filled in (``{run_id}`` -> the seeded run's id)."""
    import re

    values = {"run_id": MID, "version": "1", "name": "digits", "v1": "1", "v2": "2"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def _every_route(app: Starlette) -> list[tuple[str, str]]:
    from starlette.routing import Mount, Route

    found: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            found.append(("GET", route.path + "/app.js"))
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET", "POST", "DELETE"}):
                if method != "HEAD":
                    found.append((method, _concrete(route.path)))
    return found


async def test_team_mode_refuses_anonymous_callers_on_every_route(
    store: ServerStore, tmp_path: Path
) -> None:
    app = create_app(
        store,
        artifacts=open_artifact_store(str(tmp_path / "artifacts")),
        toolsets=OPT_IN_TOOLSETS,
        access=AccessConfig(tokens=(("ada", TOKEN),)),
    )
    routes = _every_route(app)
    assert len(routes) > 60  # the enumeration sees the whole app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as web:
            for method, path in routes:
                answer = await web.request(method, path, json={}, headers=MCP_HEADERS)
                public = path in PUBLIC or path.startswith("/static/")
                if public:
                    assert answer.status_code < 500, (method, path)
                else:
                    assert answer.status_code == 401, (method, path, answer.status_code)


# -- finding 12 (last item): a note records who set it, whatever the surface -----------------


async def test_notes_record_who_set_them_on_every_surface(
    store: ServerStore, tmp_path: Path
) -> None:
    from chachaml.tools import runs as run_ops

    writer, _ = await create_token(store, "wes", "write")
    other, _ = await create_token(store, "olga", "write")
    async with serving(store, tmp_path, AccessConfig()) as web:
        as_wes = {"Authorization": f"Bearer {writer}"}
        answer = await web.post(f"/api/w/runs/{MID}/note", json={"note": "wes"}, headers=as_wes)
        assert answer.is_success, answer.text
        assert (await run_ops.get_run(store, MID)).note_by == "wes"
        call = mcp_call("set_note", {"run_id": MID, "note": "olga was here"})
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {other}"}
        assert not tool_text(await web.post("/mcp", json=call, headers=headers))[0]
        run = await run_ops.get_run(store, MID)
        assert (run.note, run.note_by) == ("olga was here", "olga") and run.note_at is not None
        page = await web.get(f"/runs/{MID}", headers=as_wes)
        assert "Set by olga" in page.text


async def test_tags_record_who_set_them_on_every_surface(
    store: ServerStore, tmp_path: Path
) -> None:
    from chachaml.tools import runs as run_ops

    writer, _ = await create_token(store, "wes", "write")
    other, _ = await create_token(store, "olga", "write")
    async with serving(store, tmp_path, AccessConfig()) as web:
        as_wes = {"Authorization": f"Bearer {writer}", "Origin": BASE}
        answer = await web.post(f"/api/w/runs/{MID}/tags", json={"a": "1"}, headers=as_wes)
        assert answer.is_success, answer.text
        answer = await web.post(
            f"/runs/{MID}/tags", json={"key": "b", "value": "2"}, headers=as_wes
        )
        assert answer.is_success, answer.text
        call = mcp_call("add_tag", {"run_id": MID, "key": "a", "value": "3"})
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {other}"}
        assert not tool_text(await web.post("/mcp", json=call, headers=headers))[0]
    run = await run_ops.get_run(store, MID)
    assert (run.tags["a"], run.tag_by["a"], run.tag_by["b"]) == ("3", "olga", "wes")


async def test_a_signed_in_browser_sees_who_it_is_and_can_sign_out(
    store: ServerStore, tmp_path: Path
) -> None:
    async with serving(store, tmp_path, AccessConfig(tokens=(("ada", TOKEN),))) as web:
        form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE}
        await web.post("/signin", content=f"token={TOKEN}&next=/runs", headers=form)
        page = await web.get("/runs")
        assert page.status_code == 200
        assert 'action="/signout"' in page.text and ">ada<" in page.text

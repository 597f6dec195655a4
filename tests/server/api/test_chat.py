"""``POST /api/chat`` end to end: the web app, the official SDKs, a loopback fake provider and
real read-only tools over the seeded store."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chachaml.server.access import AccessConfig
from chachaml.server.api.chat import ChatOptions
from chachaml.server.app import create_app
from chachaml.settings import Settings
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from tests.support.fake_providers import Call, Cut, Fail, FakeProvider, Hang, Say, Seen
from tests.support.mcp_seed import IRIS, seeded_store

KEY = "sk-secret-key-never-logged-42"
# a provider that answers is given time on a busy machine (0.5 s was once missed mid-stream);
# one that hangs is cut off soon, so the timeout tests stay quick
PATIENT, HASTY = 10.0, 0.5

pytestmark = pytest.mark.anyio


def patience(step: Fail | Hang) -> float:
    """The chat timeout for a provider playing ``step``: short only where it hangs."""
    return HASTY if isinstance(step, Hang) else PATIENT


@pytest.fixture
def settings(provider_server: tuple[FakeProvider, str]) -> Settings:
    url = provider_server[1]
    return Settings(anthropic_base_url=url, openai_base_url=f"{url}/v1")


def web(
    tmp_path: Path,
    settings: Settings,
    *,
    access: AccessConfig | None = None,
    timeout: float = PATIENT,
) -> AsyncIterator[httpx.AsyncClient]:
    async def client() -> AsyncIterator[httpx.AsyncClient]:
        url = await seeded_store(tmp_path)
        store = await open_store(url)
        try:
            app = create_app(
                store,
                artifacts=open_artifact_store(str(tmp_path / "artifacts")),
                access=access,
                chat=ChatOptions(settings=settings, timeout=timeout, max_retries=0),
            )
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                yield c
        finally:
            await store.close()

    return client()


@pytest.fixture
async def api(tmp_path: Path, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in web(tmp_path, settings):
        yield client


def best_iris(fake: FakeProvider) -> None:
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: "Best: " + " ".join(r.content for r in seen.results)),
    )


async def ask(
    api: httpx.AsyncClient, provider: str, key: str | None = KEY, **body: Any
) -> httpx.Response:
    headers = {"X-Chat-Api-Key": key} if key else {}
    payload = {"question": "Which iris run is best?", "provider": provider, **body}
    return await api.post("/api/chat", json=payload, headers=headers)


async def test_the_answer_and_its_tool_calls_come_back_as_json(
    api: httpx.AsyncClient, fake: FakeProvider, provider: str
) -> None:
    best_iris(fake)
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    response = await ask(api, provider, model="m-1", history=history)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"answer", "answer_html", "provider", "model", "iterations", "tool_calls"}
    assert IRIS in body["answer"] and "0.97" in body["answer"]
    assert (body["provider"], body["model"], body["iterations"]) == (provider, "m-1", 2)
    [call] = body["tool_calls"]
    assert call["name"] == "best_run" and IRIS in call["result"] and not call["is_error"]
    first: Seen = fake.seen[0]
    assert first.key == KEY and first.texts[:2] == [("user", "hello"), ("assistant", "hi")]
    assert "add_tag" not in first.tools and "get_run" in first.tools


async def test_the_servers_key_is_used_when_the_request_has_none(
    tmp_path: Path, settings: Settings, fake: FakeProvider, provider: str
) -> None:
    keyed = Settings(
        anthropic_api_key="sk-server-a",
        openai_api_key="sk-server-o",
        anthropic_base_url=settings.anthropic_base_url,
        openai_base_url=settings.openai_base_url,
    )
    fake.play(Say(lambda seen: "ok"))
    async for api in web(tmp_path, keyed):
        response = await ask(api, provider, key=None)
        assert response.json()["answer"] == "ok"
    assert fake.seen[0].key == f"sk-server-{provider[0]}"


async def test_without_any_key_the_error_says_which_header_to_send(
    api: httpx.AsyncClient, provider: str
) -> None:
    response = await ask(api, provider, key=None)
    assert response.status_code == 401
    assert "X-Chat-Api-Key" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("step", "status", "message"),
    [
        (Fail(401, "invalid x-api-key"), 502, "rejected the API key"),
        (Fail(529, "Overloaded"), 502, "overloaded"),
        (Fail(429, "slow down", {"retry-after": "12"}), 429, "retry after 12 s"),
        (Hang(), 504, f"did not answer within {HASTY:g} s"),
    ],
)
async def test_provider_failures_are_clear_errors_in_the_envelope(
    tmp_path: Path,
    settings: Settings,
    fake: FakeProvider,
    provider: str,
    step: Fail | Hang,
    status: int,
    message: str,
) -> None:
    fake.play(step)
    async for api in web(tmp_path, settings, timeout=patience(step)):
        with anyio.fail_after(10):
            response = await ask(api, provider)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and message in error["message"]
    if status == 429:
        assert response.headers["retry-after"] == "12"


async def test_the_iteration_cap_is_a_422(
    api: httpx.AsyncClient, fake: FakeProvider, provider: str
) -> None:
    fake.play(*[Call([("list_experiments", {})]) for _ in range(2)])
    response = await ask(api, provider, max_iterations=2)
    assert response.status_code == 422
    assert "after 2 replies" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"provider": "anthropic"}, "question"),
        ({"question": "q", "provider": "gemini"}, "provider"),
        ({"question": "q", "base_url": "http://evil.example"}, "base_url"),
        ({"question": "q", "max_iterations": 100}, "max_iterations"),
    ],
)
async def test_a_malformed_body_is_a_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], where: str
) -> None:
    response = await api.post("/api/chat", json=body, headers={"X-Chat-Api-Key": KEY})
    assert response.status_code == 422
    assert where in response.json()["error"]["message"]


async def test_a_body_that_is_not_json_is_a_400(api: httpx.AsyncClient) -> None:
    json_type = {"Content-Type": "application/json"}
    response = await api.post("/api/chat", content=b"question?", headers=json_type)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    # without a JSON type (a cross-site page's preflight-free body): refused before parsing
    response = await api.post("/api/chat", content=b'{"question": "q"}')
    assert response.status_code == 415


async def test_protected_reads_need_a_token(
    tmp_path: Path, settings: Settings, fake: FakeProvider
) -> None:
    access = AccessConfig(tokens=(("ada", "token-123456"),))
    fake.play(Say(lambda seen: "ok"))
    async for api in web(tmp_path, settings, access=access):
        refused = await ask(api, "anthropic")
        headers = {"X-Chat-Api-Key": KEY, "Authorization": "Bearer token-123456"}
        allowed = await api.post("/api/chat", json={"question": "q"}, headers=headers)
    assert refused.status_code == 401 and allowed.json()["answer"] == "ok"


async def test_the_key_is_never_logged_nor_stored(
    tmp_path: Path,
    settings: Settings,
    fake: FakeProvider,
    provider: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    best_iris(fake)
    async for api in web(tmp_path, settings):
        ok = await ask(api, provider)
        fake.play(Fail(401, "invalid key"))
        failed = await ask(api, provider)
    assert ok.status_code == 200 and failed.status_code == 502
    assert fake.seen[0].key == KEY  # it did reach the provider
    out, err = capfd.readouterr()
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)
    assert KEY not in caplog.text + out + err + ok.text + failed.text
    stored = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert stored and all(KEY.encode() not in blob for blob in stored)


# --- the streamed form: Server-Sent Events -------------------------------------------------

STREAM = {"Accept": "text/event-stream"}


def events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """The ``(event, data)`` pairs of a Server-Sent Events body."""
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    found = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((fields["event"], json.loads(fields["data"])))
    return found


async def ask_streamed(
    api: httpx.AsyncClient, provider: str, key: str | None = KEY, **body: Any
) -> httpx.Response:
    headers = {**STREAM, **({"X-Chat-Api-Key": key} if key else {})}
    payload = {"question": "Which iris run is best?", "provider": provider, **body}
    with anyio.fail_after(20):
        return await api.post("/api/chat", json=payload, headers=headers)


async def test_a_streamed_answer_sends_tool_calls_then_text_pieces_then_the_answer(
    api: httpx.AsyncClient, fake: FakeProvider, provider: str
) -> None:
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: f"The **best** run is {IRIS}.\n\n| run | acc |\n|---|---|\n| a | 1 |"),
    )
    response = await ask_streamed(api, provider)
    assert response.status_code == 200
    got = events(response)
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "tool_call" and kinds[-1] == "answer"
    assert set(kinds[1:-1]) == {"text"} and len(kinds) > 5  # the text came in many pieces
    call = got[0][1]
    assert call["name"] == "best_run" and call["arguments"] == {
        "metric": "acc",
        "experiment": "iris",
    }
    assert IRIS in call["result"] and call["is_error"] is False
    final = got[-1][1]
    assert "".join(data["text"] for kind, data in got if kind == "text") == final["answer"]
    assert set(final) == {"answer", "answer_html", "provider", "model", "iterations", "tool_calls"}
    assert "<strong>best</strong>" in final["answer_html"] and "<table>" in final["answer_html"]
    assert final["tool_calls"] == [call] and final["iterations"] == 2
    assert all(seen.streamed for seen in fake.seen)  # the provider's streaming API was used


async def test_stream_is_also_asked_for_with_a_query_parameter(
    api: httpx.AsyncClient, fake: FakeProvider
) -> None:
    fake.play(Say(lambda seen: "short answer"))
    response = await api.post(
        "/api/chat?stream=1", json={"question": "q"}, headers={"X-Chat-Api-Key": KEY}
    )
    assert [kind for kind, _ in events(response)] == ["text", "text", "answer"]


@pytest.mark.parametrize(
    ("step", "status", "message"),
    [
        (Fail(401, "invalid x-api-key"), 502, "rejected the API key"),
        (Fail(429, "slow down", {"retry-after": "12"}), 429, "retry after 12 s"),
        (Hang(), 504, f"did not answer within {HASTY:g} s"),
    ],
)
async def test_provider_failures_are_an_error_event(
    tmp_path: Path,
    settings: Settings,
    fake: FakeProvider,
    provider: str,
    step: Fail | Hang,
    status: int,
    message: str,
) -> None:
    fake.play(step)
    async for api in web(tmp_path, settings, timeout=patience(step)):
        response = await ask_streamed(api, provider)
    [(kind, data)] = events(response)
    assert kind == "error"
    assert data["error"]["status"] == status and message in data["error"]["message"]
    assert KEY not in response.text


async def test_the_iteration_cap_is_an_error_event_after_the_tool_calls(
    api: httpx.AsyncClient, fake: FakeProvider, provider: str
) -> None:
    fake.play(*[Call([("list_experiments", {})]) for _ in range(2)])
    got = events(await ask_streamed(api, provider, max_iterations=2))
    assert [kind for kind, _ in got] == ["tool_call", "error"]
    assert (
        got[1][1]["error"]["status"] == 422 and "after 2 replies" in got[1][1]["error"]["message"]
    )


async def test_refusals_before_the_model_is_asked_stay_plain_http_errors(
    tmp_path: Path, settings: Settings, api: httpx.AsyncClient, fake: FakeProvider
) -> None:
    fake.play()
    no_key = await ask_streamed(api, "openai", key=None)
    assert no_key.status_code == 401 and "X-Chat-Api-Key" in no_key.json()["error"]["message"]
    too_long = await ask_streamed(api, "anthropic", history=[{"role": "user", "content": "x"}] * 41)
    assert too_long.status_code == 422
    big = b'{"question": "' + b"x" * (1024 * 1024) + b'"}'
    json_type = {**STREAM, "Content-Type": "application/json", "X-Chat-Api-Key": KEY}
    assert (await api.post("/api/chat", content=big, headers=json_type)).status_code == 413
    access = AccessConfig(tokens=(("ada", "token-123456"),))
    (tmp_path / "guarded").mkdir()
    async for guarded in web(tmp_path / "guarded", settings, access=access):
        assert (await ask_streamed(guarded, "anthropic")).status_code == 401
    assert fake.seen == []


async def test_an_error_inside_the_providers_stream_ends_the_events_with_an_error(
    api: httpx.AsyncClient, fake: FakeProvider, provider: str
) -> None:
    fake.play(Cut("Half an answer", 529, f"Overloaded (key {KEY})"))
    got = events(await ask_streamed(api, provider))
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "text" and kinds[-1] == "error" and "answer" not in kinds
    error = got[-1][1]["error"]
    assert error["status"] == 502 and "overloaded" in error["message"]
    assert KEY not in json.dumps(got)


async def test_the_chat_stops_when_the_client_goes_away(
    tmp_path: Path, settings: Settings, fake: FakeProvider
) -> None:
    fake.play(Say(lambda seen: "word " * 200, pause=0.05))  # ten seconds of answer
    body = json.dumps({"question": "q"}).encode()
    sent: list[MutableMapping[str, Any]] = []
    pieces = anyio.Event()
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": body, "more_body": False}
        await pieces.wait()  # the client leaves once the answer has begun
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if b"event: text" in message.get("body", b""):
            pieces.set()

    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"accept", b"text/event-stream"),
        (b"x-chat-api-key", KEY.encode()),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/chat", "raw_path": b"/api/chat", "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    url = await seeded_store(tmp_path)
    store = await open_store(url)
    try:
        app = create_app(store, chat=ChatOptions(settings=settings, timeout=5, max_retries=0))
        with anyio.fail_after(5):  # not the ten seconds the whole answer would take
            await app(scope, receive, send)
    finally:
        await store.close()
    texts = [m for m in sent if b"event: text" in m.get("body", b"")]
    assert sent[0]["status"] == 200 and 1 <= len(texts) < 200
    assert not any(b"event: answer" in m.get("body", b"") for m in sent)

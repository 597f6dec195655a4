"""Finding 6 (outside the access layer): chat history is bounded and provider errors are scrubbed.

``POST /api/chat`` runs against the real web app, the official SDKs and the loopback fake
provider of :mod:`tests.support.fake_providers`; the Python API (what ``chachaml chat`` calls) is
checked against the same fake.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chachaml.chat import ask
from chachaml.chat import errors as chat_errors
from chachaml.chat.errors import ProviderError
from chachaml.errors import InvalidInput
from chachaml.server.api.chat import ChatOptions
from chachaml.server.app import create_app
from chachaml.settings import Settings
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from tests.support.fake_providers import Fail, FakeProvider, Say
from tests.support.mcp_seed import seeded_store

pytestmark = pytest.mark.anyio

# Shaped like no known key format, so only knowing the key in use can scrub it.
KEY = "chachaml-test-key-Qw7"
OTHER_KEYS = (
    "sk-ant-api03-Zx81kQp0vN3mL2rT9sY4",
    "sk-proj-AbC0dEf1gHi2jKl3mNo4",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    "0123456789abcdef0123456789abcdef01234567",
    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",
)


@pytest.fixture
def settings(provider_server: tuple[FakeProvider, str]) -> Settings:
    url = provider_server[1]
    return Settings(anthropic_base_url=url, openai_base_url=f"{url}/v1")


@pytest.fixture
async def api(tmp_path: Path, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The web app in its default (local) mode, called as a same-origin page would."""
    store = await open_store(await seeded_store(tmp_path))
    try:
        app = create_app(
            store,
            artifacts=open_artifact_store(str(tmp_path / "artifacts")),
            chat=ChatOptions(settings=settings, timeout=5, max_retries=0),
        )
        transport = httpx.ASGITransport(app)
        headers = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            yield client
    finally:
        await store.close()


def turns(n: int, chars: int = 10) -> list[dict[str, str]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "x" * chars} for i in range(n)
    ]


async def chat(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    payload = {"question": "Which run is best?", "provider": "anthropic", **body}
    with anyio.fail_after(30):
        return await api.post("/api/chat", json=payload, headers={"X-Chat-Api-Key": KEY})


async def test_forty_turns_are_answered_and_forty_one_are_a_422(
    api: httpx.AsyncClient, fake: FakeProvider
) -> None:
    fake.play(Say(lambda seen: f"{len(seen.texts)} texts"))
    ok = await chat(api, history=turns(40))
    assert ok.status_code == 200 and ok.json()["answer"] == "41 texts"
    fake.play()
    refused = await chat(api, history=turns(41))
    assert refused.status_code == 422
    assert "history" in refused.json()["error"]["message"]
    assert "40" in refused.json()["error"]["message"]
    assert fake.seen == []  # refused before the provider (and its key) was involved


async def test_a_message_over_20000_characters_is_a_422(
    api: httpx.AsyncClient, fake: FakeProvider
) -> None:
    fake.play()
    refused = await chat(api, history=turns(1, 20_001))
    assert refused.status_code == 422
    assert "20000" in refused.json()["error"]["message"]
    assert fake.seen == []


async def test_a_request_over_200000_characters_in_all_is_a_422(
    api: httpx.AsyncClient, fake: FakeProvider
) -> None:
    fake.play()
    refused = await chat(api, history=turns(11, 19_000))  # each turn fits, together they do not
    assert refused.status_code == 422
    assert "200000" in refused.json()["error"]["message"]
    assert fake.seen == []


async def test_a_body_over_one_mebibyte_is_refused_before_it_is_parsed(
    api: httpx.AsyncClient, fake: FakeProvider
) -> None:
    fake.play()
    body = json.dumps({"question": "q", "history": turns(30, 40_000)}).encode()
    assert len(body) > 1024 * 1024
    with anyio.fail_after(30):
        refused = await api.post(
            "/api/chat",
            content=body,
            headers={"Content-Type": "application/json", "X-Chat-Api-Key": KEY},
        )
    assert refused.status_code == 413
    assert fake.seen == []


async def test_a_provider_error_echoing_the_key_reaches_the_caller_without_it(
    api: httpx.AsyncClient, fake: FakeProvider, provider: str
) -> None:
    echoed = f"Incorrect API key provided: {KEY}. Also seen: Bearer {KEY} " + " ".join(OTHER_KEYS)
    fake.play(Fail(401, echoed))
    response = await chat(api, provider=provider)
    assert fake.seen[0].key == KEY  # the provider got the key and echoed it back
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "rejected the API key" in message and "Incorrect API key provided" in message
    assert KEY not in response.text
    for secret in OTHER_KEYS:
        assert secret not in response.text


async def test_the_python_chat_scrubs_the_key_from_provider_errors(
    tmp_path: Path, settings: Settings, fake: FakeProvider, provider: str
) -> None:
    url = await seeded_store(tmp_path)
    fake.play(Fail(400, f"bad request from key {KEY}"))
    with pytest.raises(ProviderError) as raised:
        await anyio.to_thread.run_sync(
            lambda: ask(
                "q",
                provider=provider,
                api_key=KEY,
                store=url,
                artifacts=str(tmp_path / "artifacts"),
                settings=settings,
                max_retries=0,
            )
        )
    assert "refused the request (HTTP 400)" in str(raised.value)
    assert KEY not in str(raised.value)


async def test_the_python_chat_bounds_history_too(tmp_path: Path, settings: Settings) -> None:
    url = await seeded_store(tmp_path)
    for history, limit in ((turns(41), "40"), (turns(11, 19_000), "200000")):
        with pytest.raises(InvalidInput, match=limit):
            await anyio.to_thread.run_sync(
                partial(ask, "q", api_key=KEY, history=history, store=url, settings=settings)
            )


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"key {KEY} rejected", "key [redacted] rejected"),
        ("auth: Bearer abc.def-ghi", "auth: Bearer [redacted]"),
        ("key sk-ant-api03-Zx81kQp0 bad", "key [redacted] bad"),
        ("id 0123456789abcdef0123456789abcdef", "id [redacted]"),
        ("blob QUJDREVGR0hJSktMTU5PUFFSU1RVVldY==", "blob [redacted]"),
        (
            "model claude-sonnet-4-5-20250929 not found",
            "model claude-sonnet-4-5-20250929 not found",
        ),
        ("see https://docs.example.com/errors", "see https://docs.example.com/errors"),
    ],
)
def test_scrubbing_removes_key_shaped_text_and_keeps_the_rest(text: str, kept: str) -> None:
    assert chat_errors.scrub_secrets(text, [KEY]) == kept


def test_every_provider_error_message_is_scrubbed() -> None:
    error = ProviderError(f"echo {KEY} and sk-proj-AbC0dEf1gHi2", kind="auth", secrets=[KEY])
    assert str(error) == "echo [redacted] and [redacted]"

"""The Chat and Alerts pages in a real browser (Debian's chromium via Playwright).

``chachaml serve`` runs over a seeded store with its provider endpoints pointed at the
loopback fake provider; the Chat page asks questions through ``POST /api/chat`` and shows
each answer with its tool calls, and hostile answers render as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chachaml.store import open_store
from tests.support.alerts_seed import seed_alerts
from tests.support.browser import SHOTS, chromium, visit
from tests.support.fake_providers import Call, FakeProvider, Say, fake_provider
from tests.support.mcp_seed import IRIS, NEW, seed, serving

KEY = "sk-browser-only-key"
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> done'


async def _seed(path: Path) -> str:
    url = f"sqlite:///{path / 'chat.db'}"
    store = await open_store(url)
    try:
        await seed(store, path / "artifacts")
        await seed_alerts(store)
    finally:
        await store.close()
    return url


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[FakeProvider, str]]:
    with fake_provider() as served:
        yield served


@pytest.fixture
def fake(provider: tuple[FakeProvider, str]) -> FakeProvider:
    return provider[0]


@pytest.fixture(scope="module")
def base_url(
    tmp_path_factory: pytest.TempPathFactory, provider: tuple[FakeProvider, str]
) -> Iterator[str]:
    path = tmp_path_factory.mktemp("chat-browser")
    url = anyio.run(_seed, path)
    env = {
        "ANTHROPIC_BASE_URL": provider[1],
        "OPENAI_BASE_URL": f"{provider[1]}/v1",
        "ANTHROPIC_API_KEY": "",
        "OPENAI_API_KEY": "",
    }
    with serving(url, path / "artifacts", env) as mcp_url:
        yield mcp_url.removesuffix("/mcp")


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    """Chromium, started after the store is seeded (Playwright's sync API holds the loop)."""
    with chromium() as launched:
        yield launched


def _ask(page: Any, question: str, answers: int) -> Any:
    """Type a question, send it, and wait for the ``answers``-th reply; returns that reply."""
    page.fill("#chat-question", question)
    page.click("#chat-send")
    reply = page.locator(".chat-assistant").nth(answers - 1)
    reply.locator(".answer, .chat-error").first.wait_for(timeout=15_000)
    return reply


@pytest.mark.parametrize("provider_name", ["anthropic", "openai"])
def test_chat_answers_with_its_tool_calls_links_and_history(
    browser: Any, base_url: str, fake: FakeProvider, provider_name: str
) -> None:
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: f"The best iris run is {IRIS} (acc 0.97); digits v2 is in production."),
        Say(lambda seen: "You asked: " + seen.texts[0][1]),
    )
    page, errors = visit(browser, f"{base_url}/chat", f"chat-{provider_name}")
    try:
        page.select_option("#chat-provider", provider_name)
        page.fill("#chat-key", KEY)
        reply = _ask(page, "Which iris run is best?", 1)
        answer = reply.locator(".answer")
        assert "The best iris run is" in answer.inner_text()
        assert answer.locator(f"a[href='/runs/{IRIS}']").inner_text() == IRIS
        assert answer.locator("a[href='/models/digits']").inner_text() == "digits v2"
        call = reply.locator(".tool-call")
        assert call.count() == 1
        assert call.locator(".tool-name").inner_text() == "best_run"
        assert '"experiment":"iris"' in call.locator(".tool-args").inner_text()
        assert IRIS in call.locator(".tool-result").inner_text()
        assert fake.seen[0].provider == provider_name and fake.seen[0].key == KEY

        follow = _ask(page, "And the second best?", 2)
        assert follow.locator(".answer").inner_text() == "You asked: Which iris run is best?"
        texts = fake.seen[2].texts
        assert texts[0] == ("user", "Which iris run is best?")
        assert texts[1][0] == "assistant" and IRIS in texts[1][1]
        assert texts[2] == ("user", "And the second best?")
        stored = page.evaluate(f"sessionStorage.getItem('chachaml.chat.key.{provider_name}')")
        assert stored == KEY and KEY not in page.url
        page.screenshot(path=str(SHOTS / f"chat-answer-{provider_name}.png"), full_page=True)
        assert errors == []
    finally:
        page.close()


def test_a_hostile_chat_answer_renders_as_text(
    browser: Any, base_url: str, fake: FakeProvider
) -> None:
    fake.play(Say(lambda seen: HOSTILE))
    page, errors = visit(browser, f"{base_url}/chat", "chat-hostile")
    try:
        page.fill("#chat-key", KEY)
        reply = _ask(page, "Say something nasty", 1)
        assert reply.locator(".answer").inner_text() == HOSTILE
        assert page.locator("main img, main script:not([src])").count() == 0
        assert page.evaluate("window.pwned") is None
        page.screenshot(path=str(SHOTS / "chat-hostile-answer.png"), full_page=True)
        assert errors == []
    finally:
        page.close()


def test_a_provider_error_shows_in_the_conversation(
    browser: Any, base_url: str, fake: FakeProvider
) -> None:
    fake.play()
    page, errors = visit(browser, f"{base_url}/chat", "chat-no-key")
    try:
        page.evaluate("sessionStorage.clear()")
        page.fill("#chat-key", "")
        reply = _ask(page, "Anyone there?", 1)
        assert "X-Chat-Api-Key" in reply.locator(".chat-error").inner_text()
        assert fake.seen == []
        assert [e for e in errors if "401" not in e] == []
    finally:
        page.close()


def test_alerts_page_shows_the_seeded_rule_and_event(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/alerts", "alerts")
    try:
        rules = page.locator("table.alert-rules").inner_text()
        for text in ("acc-low", "threshold", "acc < 0.5", "mnist", "hooks.example.com", "yes"):
            assert text in rules
        assert "<img src=x onerror=alert(1)>" in rules
        events = page.locator("table.alert-events")
        assert "delivered" in events.inner_text() and "HTTP 500" in events.inner_text()
        assert events.locator(f"a[href='/runs/{NEW}']").count() == 1
        assert page.locator("main img").count() == 0
        assert page.locator("header nav a.active").inner_text() == "Alerts"
        assert errors == []
    finally:
        page.close()

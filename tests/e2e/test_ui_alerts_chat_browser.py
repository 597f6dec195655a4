"""The Chat and Alerts pages in a real browser (Debian's chromium via Playwright).

``chachaml serve`` runs over a seeded store with its provider endpoints pointed at the
loopback fake provider; the Chat page asks questions through ``POST /api/chat`` and shows
each answer with its tool calls, and hostile answers render as text.
"""

from __future__ import annotations

import time
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


MARKDOWN = (
    "The **best** run is {run}.\n\n| run | acc |\n|-----|-----|\n| {run} | 0.97 |\n\n"
    "Done <script>window.pwned = 3</script> [x](javascript:window.pwned=4)"
)
PARTIAL = """() => {
  const reply = document.querySelector('.chat-assistant');
  const partial = reply && reply.querySelector('.answer-partial');
  return {
    partial: partial ? partial.textContent : '',
    done: !!(reply && reply.querySelector('.answer.markdown, .chat-error')),
    calls: reply ? reply.querySelectorAll('.tool-call').length : 0,
  };
}"""


@pytest.mark.parametrize("provider_name", ["anthropic", "openai"])
def test_the_key_hint_shows_up_front_and_a_markdown_answer_streams_in(
    browser: Any, base_url: str, fake: FakeProvider, provider_name: str
) -> None:
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: MARKDOWN.format(run=IRIS), pause=0.12),
    )
    page, errors = visit(browser, f"{base_url}/chat", f"chat-stream-{provider_name}")
    try:
        page.evaluate("sessionStorage.clear()")
        status = page.locator("#chat-key-status")
        assert status.is_visible() and "holds no provider API key" in status.inner_text()
        page.select_option("#chat-provider", provider_name)
        assert f"no {provider_name} API key" in status.inner_text()
        page.fill("#chat-key", KEY)
        assert "with the key you entered" in status.inner_text()

        page.fill("#chat-question", "Which iris run is best?")
        page.click("#chat-send")
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # poll: wait_for_function is refused by the CSP
            state = page.evaluate(PARTIAL)
            seen.append(state)
            if state["done"]:
                break
            page.wait_for_timeout(40)
        partial = [s["partial"] for s in seen if s["partial"] and not s["done"]]
        assert seen[-1]["done"], "no answer within 20 s"
        assert partial, "the answer never showed before it was complete"
        assert len(set(partial)) > 1, "the answer arrived in one piece"
        assert any(s["calls"] == 1 for s in seen if not s["done"]), "no tool call before the end"
        assert all(p.startswith("The") and "Done" not in p for p in partial[:1])

        answer = page.locator(".chat-assistant .answer.markdown")
        assert answer.locator("strong").inner_text() == "best"
        table = answer.locator("table")
        assert table.locator("th").all_inner_texts() == ["run", "acc"]
        assert table.locator(f"td a[href='/runs/{IRIS}']").inner_text() == IRIS
        assert "<script>" in answer.inner_text()  # shown as text, inert
        assert page.locator("main script:not([src]), .answer a[href^='javascript']").count() == 0
        assert page.evaluate("window.pwned") is None
        assert fake.seen[0].streamed and fake.seen[1].streamed
        page.screenshot(path=str(SHOTS / f"chat-markdown-{provider_name}.png"), full_page=True)
        assert errors == []
    finally:
        page.close()


def test_when_the_stream_cannot_be_had_the_page_asks_for_json(
    browser: Any, base_url: str, fake: FakeProvider
) -> None:
    fake.play(Say(lambda seen: "Plain **JSON** answer"))
    page, errors = visit(browser, f"{base_url}/chat", "chat-fallback")
    streamed: list[str] = []

    def no_streams(route: Any) -> None:
        if "text/event-stream" in route.request.headers.get("accept", ""):
            streamed.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    try:
        page.route("**/api/chat", no_streams)
        page.fill("#chat-key", KEY)
        reply = _ask(page, "Anything?", 1)
        assert reply.locator(".answer.markdown strong").inner_text() == "JSON"
        assert streamed and len(fake.seen) == 1 and not fake.seen[0].streamed
        assert [e for e in errors if "ERR_FAILED" not in e] == []
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

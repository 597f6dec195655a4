"""The Artifacts and Alerts pages as working surfaces, in a real browser (Chromium, Playwright).

``chachaml serve`` runs over a seeded store with a ``plots/`` folder of artifacts, and with
webhooks to loopback allowed so a rule can be test-fired at a local receiver.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools import artifacts as artifact_ops
from tests.support.browser import SHOTS, chromium, goto, visit
from tests.support.mcp_seed import MID, PNG_1PX, seed, serving_seeded
from tests.support.webhook_receiver import Receiver, webhook_receiver

PLOTS = [f"plots/epoch-{i:02d}.png" for i in range(10)]


async def _seed(path: Path) -> str:
    url = f"sqlite:///{path / 'arts.db'}"
    store = await open_store(url)
    try:
        await seed(store, path / "artifacts")
        arts = open_artifact_store(str(path / "artifacts"))
        for name in PLOTS:
            await artifact_ops.put_bytes(store, arts, MID, name, PNG_1PX,
                                         content_type="image/png", serializer="bytes")  # fmt: skip
        await artifact_ops.put_bytes(store, arts, MID, "plots/text/summary.txt",
                                     b"best epoch: 7", content_type="text/plain",
                                     serializer="text")  # fmt: skip
    finally:
        await store.close()
    return url


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[str]:
    env = {"CHACHAML_WEBHOOK_ALLOW_PRIVATE": "true"}
    with serving_seeded(tmp_path_factory.mktemp("arts-browser"), _seed, env) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _poll(page: Any, script: str, timeout: float = 10.0) -> Any:
    """Evaluate ``script`` until it is truthy (the CSP refuses wait_for_function's eval)."""
    for _ in range(int(timeout * 10)):
        value = page.evaluate(script)
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {script}")


def test_the_tree_expands_and_a_preview_appears_on_selection(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/runs/{MID}/artifacts", "artifacts-tree")
    try:
        folder = page.locator(".artifact-tree > ul > .tree-folder > details").first
        head = folder.locator("> summary")
        assert head.locator(".folder-name").inner_text() == "plots/"
        assert folder.get_attribute("open") is None  # 15 artifacts: folders start closed
        assert not page.locator(f".artifact-item[data-name='{PLOTS[3]}']").is_visible()
        assert page.locator(".artifact-preview .preview-empty").is_visible()
        assert page.locator(".artifact-preview img").count() == 0  # nothing rendered up front

        head.click()
        item = page.locator(f".artifact-item[data-name='{PLOTS[3]}']")
        item.wait_for(state="visible", timeout=5_000)
        assert item.locator("img.thumb").count() == 1
        item.click()
        image = page.locator(".artifact-preview img.preview")
        image.wait_for(state="visible", timeout=5_000)
        assert image.get_attribute("src") == f"/api/artifacts/{MID}/{PLOTS[3]}"
        assert page.locator(".artifact-preview .preview-name").inner_text() == PLOTS[3]
        assert "B (" in page.locator(".preview-meta").inner_text()  # a human size
        assert page.url.endswith("?name=" + PLOTS[3].replace("/", "%2F"))
        _poll(page, "document.querySelector('.artifact-preview img.preview').naturalWidth > 0")

        page.locator(".tree-folder details summary", has_text="text/").click()
        page.locator(".artifact-item[data-name='plots/text/summary.txt']").click()
        page.locator(".artifact-preview pre.preview", has_text="best epoch: 7").wait_for(
            timeout=5_000
        )
        head.click()  # collapses again
        assert not page.locator(f".artifact-item[data-name='{PLOTS[3]}']").is_visible()
        page.screenshot(path=str(SHOTS / "artifacts-preview.png"), full_page=True)
        assert errors == []
    finally:
        page.close()


def test_the_run_page_shows_thumbnails(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/runs/{MID}", "run-artifact-thumbs")
    try:
        thumbs = page.locator("span.artifact-name img.thumb")
        assert thumbs.count() == len(PLOTS) + 1  # curve.png and the plots
        thumbs.first.scroll_into_view_if_needed()
        _poll(page, "[...document.querySelectorAll('span.artifact-name img.thumb')]"
                    ".some(i => i.complete && i.naturalWidth > 0)")  # fmt: skip
        assert errors == []
    finally:
        page.close()


def test_a_rule_is_created_muted_test_fired_and_deleted(
    browser: Any, base_url: str, receiver: Receiver
) -> None:
    page, errors = visit(browser, f"{base_url}/alerts", "alerts-form")
    try:
        form = page.locator("#rule-form")
        form.locator("input[name=name]").fill("acc-low-ui")
        form.locator("select[name=kind]").select_option("threshold")
        form.locator("input[name=metric_key]").fill("acc")
        form.locator("select[name=op]").select_option("<")
        form.locator("input[name=threshold]").fill("abc")
        form.locator("input[name=webhook_url]").fill(receiver.url)
        form.locator("button.rule-save").click()
        error = form.locator(".action-error")
        error.wait_for(state="visible", timeout=5_000)
        assert "threshold must be a number" in error.inner_text()
        assert form.locator("input[name=threshold]").get_attribute("aria-invalid") == "true"
        assert form.locator("input[name=name]").input_value() == "acc-low-ui"  # kept
        assert form.locator("input[name=webhook_url]").input_value() == receiver.url

        form.locator("input[name=threshold]").fill("0.5")
        form.locator("button.rule-save").click()
        row = page.locator("tr.rule", has_text="acc-low-ui")
        row.wait_for(timeout=10_000)
        assert "acc < 0.5" in row.inner_text()

        row.locator("button.rule-mute").click()
        page.locator("tr.rule .muted-badge").wait_for(timeout=10_000)
        row = page.locator("tr.rule", has_text="acc-low-ui")
        assert row.locator("button.rule-mute").inner_text() == "Unmute"

        before = len(receiver.received)
        row.locator("button.rule-test").click()
        status = page.locator("#rule-status", has_text="Test event delivered")
        status.wait_for(timeout=15_000)
        assert "No alert was recorded" in status.inner_text()
        assert len(receiver.received) == before + 1
        sent = receiver.received[-1].json
        assert sent["test"] is True and "acc-low-ui" in sent["text"]
        assert "no events" in page.locator("table.alert-events").inner_text().lower()

        row.locator("button.rule-delete").click()
        confirm = page.locator("#rule-confirm")
        confirm.wait_for(state="visible", timeout=5_000)
        assert "acc-low-ui" in confirm.inner_text()
        confirm.locator(".confirm-cancel").click()
        assert confirm.is_hidden() and page.locator("tr.rule").count() == 1
        row.locator("button.rule-delete").click()
        confirm.locator(".confirm-go").click()
        page.locator("td.empty", has_text="No alert rules yet").wait_for(timeout=10_000)
        assert page.locator("tr.rule").count() == 0
        page.screenshot(path=str(SHOTS / "alerts-deleted.png"), full_page=True)
        # the refused first save answered 422; the browser logs that response, nothing else
        assert [e for e in errors if "422" not in e] == []
    finally:
        page.close()


def test_a_rule_is_edited_in_place_keeping_its_webhook(
    browser: Any, base_url: str, receiver: Receiver
) -> None:
    page, errors = visit(browser, f"{base_url}/alerts", "alerts-edit")
    try:
        form = page.locator("#rule-form")
        form.locator("input[name=name]").fill("quiet-runs")
        form.locator("select[name=kind]").select_option("silent_run")
        assert form.locator("input[name=metric_key]").is_hidden()
        form.locator("input[name=silent_minutes]").fill("30")
        form.locator("input[name=webhook_url]").fill(receiver.url)
        form.locator("button.rule-save").click()
        row = page.locator("tr.rule", has_text="quiet-runs")
        row.wait_for(timeout=10_000)
        row.locator("button.rule-edit").click()
        assert form.locator("input[name=name]").input_value() == "quiet-runs"
        assert form.locator("input[name=silent_minutes]").input_value() == "30"
        assert "is kept" in form.locator(".webhook-kept").inner_text()
        form.locator("input[name=silent_minutes]").fill("45")
        form.locator("button.rule-save").click()
        page.locator("tr.rule", has_text="silent for 45 min").wait_for(timeout=10_000)
        assert "127.0.0.1" in page.locator("tr.rule", has_text="quiet-runs").inner_text()
        assert errors == []
    finally:
        page.close()


@pytest.mark.parametrize("path", [f"/runs/{MID}/artifacts?name=recall", "/alerts"])
def test_the_pages_fit_a_phone(browser: Any, base_url: str, path: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        goto(page, base_url + path)
        # the page's own content (the shared header's phone layout is the shell's part)
        wide = page.evaluate(
            "(() => { const m = document.querySelector('main');"
            " return Math.max(m.scrollWidth, m.getBoundingClientRect().right); })()"
        )
        assert wide <= 390, f"{path}: its content is {wide} px wide on a 390 px screen"
        page.screenshot(path=str(SHOTS / f"phone{path.split('?')[0].replace('/', '-')}.png"),
                        full_page=True)  # fmt: skip
    finally:
        page.close()

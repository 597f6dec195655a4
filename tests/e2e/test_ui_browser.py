"""The web UI in a real browser: Debian's chromium driven by Playwright, against ``chachaml serve``.

Each page is opened on a seeded store; its key content shows, charts draw (a canvas or SVG
inside the chart element), the console stays free of errors, hostile names and notes render
as text, and a screenshot of every page lands in ``test-output/screenshots/``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chachaml.records.runs import MetricChunk, NewRun
from chachaml.store import open_store
from tests.support.browser import SHOTS, chromium, navigation, visit
from tests.support.mcp_seed import MID, OLD, seed, serving_seeded

EVIL_ID, LONG_ID = "9" * 32, "e" * 32
EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_NOTE = "<script>window.pwned = 1</script> Loss $\\mathcal{L} = \\sum_i x_i^2$"
LONG_POINTS = 100_000


async def _seed(path: Path) -> str:
    url = f"sqlite:///{path / 'browser.db'}"
    store = await open_store(url)
    try:
        await seed(store, path / "artifacts")
        await store.create_run(
            NewRun(
                id=EVIL_ID,
                experiment="mnist",
                name=EVIL_NAME,
                created_by="ana",
                started_at=1_745_000_000.0,
                heartbeat_timeout=3600.0,
                tags={"html": EVIL_NAME},
            )
        )
        await store.set_note(EVIL_ID, EVIL_NOTE)
        await store.create_run(
            NewRun(
                id=LONG_ID,
                experiment="long",
                name="long",
                created_by="ana",
                started_at=1_745_000_100.0,
                heartbeat_timeout=3600.0,
            )
        )
        n = LONG_POINTS
        values = [1.0 / (1 + i) + (i % 50) * 1e-4 for i in range(n)]
        await store.log_metrics(
            [
                MetricChunk(
                    run_id=LONG_ID,
                    key="loss",
                    count=n,
                    steps=struct.pack(f"<{n}q", *range(n)),
                    values=struct.pack(f"<{n}d", *values),
                    timestamps=struct.pack(f"<{n}d", *([1_745_000_200.0] * n)),
                    last_value=values[-1],
                    last_step=n - 1,
                    last_time=1_745_000_200.0,
                    min_value=min(values),
                    max_value=max(values),
                )
            ]
        )
        await store.end_run(LONG_ID, "completed", None, 1_745_000_300.0)
    finally:
        await store.close()
    return url


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_seeded(tmp_path_factory.mktemp("browser"), _seed) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    """Chromium, started after the store is seeded (Playwright's sync API holds the loop)."""
    with chromium() as launched:
        yield launched


PAGES = [
    ("runs", "/runs", ["Runs", "wider", "baseline", "svm", "Export CSV"]),
    ("run", f"/runs/{MID}", ["wider", "Params", "reviewed=yes", "mnist-train", "notes.txt"]),
    ("artifacts", f"/runs/{MID}/artifacts", ["notes.txt", "recall", "curve.png"]),
    ("artifact", f"/runs/{MID}/artifacts?name=recall", ["recall", "0.99"]),
    ("artifact-text", f"/runs/{MID}/artifacts?name=notes.txt", ["trained on 4 GPUs"]),
    ("experiments", "/experiments?metric=acc", ["mnist", "handwritten digits", "0.92"]),
    ("experiment", "/experiments/mnist?metric=acc", ["Experiment mnist", "Best acc"]),
    ("search", "/search?where=acc%3E0.5&param=lr%3D0.01", ["Runs", "wider", "Compare selected"]),
    ("compare", f"/compare?ids={OLD},{MID}", ["Compare runs", "baseline", "wider", "lr"]),
    ("models", "/models", ["digits", "v2"]),
    ("model", "/models/digits", ["Model digits", "production", "staging", "History"]),
    ("diff", "/diff/digits/1/2", ["v1 vs v2", "lr", "acc"]),
    ("pipelines", "/pipelines", ["Pipelines"]),
    ("long", f"/runs/{LONG_ID}", ["showing", "of 100000 points", "full data (CSV)"]),
]


@pytest.mark.parametrize(("shot", "path", "texts"), PAGES, ids=[p[0] for p in PAGES])
def test_page_shows_its_content_and_charts_without_console_errors(
    browser: Any, base_url: str, shot: str, path: str, texts: list[str]
) -> None:
    page, errors = visit(browser, base_url + path, shot)
    try:
        body = page.inner_text("body")
        for text in texts:
            assert text in body, f"{text!r} missing on {path}"
        charts = page.locator(".chart")
        for i in range(charts.count()):
            assert charts.nth(i).get_attribute("data-rendered") == "1"
            assert charts.nth(i).locator("canvas, svg").count() >= 1
        assert errors == []
    finally:
        page.close()


def test_run_charts_draw_and_switch_to_log_scale(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/runs/{MID}", "run-charts")
    try:
        assert page.locator(".chart canvas").count() == 2
        page.locator("input.log-toggle").first.check()
        page.wait_for_function(
            "document.querySelector('#chart-1').dataset.rendered === '1'", timeout=10_000
        )
        assert page.locator("#chart-1 canvas").count() == 1
        assert page.locator("#chart-1 details.vega-actions, #chart-1 .vega-actions").count() >= 1
        assert errors == []
    finally:
        page.close()


def test_hostile_names_and_notes_render_as_text(browser: Any, base_url: str) -> None:
    for path, shot in (("/runs", "hostile-runs"), (f"/runs/{EVIL_ID}", "hostile-run")):
        page, errors = visit(browser, base_url + path, shot)
        try:
            assert EVIL_NAME in page.inner_text("body")
            assert page.locator("main img[src='x']").count() == 0
            assert page.evaluate("window.pwned") is None
            assert errors == []
        finally:
            page.close()
    page, _ = visit(browser, f"{base_url}/runs/{EVIL_ID}", "hostile-note")
    try:
        note = page.locator(".note")
        assert "<script>window.pwned = 1</script>" in note.inner_text()
        assert note.locator(".katex").count() == 1
    finally:
        page.close()


def test_adding_a_tag_through_the_form(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/runs/{OLD}", "run-tag-form")
    try:
        form = page.locator("#tag-form")
        form.locator("input[name=key]").fill("checked-by")
        form.locator("input[name=value]").fill("<b>browser</b>")
        page.locator("#write-token").fill("not-a-token")
        form.locator("button").click()
        error = form.locator(".action-error")
        error.wait_for(state="visible", timeout=10_000)
        assert "unknown or revoked token" in error.inner_text()
        errors.clear()  # the browser logs the refused request
        page.locator("#write-token").fill("")
        with navigation(page):
            form.locator("button").click()
        assert "checked-by=<b>browser</b>" in page.locator(".tags").first.inner_text()
        assert page.locator(".tags b").count() == 0
        page.screenshot(path=str(SHOTS / "run-tag-added.png"), full_page=True)
        assert errors == []
    finally:
        page.close()

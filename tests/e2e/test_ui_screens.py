"""Any screen, any reader: the page shell in Chromium on a phone, in dark mode, in another zone.

Every page of a seeded ``chachaml serve`` at 390x844 is no wider than the screen (tables
scroll inside their own box); the nav folds behind a menu button that opens by click and by
keyboard; a dark colour scheme gives a dark page; times show in the browser's zone with a
relative hint; unknown paths get the styled 404 with the nav; the overview lists what runs
and what failed; the chart and math libraries load only on the pages that use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.browser import SHOTS, chromium, goto
from tests.support.mcp_seed import MID, NEW
from tests.support.ui_server import LIVE, LIVE_NAME, PAGES, open_page, seeded_ui

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
VENDOR = {
    "vega.min.js",
    "vega-lite.min.js",
    "vega-embed.min.js",
    "vega-interpreter.js",
    "katex.min.js",
}
ZONE = "Asia/Kolkata"  # UTC+5:30: a half-hour offset cannot pass by accident


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with seeded_ui(tmp_path_factory.mktemp("screens")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    """Chromium, started after the store is seeded (Playwright's sync API holds the loop)."""
    with chromium() as launched:
        yield launched


def _luminance(css_colour: str) -> float:
    """Relative luminance (WCAG) of an ``rgb(...)``/``rgba(...)`` computed colour."""
    r, g, b = (int(x) / 255 for x in re.findall(r"[\d.]+", css_colour)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


@pytest.mark.parametrize(("shot", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_no_page_is_wider_than_a_phone(browser: Any, base_url: str, shot: str, path: str) -> None:
    page, errors = open_page(browser, base_url + path, **PHONE)
    try:
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"phone-{shot}.png"), full_page=True)
        assert widths[1] == 390
        assert widths[0] <= widths[1], f"{path} is {widths[0]} px wide on a 390 px screen"
        if shot != "not-found":  # the browser logs the 404 of the page itself
            assert errors == []
    finally:
        page.close()


def test_a_wide_table_scrolls_inside_its_own_box_on_a_phone(browser: Any, base_url: str) -> None:
    page, _ = open_page(browser, f"{base_url}/runs", **PHONE)
    try:
        table = page.locator("table.runs")
        sizes = table.evaluate("t => [t.scrollWidth, t.clientWidth]")
        assert sizes[0] > sizes[1], "the runs table should be wider than the screen"
        table.evaluate("t => { t.scrollLeft = 200; }")
        assert table.evaluate("t => t.scrollLeft") > 0
        # numbers and statuses are never split across lines
        number = page.locator("table.runs td.num:not(:empty)").first
        for cell in (number, page.locator("table.runs .badge").first):
            lines = cell.evaluate(
                "c => { const r = document.createRange(); r.selectNodeContents(c);"
                " return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size; }"
            )
            assert lines == 1, cell.inner_text()
    finally:
        page.close()


def test_the_nav_folds_behind_a_menu_button_on_a_phone(browser: Any, base_url: str) -> None:
    page, errors = open_page(browser, f"{base_url}/runs", **PHONE)
    try:
        button = page.get_by_role("button", name="Menu")
        runs_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Models")
        assert button.is_visible() and not runs_link.is_visible()
        assert button.get_attribute("aria-expanded") == "false"
        button.tap()
        runs_link.wait_for(state="visible", timeout=5_000)
        assert button.get_attribute("aria-expanded") == "true"
        page.screenshot(path=str(SHOTS / "phone-menu-open.png"))
        page.keyboard.press("Escape")
        runs_link.wait_for(state="hidden", timeout=5_000)
        assert page.evaluate("document.activeElement.className") == "menu-button"
        page.keyboard.press("Enter")  # the focused button, by keyboard alone
        runs_link.wait_for(state="visible", timeout=5_000)
        with page.expect_navigation():
            runs_link.click()
        assert page.url.endswith("/models")
        assert errors == []
    finally:
        page.close()


def test_on_a_desktop_the_nav_shows_and_the_menu_button_does_not(
    browser: Any, base_url: str
) -> None:
    page, _ = open_page(browser, f"{base_url}/runs")
    try:
        assert not page.get_by_role("button", name="Menu").is_visible()
        nav = page.get_by_role("navigation", name="Main")
        assert nav.get_by_role("link", name="Models").is_visible()
        assert nav.get_by_role("link", name="Overview").is_visible()
    finally:
        page.close()


def test_the_skip_link_moves_focus_to_the_content(browser: Any, base_url: str) -> None:
    page, _ = open_page(browser, f"{base_url}/models")
    try:
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        assert skip.evaluate("a => a === document.activeElement")
        assert skip.is_visible()  # shown once focused
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement.id === 'main'", timeout=5_000)
    finally:
        page.close()


@pytest.mark.parametrize("path", ["/", "/runs", f"/runs/{MID}", "/models/digits", "/nope"])
def test_a_dark_colour_scheme_gives_a_dark_page(browser: Any, base_url: str, path: str) -> None:
    page, _ = open_page(browser, base_url + path, color_scheme="dark")
    try:
        style = page.evaluate(
            "(() => { const s = getComputedStyle(document.body);"
            " return [s.backgroundColor, s.color]; })()"
        )
        assert _luminance(style[0]) < 0.05, style
        assert _luminance(style[1]) > 0.6, style
        charts = page.locator(".chart")
        for i in range(charts.count()):  # Vega's dark text stays on a light card
            background = charts.nth(i).evaluate("c => getComputedStyle(c).backgroundColor")
            assert _luminance(background) > 0.9, background
        page.screenshot(path=str(SHOTS / f"dark{path.replace('/', '-') or '-'}.png"))
    finally:
        page.close()


def test_a_light_colour_scheme_gives_a_light_page(browser: Any, base_url: str) -> None:
    page, _ = open_page(browser, f"{base_url}/runs", color_scheme="light")
    try:
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert _luminance(background) > 0.9
    finally:
        page.close()


def test_times_show_in_the_viewers_zone_with_a_relative_hint(browser: Any, base_url: str) -> None:
    page, errors = open_page(browser, f"{base_url}/runs/{MID}", timezone_id=ZONE)
    try:
        started = page.locator("dl.facts time").first
        page.wait_for_function("document.querySelector('dl.facts time').dataset.local === '1'")
        iso = started.get_attribute("datetime")
        assert iso is not None
        local = datetime.fromisoformat(iso).astimezone(ZoneInfo(ZONE))
        assert local.utcoffset() != datetime.fromisoformat(iso).astimezone(UTC).utcoffset()
        assert started.inner_text() == local.strftime("%Y-%m-%d %H:%M")  # older than a month
        title = started.get_attribute("title") or ""
        assert datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC") in title
        assert "GMT+5:30" in title or "India" in title
        assert errors == []
    finally:
        page.close()
    page, _ = open_page(browser, f"{base_url}/", timezone_id=ZONE)
    try:
        row = page.locator("table.overview-running tr", has_text=LIVE_NAME)
        hint = row.locator("time .ago")
        hint.wait_for(timeout=5_000)
        assert re.fullmatch(r"\s*· \d+ min ago", hint.inner_text()), hint.inner_text()
    finally:
        page.close()


def test_times_read_in_utc_without_javascript(browser: Any, base_url: str) -> None:
    page, _ = open_page(browser, f"{base_url}/", java_script_enabled=False)
    try:
        text = page.locator("table.overview-failures time").first.inner_text()
        assert text == "2025-03-05 10:00:00 UTC", text
        # without JavaScript the menu cannot fold, so the nav stays open on a phone too
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.get_by_role("link", name="Models").first.is_visible()
    finally:
        page.close()


def test_an_unknown_page_is_the_styled_404_with_the_nav(browser: Any, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        answer = goto(page, f"{base_url}/no/such/page")
        assert answer is not None and answer.status == 404
        assert page.get_by_role("heading", name="Page not found").is_visible()
        assert page.get_by_role("navigation", name="Main").is_visible()
        header = page.locator("header.site")
        assert header.evaluate("h => getComputedStyle(h).borderBottomStyle") == "solid"  # app.css
        assert "/no/such/page" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "not-found.png"))
        with page.expect_navigation():
            page.get_by_role("main").get_by_role("link", name="Runs", exact=True).click()
        assert page.url.endswith("/runs")
    finally:
        context.close()


def test_the_overview_lists_a_running_and_a_failed_run(browser: Any, base_url: str) -> None:
    page, errors = open_page(browser, f"{base_url}/")
    try:
        running = page.locator("table.overview-running")
        failures = page.locator("table.overview-failures")
        assert LIVE_NAME in running.inner_text()
        assert "deeper" in failures.inner_text() and "CUDA out of memory" in failures.inner_text()
        assert page.locator("table.overview-registry").get_by_text("production").count() >= 1
        assert "acc-low" in page.locator("table.overview-alerts").inner_text()
        assert failures.get_by_role("link", name="deeper").get_attribute("href") == f"/runs/{NEW}"
        with page.expect_navigation():
            running.get_by_role("link", name=LIVE_NAME).click()
        assert page.url.endswith(f"/runs/{LIVE}")
        assert errors == []
    finally:
        page.close()


def test_chart_and_math_libraries_load_only_where_used(browser: Any, base_url: str) -> None:
    loaded: dict[str, list[str]] = {}
    for path in ("/", "/runs", "/models", f"/runs/{MID}"):
        context = browser.new_context()
        page = context.new_page()
        seen: list[str] = []
        page.on("request", lambda req, seen=seen: seen.append(req.url.rsplit("/", 1)[-1]))
        goto(page, base_url + path)
        loaded[path] = [name for name in seen if name.endswith(".js")]
        context.close()
    for path in ("/", "/runs", "/models"):
        assert loaded[path][:3] == ["shell.js", "writes.js", "app.js"], (path, loaded[path])
        assert not set(loaded[path]) & VENDOR, (path, loaded[path])
    assert "vega.min.js" in loaded[f"/runs/{MID}"] and "katex.min.js" not in loaded[f"/runs/{MID}"]

"""Debian's Chromium through Playwright, for the browser tests; screenshots under test-output/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.services import unavailable

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
# A tab starts with empty sessionStorage: its first page of each origin clears that origin's
# localStorage, so a page of a reused context starts as a fresh context's would
FRESH_STORAGE = """try {
  if (!sessionStorage.getItem("chachaml-test-tab")) {
    localStorage.clear();
    sessionStorage.setItem("chachaml-test-tab", "1");
  }
} catch (e) {}"""


class Chromium:
    """A launched Chromium whose ``new_page`` reuses one context per set of context options.

    A new browser context costs Chromium about 0.65 CPU-seconds (a renderer process and a
    storage partition of its own), a new page in an open context about a third of that; the
    browser tests open some 250 pages. A page of a reused context starts as if its context
    were new: cookies are cleared when no other page of it is open, localStorage by
    :data:`FRESH_STORAGE`. ``new_context`` still gives a fresh context (for what needs a
    cold HTTP cache or a second user); anything else is the Playwright browser's.
    """

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self._contexts: dict[str, Any] = {}

    def new_page(self, **options: Any) -> Any:
        key = json.dumps(options, sort_keys=True, default=str)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = self.browser.new_context(**options)
            context.add_init_script(FRESH_STORAGE)
        elif not context.pages:
            context.clear_cookies()
        return context.new_page()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.browser, name)


@contextmanager
def chromium() -> Iterator[Chromium]:
    """Debian's Chromium through Playwright (skipped without them, required in CI)."""
    if not CHROMIUM.exists():
        unavailable(f"Debian's chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield Chromium(launched)
        finally:
            launched.close()


def visit(browser: Any, url: str, shot: str) -> tuple[Any, list[str]]:
    """Open ``url`` in a fresh page; returns the page and the console errors seen."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request",
        lambda req: (
            errors.append(f"off-host request {req.url}")
            if not req.url.startswith(url.split("/", 3)[0] + "//" + url.split("/", 3)[2])
            and not req.url.startswith(("data:", "blob:"))
            else None
        ),
    )

    def on_dialog(dialog: Any) -> None:
        errors.append(f"dialog opened: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url, wait_until="networkidle")
    charts = page.locator(".chart")
    for i in range(charts.count()):  # drawn lazily: scroll each into view first
        charts.nth(i).scroll_into_view_if_needed()
        charts.nth(i).locator("canvas, svg").first.wait_for(state="attached", timeout=10_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    return page, errors

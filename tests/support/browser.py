"""Debian's Chromium through Playwright, for the browser tests; screenshots under test-output/.

The tests drive Debian's ``chromium-headless-shell``: the same Chromium release as the
``chromium`` package, built as the headless shell that Playwright itself launches for headless
runs. The full browser in ``--headless`` mode runs its whole windowing and compositing stack
off screen and used twice the CPU for the same pages (44 against 23 core-seconds for the 40
axe checks; 184 against 99 for every browser module), on a suite that is CPU-bound.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.services import unavailable

CHROMIUM = Path("/usr/bin/chromium-headless-shell")
ARGS = [
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


QUIET = 0.1  # seconds with no request in flight after which a page has settled


class Traffic:
    """The requests a page has in flight, from Playwright's request events.

    Playwright's ``networkidle`` waits for 500 ms without traffic after every navigation;
    the browser tests open some 250 pages whose last request ends within a few ms of the
    last script running. Event streams (``eventsource``) never end and are not counted.
    """

    def __init__(self, page: Any) -> None:
        self.pending: dict[Any, str] = {}
        self.last = time.monotonic()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Any) -> None:
        if request.resource_type != "eventsource":
            self.pending[request] = request.url
            self.last = time.monotonic()

    def _ended(self, request: Any) -> None:
        if self.pending.pop(request, None) is not None:
            self.last = time.monotonic()


_TRAFFIC: weakref.WeakKeyDictionary[Any, Traffic] = weakref.WeakKeyDictionary()


def watch(page: Any) -> Any:
    """Start counting ``page``'s requests (before its first navigation); returns the page."""
    if page not in _TRAFFIC:
        _TRAFFIC[page] = Traffic(page)
    return page


def settle(page: Any, timeout: float = 15.0) -> None:
    """Wait until ``page`` has had no request in flight for :data:`QUIET` seconds.

    Playwright delivers request events while it waits, hence the short waits polled here
    against a deadline.
    """
    traffic = _TRAFFIC.get(page) or watch(page)
    deadline = time.monotonic() + timeout
    while True:
        page.wait_for_timeout(20)
        if not traffic.pending and time.monotonic() - traffic.last >= QUIET:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"requests still in flight after {timeout} s: "
                                 f"{list(traffic.pending.values())[:5]}")  # fmt: skip


def goto(page: Any, url: str, **options: Any) -> Any:
    """``page.goto(url)`` until the load event, then :func:`settle`; returns the response."""
    watch(page)
    response = page.goto(url, wait_until="load", **options)
    settle(page)
    return response


@contextmanager
def navigation(page: Any) -> Iterator[None]:
    """Around an action that navigates: wait for the new page's load event, then settle."""
    watch(page)
    with page.expect_navigation(wait_until="load"):
        yield
    settle(page)


def reload(page: Any) -> Any:
    """``page.reload()`` until the load event, then :func:`settle`."""
    watch(page)
    response = page.reload(wait_until="load")
    settle(page)
    return response


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
        return watch(context.new_page())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.browser, name)


@contextmanager
def chromium() -> Iterator[Chromium]:
    """Debian's Chromium through Playwright (skipped without them, required in CI)."""
    if not CHROMIUM.exists():
        unavailable(f"Debian's chromium-headless-shell is not installed at {CHROMIUM}")
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
    goto(page, url)
    charts = page.locator(".chart")
    for i in range(charts.count()):  # drawn lazily: scroll each into view first
        charts.nth(i).scroll_into_view_if_needed()
        charts.nth(i).locator("canvas, svg").first.wait_for(state="attached", timeout=10_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    return page, errors

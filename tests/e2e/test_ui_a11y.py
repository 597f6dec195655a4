"""axe-core on every page of the UI: no critical and no serious accessibility violation.

Each page of a seeded ``chachaml serve`` (:data:`tests.support.ui_server.PAGES`) is opened in
Chromium twice, on a desktop in the light scheme and on a phone in the dark scheme (contrast
differs), and checked with axe-core's default WCAG rules. axe-core is test-only: it is
vendored under ``tests/support/vendor/`` (MPL-2.0, licence beside it), never served.

The pages' Content-Security-Policy forbids inline script, and axe is injected as one, so each
context here is opened with Playwright's ``bypass_csp=True``; the CSP itself is checked by the
route tests and by the other browser tests, which keep it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium
from tests.support.ui_server import PAGES, open_page, seeded_ui

AXE = Path(__file__).resolve().parents[1] / "support" / "vendor" / "axe.min.js"
BLOCKING = {"critical", "serious"}
SCREENS: dict[str, dict[str, Any]] = {
    "desktop-light": {"viewport": {"width": 1280, "height": 900}, "color_scheme": "light"},
    "phone-dark": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "color_scheme": "dark",
    },
}
RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}"""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with seeded_ui(tmp_path_factory.mktemp("a11y")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    """Chromium, started after the store is seeded (Playwright's sync API holds the loop)."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


@pytest.mark.parametrize("screen", sorted(SCREENS))
@pytest.mark.parametrize(("name", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_the_page_has_no_critical_or_serious_violation(
    browser: Any, base_url: str, axe_source: str, name: str, path: str, screen: str
) -> None:
    page, _ = open_page(browser, base_url + path, bypass_csp=True, **SCREENS[screen])
    try:
        page.wait_for_function(
            "[...document.querySelectorAll('time[datetime]')].every((t) => t.dataset.local)",
            timeout=5_000,
        )
        page.add_script_tag(content=axe_source)
        violations = page.evaluate(RUN_AXE)
    finally:
        page.close()
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    report = "\n".join(f"{v['impact']} {v['id']}: {v['help']}\n  {v['nodes']}" for v in blocking)
    assert not blocking, f"{path} ({screen}):\n{report}"

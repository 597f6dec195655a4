"""Records in a notebook, in a browser: their ``_repr_html_`` rendered by Debian's Chromium.

The HTML itself is checked in :mod:`tests.records.test_display`, over the same records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chachaml.records.runs import Runs
from tests.support.browser import chromium
from tests.support.display_seed import EVIL, Seeded, seeded_display


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_display(tmp_path_factory.mktemp("display")) as records:
        yield records


def test_the_notebook_html_renders_in_chromium_as_tables_and_an_svg(
    seeded: Seeded, tmp_path: Path
) -> None:
    client = seeded.client
    parts = [
        Runs(client.runs(experiment="mnist"))._repr_html_(),
        client.get_run(seeded.good)._repr_html_(),
        client.compare_runs([seeded.good, seeded.other])._repr_html_(),
        client.metric_history(seeded.good, "loss")._repr_html_(),
    ]
    page_file = tmp_path / "notebook.html"
    page_file.write_text(
        "<!doctype html><html><head><meta charset='utf-8'></head><body>"
        + "<hr>".join(parts)
        + "</body></html>",
        encoding="utf-8",
    )
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_file.as_uri())
        assert page.locator("div.chachaml").count() == 4
        assert page.locator("div.chachaml").nth(0).locator("tbody > tr").count() == 3
        assert page.locator("table").count() >= 4 and page.locator("script").count() == 0
        assert page.evaluate("window.pwned") is None
        assert page.get_by_text(EVIL, exact=True).count() >= 2  # shown as text, not run
        svg = page.locator("svg")
        assert svg.count() == 1 and svg.locator("polyline").count() == 1
        box = svg.bounding_box()
        assert box is not None and (box["width"], box["height"]) == (240, 48)
        points = svg.locator("polyline").evaluate("el => el.points.numberOfItems")
        assert points == 5
        assert errors == []
        page.close()

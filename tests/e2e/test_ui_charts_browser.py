"""The run page's charts in Chromium against a real ``chachaml serve``: hover tooltips, wheel
zoom with reset (and finer points fetched for the zoomed range), smoothing, NaN/inf marks,
live updates of a running run (from the event stream, polling only when it is refused), a
killed run's reason, overlays kept in the URL, and no console errors or CSP violations along
the way."""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from chachaml.records.runs import MetricChunk, NewRun
from chachaml.store import open_store
from tests.support.browser import SHOTS, chromium, goto, reload
from tests.support.mcp_seed import serving_seeded

LIVE, KILLED, LONG = "5" * 32, "6" * 32, "7" * 32
LONG_POINTS = 20_000
CSP_WATCH = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


def chunk(run_id: str, key: str, steps: Sequence[int], values: Sequence[float]) -> MetricChunk:
    n, now = len(steps), time.time()
    finite = [v for v in values if math.isfinite(v)]
    return MetricChunk(
        run_id=run_id,
        key=key,
        count=n,
        steps=struct.pack(f"<{n}q", *steps),
        values=struct.pack(f"<{n}d", *values),
        timestamps=struct.pack(f"<{n}d", *(now - 60 + i * 0.001 for i in range(n))),
        last_value=values[-1] if math.isfinite(values[-1]) else None,
        last_step=steps[-1],
        last_time=now,
        min_value=min(finite),
        max_value=max(finite),
    )


async def _seed(path: Path) -> str:
    url = f"sqlite:///{path / 'charts.db'}"
    store = await open_store(url)
    try:
        for rid, name, timeout in ((LIVE, "live", 3600.0), (KILLED, "crashed", 1.0)):
            await store.create_run(
                NewRun(id=rid, experiment="charts", name=name, created_by="ana",
                       started_at=time.time() - 120, heartbeat_timeout=timeout)
            )  # fmt: skip
        await store.create_run(
            NewRun(id=LONG, experiment="charts", name="long", created_by="ana",
                   started_at=time.time() - 120, heartbeat_timeout=3600.0)
        )  # fmt: skip
        noisy = [1 / (1 + i) + 0.05 * math.sin(i) for i in range(40)]
        await store.log_metrics(
            [
                chunk(LIVE, "acc", range(20), [0.5 + i / 50 for i in range(20)]),
                chunk(LIVE, "loss", range(40), noisy),
                chunk(LIVE, "odd", range(6), [1.0, math.nan, 2.0, math.inf, 3.0, 2.5]),
                chunk(LIVE, "one", [3], [0.25]),
                chunk(
                    LONG,
                    "loss",
                    range(LONG_POINTS),
                    [math.sin(i / 300) for i in range(LONG_POINTS)],
                ),
            ]
        )
        await store.end_run(LONG, "completed", None, time.time())
    finally:
        await store.close()
    return url


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_seeded(tmp_path_factory.mktemp("charts-browser"), _seed) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def until(page: Any, script: str, timeout: int = 5_000) -> Any:
    """Poll ``script`` in the page until it is truthy (Playwright's wait_for_function polls
    through eval, which the page's CSP refuses)."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        found = page.evaluate(script)
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} ms: {script}")
        page.wait_for_timeout(50)


class Opened:
    """A page with its console errors and CSP violations collected."""

    def __init__(self, browser: Any, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.add_init_script(CSP_WATCH)
        goto(self.page, url)

    def chart(self, key: str) -> str:
        """The id of the chart of ``key``, scrolled into view and drawn."""
        box = self.page.locator(f'.chart[data-key="{key}"]')
        box.scroll_into_view_if_needed()
        chart_id: str = box.get_attribute("id")
        until(
            self.page,
            f"document.getElementById('{chart_id}').dataset.rendered === '1'",
            timeout=10_000,
        )
        return chart_id

    def domain(self, chart_id: str) -> list[float]:
        found: list[float] = self.page.evaluate(
            f"ChachaCharts.views.get('{chart_id}').scale('x').domain().map(Number)"
        )
        return found

    def clean(self, shot: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
        assert self.page.evaluate("window.__csp") == []
        assert self.errors == []
        self.page.close()


def test_hovering_a_chart_shows_a_tooltip(browser: Any, base_url: str) -> None:
    opened = Opened(browser, f"{base_url}/runs/{LIVE}")
    chart_id = opened.chart("loss")
    canvas = opened.page.locator(f"#{chart_id} canvas")
    box = canvas.bounding_box()
    opened.page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    opened.page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
    tip = opened.page.locator("#vg-tooltip-element.visible")
    tip.wait_for(state="visible", timeout=5_000)
    text = tip.inner_text()
    assert "step" in text and "value" in text and "time" in text and "loss" in text
    label = opened.page.locator(f"#{chart_id} .chart-wrapper").get_attribute("aria-label")
    assert label.startswith("Line chart of loss, latest")
    assert opened.page.locator(f"#{chart_id} summary").get_attribute("aria-label") == (
        "chart actions for loss"
    )
    opened.clean("charts-tooltip")


def test_wheel_zoom_narrows_x_fetches_finer_points_and_reset_restores(
    browser: Any, base_url: str
) -> None:
    opened = Opened(browser, f"{base_url}/runs/{LONG}")
    page = opened.page
    chart_id = opened.chart("loss")
    full = opened.domain(chart_id)
    assert page.evaluate(f"ChachaCharts.state('{chart_id}').downsampled") is True
    box = page.locator(f"#{chart_id} canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    with page.expect_request(lambda r: "min_step=" in r.url, timeout=5_000) as finer:
        for _ in range(6):
            page.mouse.wheel(0, -300)
    assert "max_step=" in finer.value.url
    until(
        page,
        f"() => {{ const d = ChachaCharts.views.get('{chart_id}').scale('x').domain();"
        f" return d[1] - d[0] < {(full[1] - full[0]) * 0.8}; }}",
        timeout=5_000,
    )
    until(page, f"ChachaCharts.state('{chart_id}').zoomed === true", timeout=5_000)
    page.locator(f"#{chart_id}").locator("xpath=..").get_by_text("in view").wait_for(timeout=5_000)
    reset = page.locator(f'button.chart-reset[data-chart="{chart_id}"]')
    reset.click()
    until(
        page,
        f"() => {{ const d = ChachaCharts.views && ChachaCharts.views.get('{chart_id}');"
        f" if (!d) return false; const x = d.scale('x').domain().map(Number);"
        f" return x[0] === {full[0]} && x[1] === {full[1]}; }}",
        timeout=5_000,
    )
    reset.wait_for(state="hidden", timeout=5_000)  # hidden once the full series is redrawn
    opened.clean("charts-zoom")


def test_smoothing_draws_a_smoothed_line(browser: Any, base_url: str) -> None:
    opened = Opened(browser, f"{base_url}/runs/{LIVE}")
    page = opened.page
    chart_id = opened.chart("loss")
    before = page.evaluate(f"document.querySelector('#{chart_id} canvas').toDataURL()")
    page.locator("input[data-chart-smooth]").fill("0.9")
    until(
        page,
        f"() => {{ const v = ChachaCharts.views.get('{chart_id}');"
        " const rows = v.data('points'); return rows.length > 5 &&"
        " Math.abs(rows[10].smooth - rows[10].value) > 1e-6; }",
        timeout=5_000,
    )
    until(page, f"document.querySelector('#{chart_id}').dataset.rendered === '1'", timeout=5_000)
    after = page.evaluate(f"document.querySelector('#{chart_id} canvas').toDataURL()")
    assert after != before
    assert page.locator("#smooth-value").inner_text() == "0.90"
    page.locator("input[data-chart-smooth]").fill("0")  # the setting is kept per browser
    until(page, "ChachaCharts.settings.smoothing === 0", timeout=5_000)
    opened.clean("charts-smoothing")


def test_nan_inf_are_marked_and_one_point_is_a_value(browser: Any, base_url: str) -> None:
    opened = Opened(browser, f"{base_url}/runs/{LIVE}")
    page = opened.page
    chart_id = opened.chart("odd")
    assert page.evaluate(f"ChachaCharts.state('{chart_id}').bad") == 2
    assert page.evaluate(f"ChachaCharts.views.get('{chart_id}').data('bad').length") == 2
    assert "2 NaN/inf marked" in page.locator('figure[data-key="odd"]').inner_text()
    one = page.locator('figure[data-key="one"]')
    assert one.locator(".chart").count() == 0 and "0.25" in one.inner_text()
    page.locator("#metric-filter").fill("los")
    page.locator('figure[data-key="acc"]').wait_for(state="hidden", timeout=5_000)
    assert page.locator('figure[data-key="loss"]').is_visible()
    opened.clean("charts-nan")


def twin_requests(page: Any, run_id: str) -> list[float]:
    """When the page asked for the run's JSON twin (``/api/runs/<id>``, not its series)."""
    seen: list[float] = []
    twin = f"/api/runs/{run_id}"
    page.on("request", lambda r: seen.append(time.monotonic()) if r.url.endswith(twin) else None)
    return seen


def test_a_running_run_page_shows_new_points_without_reloading(browser: Any, base_url: str) -> None:
    opened = Opened(browser, f"{base_url}/runs/{LIVE}")
    page = opened.page
    twins = twin_requests(page, LIVE)
    chart_id = opened.chart("acc")
    page.evaluate("window.__same_page = true")
    until(page, "ChachamlLive.status.open")  # following /api/events?run_id=...
    assert page.evaluate(f"ChachaCharts.state('{chart_id}').lastStep") == 19
    body = {"metrics": [{"key": "acc", "value": 0.99, "step": 20}, {"key": "fresh", "value": 1.0}]}
    answer = httpx.post(f"{base_url}/api/w/runs/{LIVE}/metrics", json=body, timeout=10)
    assert answer.status_code < 300, answer.text
    until(page, f"ChachaCharts.state('{chart_id}').lastStep === 20", timeout=5_000)
    assert page.evaluate(f"ChachaCharts.state('{chart_id}').points") == 21
    row = page.locator('#metric-summary tr[data-key="acc"] td[data-f="step"]')
    assert row.inner_text() == "20"
    page.locator('figure[data-key="fresh"]').wait_for(timeout=5_000)
    assert page.evaluate("window.__same_page") is True
    assert page.locator("#run-status .badge").inner_text() == "running"
    # the event brought the one read of the twin; nothing polls while the stream is healthy:
    # watched for longer than the fallback's poll interval (2 s), no request goes out
    asked = len(twins)
    assert asked == 1 and page.evaluate("ChachamlLive.status.refreshes") == 1
    page.wait_for_timeout(2_500)
    status = page.evaluate("ChachamlLive.status")
    assert len(twins) == asked and status["polls"] == 0 and status["mode"] == "stream"
    assert status["open"] and status["errors"] == 0 and status["streams"] == 1
    opened.clean("charts-live")


def test_a_refused_stream_falls_back_to_polling(browser: Any, base_url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.route("**/api/events?**", lambda route: route.abort())  # the stream is refused
        twins = twin_requests(page, LIVE)
        goto(page, f"{base_url}/runs/{LIVE}")
        until(page, "ChachamlLive.status.mode === 'poll'")
        body = {"metrics": [{"key": "polled", "value": 3.0}]}
        answer = httpx.post(f"{base_url}/api/w/runs/{LIVE}/metrics", json=body, timeout=10)
        assert answer.status_code < 300, answer.text
        page.locator('figure[data-key="polled"]').wait_for(timeout=10_000)  # found by a poll
        status = page.evaluate("ChachamlLive.status")
        assert status["polls"] >= 1 and len(twins) >= 2 and status["open"] is False
    finally:
        page.close()


def test_a_killed_run_says_why(browser: Any, base_url: str) -> None:
    opened = Opened(browser, f"{base_url}/runs/{KILLED}")
    reason = opened.page.locator("#run-killed")
    assert reason.is_visible()
    text = reason.inner_text()
    assert text.startswith("Killed: heartbeat lost at ") and "last heartbeat" in text
    assert opened.page.locator("#run-status .badge").inner_text() == "killed"
    opened.clean("charts-killed")


def test_metrics_share_a_chart_and_the_x_axis_switches_to_time(browser: Any, base_url: str) -> None:
    opened = Opened(browser, f"{base_url}/runs/{LIVE}")
    page = opened.page
    chart_id = opened.chart("loss")
    page.locator(f'input.chart-add[data-chart="{chart_id}"]').fill("acc")
    page.locator(f'input.chart-add[data-chart="{chart_id}"]').dispatch_event("change")
    until(
        page,
        f"ChachaCharts.state('{chart_id}').series.join() === 'loss,acc'"
        f" && ChachaCharts.state('{chart_id}').points > 40",
        timeout=5_000,
    )
    page.locator('button.chart-series-remove[data-key="acc"]').wait_for(timeout=5_000)
    assert "overlay.loss=acc" in page.url
    page.select_option("select[data-chart-x]", "wall")
    until(
        page,
        f"ChachaCharts.views.get('{chart_id}') &&"
        f" ChachaCharts.views.get('{chart_id}').scale('x').type === 'time'",
        timeout=5_000,
    )
    assert "x=wall" in page.url
    reload(page)
    assert page.locator("select[data-chart-x]").input_value() == "wall"
    chart_id = opened.chart("loss")  # the reload draws the same overlay
    assert page.evaluate(f"ChachaCharts.state('{chart_id}').series.join()") == "loss,acc"
    page.select_option("select[data-chart-x]", "step")  # the choice is kept per browser
    until(page, "ChachaCharts.settings.x === 'step'", timeout=5_000)
    opened.clean("charts-overlay")


def test_a_shared_link_draws_its_overlays_and_removing_one_updates_it(
    browser: Any, base_url: str
) -> None:
    link = f"{base_url}/runs/{LIVE}?overlay.loss=acc&overlay.loss=no-such-metric&x=step"
    opened = Opened(browser, link)
    page = opened.page
    chart_id = opened.chart("loss")
    until(page, f"ChachaCharts.state('{chart_id}').series.join() === 'loss,acc'", timeout=5_000)
    assert page.evaluate(f"ChachaCharts.views.get('{chart_id}').data('points').length") > 40
    chip = page.locator(f'button.chart-series-remove[data-chart="{chart_id}"]')
    keys = chip.evaluate_all("chips => chips.map((c) => c.dataset.key)")
    assert keys == ["acc"]  # the unknown key is left out
    assert opened.chart("acc") != chart_id  # acc keeps its own chart as well
    chip.click()
    until(page, f"ChachaCharts.state('{chart_id}').series.join() === 'loss'", timeout=5_000)
    assert "overlay.loss" not in page.url and "x=step" in page.url
    reload(page)
    chart_id = opened.chart("loss")
    assert page.evaluate(f"ChachaCharts.state('{chart_id}').series.join()") == "loss"
    opened.clean("charts-overlay-link")

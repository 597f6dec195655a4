"""The Compare, Registry and Pipelines pages in a real browser (issue 18): the legend names
runs in full in their table colours, the best value is marked, identical params hide, the
picker adds a run, production asks for confirmation in the page, DAG nodes are links, a
running pipeline's pages update in place from the event stream as its steps move, and the new
charts draw without a console error."""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chachaml.records.pipelines import PIPELINE_TAG, NewPipeline, NewPipelineStep
from chachaml.records.runs import MetricChunk, NewRun
from chachaml.store import open_store
from chachaml.store.protocol import Store
from chachaml.tools import pipelines as pipeline_ops
from tests.support.browser import chromium, navigation, reload, visit
from tests.support.mcp_seed import MID, NEW, OLD, seed, serving_seeded

LONG_ID = "5" * 32
LONG_NAME = "resnet50-lr0.003-batch256-cosine-warmup5-label-smoothing0.1-seed42"
PID, PRUN, STEP_RUN = "7" * 32, "8" * 32, "6" * 32
LIVE_PID, LIVE_RUN, PREP_RUN, FIT_RUN = "e" * 32, "f" * 32, "1" * 32, "2" * 32
T0 = 1_745_000_000.0


def _one(run_id: str, key: str, value: float) -> MetricChunk:
    return MetricChunk(
        run_id=run_id, key=key, count=1, steps=struct.pack("<q", 0),
        values=struct.pack("<d", value), timestamps=struct.pack("<d", T0), last_value=value,
        last_step=0, last_time=T0, min_value=value, max_value=value,
    )  # fmt: skip


async def _seed(path: Path) -> str:
    url = f"sqlite:///{path / 'pages.db'}"
    store = await open_store(url)
    try:
        await seed(store, path / "artifacts")
        await store.create_run(
            NewRun(id=LONG_ID, experiment="mnist", name=LONG_NAME, created_by="ana",
                   started_at=T0, heartbeat_timeout=60.0)
        )  # fmt: skip
        await store.log_params(LONG_ID, {"lr": 0.003, "depth": 4})
        await store.log_metrics([_one(LONG_ID, "acc", 0.85), _one(LONG_ID, "loss", 0.45)])
        await store.end_run(LONG_ID, "completed", None, T0 + 60)
        await _pipeline(store)
        await _live_pipeline(store)
    finally:
        await store.close()
    return url


async def _pipeline(store: Store) -> None:
    """A killed two-step pipeline: its first step ran on ``STEP_RUN``, the second never."""
    first = "load-the-raw-shards-from-object-storage"
    tags = {PIPELINE_TAG: PID}
    await store.create_run(
        NewRun(id=PRUN, experiment="etl", name="etl", created_by="ana", started_at=T0,
               heartbeat_timeout=60.0, tags=tags)
    )  # fmt: skip
    steps = [NewPipelineStep(name=first), NewPipelineStep(name="fit", depends_on=[first])]
    await pipeline_ops.create_pipeline(
        store,
        NewPipeline(id=PID, name="etl", run_id=PRUN, created_by="ana", started_at=T0,
                    max_parallel=1, steps=steps),
    )  # fmt: skip
    step_tags = {**tags, "chachaml.step": first, "chachaml.attempt": "1"}
    await store.create_run(
        NewRun(id=STEP_RUN, experiment="etl", name=first, created_by="ana", started_at=T0 + 1,
               heartbeat_timeout=60.0, parent_id=PRUN, tags=step_tags)
    )  # fmt: skip
    await pipeline_ops.start_step(store, PID, first, STEP_RUN, 1, T0 + 1)
    await store.end_run(STEP_RUN, "completed", None, T0 + 5)
    await pipeline_ops.end_step(store, PID, first, "completed", T0 + 5)
    await pipeline_ops.end_pipeline(store, PID, "killed", "interrupted", T0 + 6)
    await store.end_run(PRUN, "killed", "interrupted", T0 + 6)


async def _live_pipeline(store: Store) -> None:
    """A running pipeline (its run's heartbeat is fresh): "prep" running, "fit" pending."""
    now, tags = time.time(), {PIPELINE_TAG: LIVE_PID}
    await store.create_run(
        NewRun(id=LIVE_RUN, experiment="etl", name="etl-live", created_by="ana",
               started_at=now, heartbeat_timeout=3600.0, tags=tags)
    )  # fmt: skip
    steps = [NewPipelineStep(name="prep"), NewPipelineStep(name="fit", depends_on=["prep"])]
    await pipeline_ops.create_pipeline(
        store,
        NewPipeline(id=LIVE_PID, name="etl-live", run_id=LIVE_RUN, created_by="ana",
                    started_at=now, max_parallel=1, steps=steps),
    )  # fmt: skip
    for rid, step in ((PREP_RUN, "prep"), (FIT_RUN, "fit")):
        step_tags = {**tags, "chachaml.step": step, "chachaml.attempt": "1"}
        await store.create_run(
            NewRun(id=rid, experiment="etl", name=step, created_by="ana", started_at=now,
                   heartbeat_timeout=3600.0, parent_id=LIVE_RUN, tags=step_tags)
        )  # fmt: skip
    await pipeline_ops.start_step(store, LIVE_PID, "prep", PREP_RUN, 1, now)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_seeded(tmp_path_factory.mktemp("pages-browser"), _seed) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _charts_drawn(page: Any) -> None:
    charts = page.locator(".chart")
    for i in range(charts.count()):
        chart = charts.nth(i)
        page.wait_for_function(
            "el => el.dataset.rendered", arg=chart.element_handle(), timeout=10_000
        )
        assert chart.get_attribute("data-rendered") == "1", chart.inner_text()


def test_compare_of_three_runs_names_them_in_full_and_marks_the_best(
    browser: Any, base_url: str
) -> None:
    page, errors = visit(browser, f"{base_url}/compare?ids={OLD},{MID},{LONG_ID}", "compare-3")
    try:
        legend = page.locator(".run-legend")
        for name in ("baseline", "wider", LONG_NAME):
            assert name in legend.inner_text()
        item = legend.locator("li").nth(2)
        assert item.locator("a").inner_text() == LONG_NAME and item.is_visible()
        swatch = item.locator(".swatch").evaluate("el => getComputedStyle(el).backgroundColor")
        head = page.locator("th.run-head").nth(2)
        assert head.evaluate("el => getComputedStyle(el).borderTopColor") == swatch
        # the second colour of Vega's tableau10: "resnet..." sorts between baseline and wider
        assert swatch == "rgb(245, 133, 24)"
        acc = page.locator("tr.metric-row", has=page.locator("th", has_text="acc"))
        assert acc.locator("td.best").inner_text().startswith("0.92")
        loss = page.locator("tr.metric-row", has=page.locator("th", has_text="loss"))
        assert loss.locator("td.best").inner_text().startswith("0.3")  # lower is better
        loss.locator("button.direction-toggle").click()
        assert loss.locator("td.best").inner_text().startswith("0.6")
        assert "higher is better" in loss.locator("button.direction-toggle").inner_text()
        assert "flip=loss" in page.url  # a reload or a shared link keeps the choice
        _charts_drawn(page)
        assert page.locator("#parallel canvas, #parallel svg").count() >= 1
        assert page.locator("#scatter canvas, #scatter svg").count() >= 1
        assert errors == []
    finally:
        page.close()


def test_hide_identical_params(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/compare?ids={MID},{NEW}", "compare-hide")
    try:
        shared = page.locator("tr.same", has=page.locator("th", has_text="lr"))
        differing = page.locator("tr.differs", has=page.locator("th", has_text="depth"))
        assert shared.is_visible() and differing.is_visible()
        page.locator("#hide-same").check()
        shared.wait_for(state="hidden", timeout=5_000)
        assert differing.is_visible() and "same=hide" in page.url
        reload(page)  # the URL keeps the choice
        assert page.locator("#hide-same").is_checked() and not shared.is_visible()
        assert errors == []
    finally:
        page.close()


def test_picking_a_run_in_the_picker_adds_it(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/compare?ids={OLD}", "compare-picker")
    try:
        assert "Pick 2 to 10 runs" in page.inner_text("main")
        page.get_by_label("find runs to add").fill("wider")
        with navigation(page):
            page.get_by_role("button", name="Find").click()
        with navigation(page):
            page.get_by_role("link", name="add wider to the comparison").click()
        assert re.search(f"ids={OLD}(%2C|,){MID}", page.url)
        assert page.locator("th.run-head").count() == 2
        assert "wider" in page.locator("th.run-head").nth(1).inner_text()
        _charts_drawn(page)
        assert errors == []
    finally:
        page.close()


def _stages(page: Any, base_url: str) -> dict[int, str]:
    data = page.request.get(f"{base_url}/api/models/digits").json()
    return {v["version"]: v["stage"] for v in data["model"]["versions"]}


def test_promoting_to_production_needs_the_confirm_step(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/models/digits", "model-promote")
    try:
        form = page.locator("#promote-form")
        form.locator("select[name=version]").select_option("1")
        form.locator("select[name=stage]").select_option("production")
        form.get_by_role("button", name="Promote", exact=True).click()
        confirm = page.get_by_role("button", name="Confirm promote to production")
        confirm.wait_for(state="visible", timeout=5_000)
        assert "v2 leaves production" in page.locator("#promote-confirm").inner_text()
        assert _stages(page, base_url)[1] == "staging"  # nothing sent yet
        page.get_by_role("button", name="Cancel").click()
        assert not confirm.is_visible() and _stages(page, base_url)[1] == "staging"
        form.get_by_role("button", name="Promote", exact=True).click()
        with navigation(page):
            confirm.click()
        assert _stages(page, base_url) == {1: "production", 2: "archived"}
        history = page.locator("table").last.inner_text()
        assert "staging → production" in history
        assert errors == []  # no window.confirm dialog either
    finally:
        page.close()


def test_a_pipeline_node_is_a_link_to_its_run(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/pipelines/{PID}", "pipeline-links")
    try:
        node = page.locator(f'svg.pipeline-graph a[href="/runs/{STEP_RUN}"]')
        assert node.count() == 1
        assert "load-the-raw-shards-from-object-storage" in node.locator("title").text_content()
        assert page.locator("svg.pipeline-graph line[marker-end]").count() == 1
        assert "not run (pipeline killed)" in page.inner_text("main")
        with navigation(page):
            node.locator("rect").click()
        assert page.url.endswith(f"/runs/{STEP_RUN}")
        assert errors == []
    finally:
        page.close()


def until(page: Any, script: str, timeout: float = 10.0) -> Any:
    """Poll ``script`` in the page until truthy (the CSP refuses wait_for_function's eval)."""
    deadline = time.monotonic() + timeout
    while not (found := page.evaluate(script)):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {script}"
        page.wait_for_timeout(50)
    return found


def _write(base_url: str, path: str, body: dict[str, Any]) -> None:
    answer = httpx.post(f"{base_url}/api/w/pipelines/{LIVE_PID}/{path}", json=body, timeout=10)
    assert answer.status_code < 300, answer.text


NODE = "document.querySelector('svg.pipeline-graph g.node[data-step=\"{}\"]')"
ROW = "document.querySelector('#pipelines-table tr[data-pipeline=\"" + LIVE_PID + "\"]')"


def test_a_running_pipeline_updates_in_place_as_its_steps_move(browser: Any, base_url: str) -> None:
    detail, detail_errors = visit(browser, f"{base_url}/pipelines/{LIVE_PID}", "pipeline-live")
    listing, list_errors = visit(browser, f"{base_url}/pipelines", "pipelines-live")
    try:
        for page in (detail, listing):
            assert page.locator("#pipelines-live").is_visible()
            page.evaluate("window.__same_page = true")
            until(page, "ChachamlLive.status.open")  # following /api/events
        assert "1 running" in listing.locator(f'tr[data-pipeline="{LIVE_PID}"]').inner_text()
        prep = detail.locator('svg.pipeline-graph a:has(g[data-step="prep"])')
        prep.focus()  # a focused node keeps its focus through the updates
        fit_link = detail.locator('svg.pipeline-graph a:has(g[data-step="fit"])')
        assert fit_link.get_attribute("href") == "#step-2"

        now = time.time()
        _write(base_url, "steps/end", {"step": "prep", "status": "completed", "ended_at": now})
        _write(base_url, "steps/start",
               {"step": "fit", "run_id": FIT_RUN, "attempt": 1, "started_at": now})  # fmt: skip
        until(detail, NODE.format("prep") + ".classList.contains('status-completed')")
        until(detail, NODE.format("fit") + ".classList.contains('status-running')")
        assert fit_link.get_attribute("href") == f"/runs/{FIT_RUN}"
        assert fit_link.get_attribute("aria-label") == "step fit: running"
        assert "running" in fit_link.locator(".step-status").text_content()
        row = detail.locator('#pipeline-steps tr[data-step="fit"]')
        assert row.locator('td[data-col="status"]').inner_text() == "running"
        assert row.locator('td[data-col="attempts"] a').get_attribute("href") == f"/runs/{FIT_RUN}"
        assert row.locator('td[data-col="run"]').inner_text() == FIT_RUN[:8]
        took = detail.locator('#pipeline-steps tr[data-step="prep"] td[data-col="duration"]')
        assert took.inner_text().endswith("s") and "so far" not in took.inner_text()
        assert detail.evaluate("document.activeElement.querySelector('g').dataset.step") == "prep"
        until(listing, ROW + ".innerText.includes('1 completed')")
        assert "1 running" in listing.locator(f'tr[data-pipeline="{LIVE_PID}"]').inner_text()

        now = time.time()
        _write(base_url, "steps/end", {"step": "fit", "status": "completed", "ended_at": now})
        _write(base_url, "end", {"status": "completed", "ended_at": now})
        # the pipeline ended: its page stops following; the list follows on (new pipelines)
        detail.locator("#pipelines-live").wait_for(state="hidden", timeout=10_000)
        assert detail.evaluate("ChachamlLive.status.mode") == "off"
        assert "as pipelines start" in listing.locator("#pipelines-live").inner_text()
        for page in (detail, listing):  # every update came from a step's event, none by polling
            assert page.evaluate("window.__same_page") is True
            assert page.evaluate("ChachamlLive.status.polls") == 0
            assert page.evaluate("ChachamlLive.status.errors") == 0
        assert detail.locator("#pipeline-status .badge").inner_text() == "completed"
        assert detail.locator("#pipeline-duration").is_visible()
        assert listing.locator(f'tr[data-pipeline="{LIVE_PID}"] .badge').first.inner_text() == (
            "completed"
        )
        assert "2 completed" in listing.locator(f'tr[data-pipeline="{LIVE_PID}"]').inner_text()
        assert detail_errors == [] and list_errors == []
    finally:
        detail.close()
        listing.close()


def test_the_experiment_page_sorts_and_charts(browser: Any, base_url: str) -> None:
    page, errors = visit(browser, f"{base_url}/experiments/mnist?metric=acc", "experiment")
    try:
        _charts_drawn(page)
        assert page.locator("#experiment-timeline canvas, #experiment-timeline svg").count() >= 1
        with navigation(page):
            page.locator("table.runs thead a", has_text="acc").click()
        first = page.locator("table.runs tbody tr").first.inner_text()
        assert "wider" in first and "of 4" in page.inner_text(".pager")
        assert errors == []
    finally:
        page.close()

"""The Runs table in a real browser (Chromium through Playwright, against ``chachaml serve``).

A param column is added from the picker and survives paging; a sweep's trials nest under it
and expand; two ticked runs open the comparison; a typo in the filter shows its error and
keeps the text; a run started elsewhere appears and a running run's row updates in place (from
the event stream) while the filter keeps what is typed; a browser signed in to a team-mode
server follows the stream with its session cookie.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chachaml.records.runs import MetricChunk, NewRun
from chachaml.server.tokens import create_token
from chachaml.store import ServerStore, Store, open_store
from tests.support.browser import chromium, navigation, visit
from tests.support.fork_server import ServerFactory
from tests.support.mcp_seed import MID, OLD, seed, serving
from tests.support.serve_proc import ServeProcess

SWEEP, LIVE, FRESH, TEAM_RUN = "5" * 32, "4" * 32, "9" * 32, "3" * 32
TRIALS = [f"{i}" * 32 for i in (6, 7, 8)]


def chunk(run_id: str, key: str, value: float, step: int) -> MetricChunk:
    now = time.time()
    return MetricChunk(
        run_id=run_id, key=key, count=1, steps=struct.pack("<q", step),
        values=struct.pack("<d", value), timestamps=struct.pack("<d", now), last_value=value,
        last_step=step, last_time=now, min_value=value, max_value=value,
    )  # fmt: skip


async def _seed(path: Path) -> str:
    url = f"sqlite:///{path / 'runs.db'}"
    store = await open_store(url)
    try:
        await seed(store, path / "artifacts")
        t0 = time.time() - 600
        await store.create_run(
            NewRun(id=SWEEP, experiment="sweeps", name="lr sweep", created_by="bo",
                   started_at=t0, heartbeat_timeout=3600.0)
        )  # fmt: skip
        for i, trial in enumerate(TRIALS):
            await store.create_run(NewRun(id=trial, experiment="sweeps", name=f"trial-{i}",
                                          created_by="bo", started_at=t0 + 1 + i,
                                          parent_id=SWEEP, heartbeat_timeout=3600.0))  # fmt: skip
            await store.log_params(trial, {"lr": [0.3, 0.03, 0.003][i]})
            await store.end_run(trial, "completed", None, t0 + 10 + i)
        await store.end_run(SWEEP, "completed", None, t0 + 20)
        await store.create_run(NewRun(id=LIVE, experiment="mnist", name="live-one",
                                      created_by="bo", started_at=time.time(),
                                      heartbeat_timeout=3600.0))  # fmt: skip
        await store.log_params(LIVE, {"lr": 0.05})
        await store.log_metrics([chunk(LIVE, "acc", 0.25, 0)])
    finally:
        await store.close()
    return url


def in_thread(url: str, work: Callable[[ServerStore], Coroutine[Any, Any, None]]) -> None:
    """Write to the served store from a thread of its own (Playwright holds this one's loop)."""

    async def body() -> None:
        store = await open_store(url)
        try:
            await work(store)
        finally:
            await store.close()

    failures: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(body)
        except BaseException as exc:  # reported in the test's thread
            failures.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=30)
    assert not failures, failures


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    path = tmp_path_factory.mktemp("runs-browser")
    url = anyio.run(_seed, path)
    with serving(url, path / "artifacts") as mcp_url:
        yield mcp_url.removesuffix("/mcp"), url


@pytest.fixture(scope="module")
def browser(served: tuple[str, str]) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def headers(page: Any) -> list[str]:
    return [t.strip(" ▲▼") for t in page.locator("table.runs thead th").all_inner_texts()]


def test_a_param_column_is_added_from_the_picker_and_survives_paging(
    browser: Any, served: tuple[str, str]
) -> None:
    base, _ = served
    page, errors = visit(browser, f"{base}/runs?limit=2&nest=0", "runs-columns")
    try:
        assert "params.lr" not in headers(page)
        page.locator("#col-picker summary").click()
        choice = page.locator('#col-picker .col-more input[value="params.lr"]')
        choice.wait_for(state="visible", timeout=10_000)  # listed from /api/runs/keys
        choice.check()
        with navigation(page):
            page.locator("#col-form button[type=submit]").click()
        assert "params.lr" in headers(page) and "cols=" in page.url
        first = page.locator('table.runs tbody td[data-col="params.lr"]').all_inner_texts()
        with navigation(page):
            page.locator('.pager a[rel="next"]').click()
        assert "params.lr" in headers(page) and "offset=2" in page.url
        second = page.locator('table.runs tbody td[data-col="params.lr"]').all_inner_texts()
        assert len(first) == len(second) == 2 and first != second
        assert "of 9 runs" in page.inner_text("main")
        assert errors == []
    finally:
        page.close()


def test_child_runs_nest_under_their_parent_and_expand(
    browser: Any, served: tuple[str, str]
) -> None:
    base, _ = served
    page, errors = visit(browser, f"{base}/runs", "runs-nested")
    try:
        kids = page.locator(f'tr[data-parent="{SWEEP}"]')
        assert kids.count() == 3 and not kids.first.is_visible()
        toggle = page.locator(f'a.kids[data-toggle="{SWEEP}"]')
        assert toggle.inner_text().strip() == "▸ 3"
        toggle.click()
        kids.nth(2).wait_for(state="visible", timeout=5_000)
        assert toggle.get_attribute("aria-expanded") == "true"
        assert "trial-0" in page.locator("table.runs").inner_text()
        assert page.url.removeprefix(base) == "/runs"  # expanded in place, no navigation
        toggle.click()
        kids.first.wait_for(state="hidden", timeout=5_000)
        assert errors == []
    finally:
        page.close()


def test_ticking_two_runs_and_pressing_compare_opens_the_comparison(
    browser: Any, served: tuple[str, str]
) -> None:
    base, _ = served
    page, errors = visit(browser, f"{base}/runs", "runs-compare")
    try:
        page.locator(f'input[name=ids][value="{OLD}"]').check()
        page.locator("#compare-button").click()
        note = page.locator(".table-actions .muted")
        assert "(1 ticked)" in note.inner_text()  # one is not enough: stays on the page
        page.locator(f'input[name=ids][value="{MID}"]').check()
        with navigation(page):
            page.locator("#compare-button").click()
        assert "/compare?" in page.url and OLD in page.url and MID in page.url
        body = page.inner_text("main")
        assert "baseline" in body and "wider" in body
        assert errors == []
    finally:
        page.close()


def test_a_typo_in_the_filter_shows_the_error_and_keeps_the_text(
    browser: Any, served: tuple[str, str]
) -> None:
    base, _ = served
    page, errors = visit(browser, f"{base}/runs", "runs-filter-typo")
    try:
        box = page.locator("#runs-q")
        box.fill("acc>>0.9")
        with navigation(page):
            box.press("Enter")
        error = page.locator("#runs-q-error")
        assert error.is_visible() and "at character 5" in error.inner_text()
        assert page.locator("#runs-q").input_value() == "acc>>0.9"
        assert page.locator("#runs-q").get_attribute("aria-invalid") == "true"
        assert "Error 422" not in page.inner_text("body")
        errors[:] = [e for e in errors if "422" not in e]  # the page itself answers 422
        box = page.locator("#runs-q")
        box.fill("metrics.acc > 0.9")
        with navigation(page):
            box.press("Enter")
        assert "svm" in page.inner_text("main") and "baseline" not in page.inner_text("main")
        assert errors == []
    finally:
        page.close()


def test_a_running_row_updates_in_place_while_the_filter_keeps_its_text(
    browser: Any, served: tuple[str, str]
) -> None:
    base, store_url = served
    page, errors = visit(browser, f"{base}/runs", "runs-live")
    twins: list[str] = []
    page.on("request", lambda r: twins.append(r.url) if "/api/runs?" in r.url
            or r.url.endswith("/api/runs") else None)  # fmt: skip
    try:
        row = page.locator(f'tr[data-run="{LIVE}"]')
        assert row.locator('td[data-col="status"]').inner_text() == "running"
        assert row.locator('td[data-col="metrics.acc"]').inner_text() == "0.25"
        assert page.locator("#runs-live").is_visible()
        page.evaluate("window.notReloaded = true")
        page.locator("#runs-q").fill("metrics.acc > 0.")  # typed, not sent
        page.wait_for_function("ChachamlLive.status.open", timeout=10_000)
        page.set_viewport_size({"width": 1280, "height": 400})  # scrolled down to the rows,
        # without Chromium's scroll anchoring (Safari has none): runs.js keeps them in view
        page.evaluate("document.documentElement.style.overflowAnchor = 'none'")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        assert page.evaluate("window.scrollY") > 0
        seen_at = row.bounding_box()["y"]

        async def start(store: Store) -> None:  # another process starts a run
            await store.create_run(NewRun(id=FRESH, experiment="mnist", name="fresh-one",
                                          created_by="cy", started_at=time.time(),
                                          heartbeat_timeout=3600.0))  # fmt: skip

        in_thread(store_url, start)
        fresh = page.locator(f'#runs-table tbody tr[data-run="{FRESH}"]')
        fresh.wait_for(timeout=10_000)  # it appears, newest first, without a reload
        assert page.locator("#runs-table tbody tr").first.get_attribute("data-run") == FRESH
        assert fresh.locator('td[data-col="status"]').inner_text() == "running"
        assert fresh.locator("td.name a").get_attribute("href") == f"/runs/{FRESH}"
        assert fresh.locator("input[name=ids]").get_attribute("aria-label") == "select fresh-one"
        assert fresh.locator("td").count() == row.locator("td").count()
        assert fresh.locator('td[data-col="duration"]').get_attribute("data-since")
        assert abs(row.bounding_box()["y"] - seen_at) < 1  # what was in view stays in view
        assert page.evaluate("document.activeElement.id") == "runs-q"  # and focus stays put

        async def finish(store: Store) -> None:
            await store.log_metrics([chunk(LIVE, "acc", 0.77, 1)])
            await store.end_run(LIVE, "completed", None, time.time())

        in_thread(store_url, finish)
        page.wait_for_function(
            f"""() => {{
                const row = document.querySelector('tr[data-run="{LIVE}"]');
                return row.querySelector('td[data-col="metrics.acc"]').textContent === "0.77"
                    && row.querySelector('td[data-col="status"]').innerText.trim() === "completed";
            }}""",
            timeout=15_000,
        )
        assert page.evaluate("window.notReloaded") is True
        assert page.locator("#runs-q").input_value() == "metrics.acc > 0."
        assert row.locator(".badge").get_attribute("class") == "badge status-completed"
        assert row.locator('td[data-col="duration"]').get_attribute("data-since") is None
        status = page.evaluate("ChachamlLive.status")
        # every read of the twin answered an event: none was a poll
        assert status["mode"] == "stream" and status["polls"] == 0 and status["errors"] == 0
        assert 2 <= len(twins) == status["refreshes"] <= status["relevant"]
        assert "as runs start" in page.locator("#runs-live").inner_text()
        assert errors == []
    finally:
        page.close()


def test_a_signed_in_browser_follows_the_stream_in_team_mode(
    browser: Any, tmp_path: Path, server_factory: ServerFactory
) -> None:
    url = f"sqlite:///{tmp_path / 'team.db'}"

    made: list[str] = []

    async def setup(store: ServerStore) -> None:  # a running run and a token: team mode
        await store.create_run(NewRun(id=TEAM_RUN, experiment="mnist", name="team-live",
                                      created_by="ada", started_at=time.time(),
                                      heartbeat_timeout=3600.0))  # fmt: skip
        made.append((await create_token(store, "ada", "read"))[0])

    in_thread(url, setup)
    token = made[0]
    server = ServeProcess(url, tmp_path / "artifacts", {}, server_factory)
    server.start()
    try:
        base = server.url
        assert httpx.get(f"{base}/api/events", timeout=10).status_code == 401  # team mode
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{base}/runs/{TEAM_RUN}")  # no session yet: the sign-in page
            page.locator("#token").fill(token)
            with navigation(page):
                page.locator("#token").press("Enter")
            assert page.url == f"{base}/runs/{TEAM_RUN}"
            # the EventSource carries the HttpOnly session cookie through the access layer
            page.wait_for_function("ChachamlLive.status.open", timeout=10_000)

            async def log(store: Store) -> None:
                await store.log_metrics([chunk(TEAM_RUN, "loss", 0.5, 0)])

            in_thread(url, log)
            page.locator('#metric-summary tr[data-key="loss"]').wait_for(timeout=10_000)
            status = page.evaluate("ChachamlLive.status")
            assert status["mode"] == "stream" and status["polls"] == 0 and status["errors"] == 0
        finally:
            context.close()
    finally:
        server.stop()

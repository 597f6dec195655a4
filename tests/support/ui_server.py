"""A seeded ``chachaml serve`` with every kind of UI page, for the whole-UI browser tests.

The store of :mod:`tests.support.mcp_seed` plus its alerts, a run still running (heartbeat
timeout a day), a run with a long name and long unbroken values (what widens tables), a note
with TeX math, and a failed pipeline whose first step's name wraps in its DAG node. ``PAGES``
names one URL of every page the UI has.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from chachaml.records.pipelines import NewPipeline, NewPipelineStep
from chachaml.records.runs import NewRun
from chachaml.store import open_store
from chachaml.tools import pipelines as pipeline_ops
from tests.support.alerts_seed import seed_alerts
from tests.support.browser import goto
from tests.support.mcp_seed import MID, NEW, OLD, seed, serving

LIVE, WIDE = "5" * 32, "6" * 32
LIVE_NAME = "still-training"
WIDE_NAME = "resnet-" + "x" * 60
PIPELINE = "etl-2025-03-06"
# a step name its DAG node wraps over two lines, breaking a word mid-way (axe: label-in-name)
LONG_STEP = "preprocess_the_raw_shards_from_object_storage_and_decode_every_record"
PAGES = [
    ("overview", "/"),
    ("runs", "/runs"),
    ("run", f"/runs/{MID}"),
    ("run-live", f"/runs/{LIVE}"),
    ("run-wide", f"/runs/{WIDE}"),
    ("run-math", f"/runs/{OLD}"),
    ("artifacts", f"/runs/{MID}/artifacts"),
    ("experiments", "/experiments?metric=acc"),
    ("experiment", "/experiments/mnist?metric=acc"),
    ("runs-filtered", "/runs?q=metrics.acc+%3E+0.5+and+params.lr+%3D+0.01"),
    ("compare", f"/compare?ids={OLD},{MID},{NEW}"),
    ("models", "/models"),
    ("model", "/models/digits"),
    ("diff", "/diff/digits/1/2"),
    ("pipelines", "/pipelines"),
    ("pipeline", f"/pipelines/{PIPELINE}"),
    ("alerts", "/alerts"),
    ("chat", "/chat"),
    ("signin", "/signin"),
    ("not-found", "/no/such/page"),
]
# live pages (runs, run, pipelines) poll their JSON twin every few seconds and update in place;
# a hidden page does not poll, so what a check reads stays put
NO_LIVE_RELOAD = "Object.defineProperty(document, 'visibilityState', { get: () => 'hidden' });"


async def _seed(path: Path) -> str:
    url = f"sqlite:///{path / 'ui.db'}"
    store = await open_store(url)
    try:
        await seed(store, path / "artifacts")
        await seed_alerts(store)
        now = time.time()
        live = NewRun(
            id=LIVE,
            experiment="mnist",
            name=LIVE_NAME,
            created_by="bo",
            started_at=now - 300,
            heartbeat_timeout=86_400.0,
        )
        await store.create_run(live)
        await store.log_params(LIVE, {"lr": 0.003})
        wide = NewRun(
            id=WIDE,
            experiment="mnist",
            name=WIDE_NAME,
            created_by="ana",
            started_at=now - 7200,
            heartbeat_timeout=3600.0,
            tags={"source": "z" * 80},
        )
        await store.create_run(wide)
        await store.log_params(WIDE, {"data": "s3://bucket/" + "y" * 120, "note": "long " * 40})
        await store.end_run(WIDE, "completed", None, now - 3600)
        await store.set_note(OLD, "Loss $\\mathcal{L} = \\sum_i x_i^2$, lower is better.")
        steps = [
            NewPipelineStep(name=LONG_STEP),
            NewPipelineStep(name="train", depends_on=[LONG_STEP]),
        ]
        await pipeline_ops.create_pipeline(
            store,
            NewPipeline(
                id=PIPELINE,
                name="etl",
                run_id=NEW,
                created_by="ana",
                started_at=now - 600,
                max_parallel=1,
                steps=steps,
            ),
        )
        await pipeline_ops.start_step(store, PIPELINE, LONG_STEP, OLD, 1, now - 590)
        await pipeline_ops.end_step(store, PIPELINE, LONG_STEP, "completed", now - 500)
        await pipeline_ops.start_step(store, PIPELINE, "train", MID, 1, now - 490)
        await pipeline_ops.end_step(store, PIPELINE, "train", "failed", now - 400, "OOM")
        await pipeline_ops.end_pipeline(store, PIPELINE, "failed", "train failed", now - 400)
    finally:
        await store.close()
    return url


@contextmanager
def seeded_ui(path: Path) -> Iterator[str]:
    """``chachaml serve`` over a freshly seeded store under ``path``; yields its base URL."""
    url = anyio.run(_seed, path)
    with serving(url, path / "artifacts") as mcp_url:
        yield mcp_url.removesuffix("/mcp")


def open_page(browser: Any, url: str, **context: Any) -> tuple[Any, list[str]]:
    """``url`` in a new page (viewport, colour scheme, zone... as given), live reloads off.

    Returns the page and the console errors seen; close the page when done.
    """
    options = {"viewport": {"width": 1280, "height": 900}, **context}
    page = browser.new_page(**options)
    page.add_init_script(NO_LIVE_RELOAD)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    goto(page, url)
    charts = page.locator(".chart")
    for i in range(charts.count()):  # drawn lazily: scroll each into view first
        charts.nth(i).scroll_into_view_if_needed()
        charts.nth(i).locator("canvas, svg").first.wait_for(state="attached", timeout=10_000)
    page.evaluate("window.scrollTo(0, 0)")
    return page, errors

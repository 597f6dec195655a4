"""One run's page and its metric series (downsampled JSON for charts, every point as CSV).

The page lists every metric, grouped by ``prefix/``; the browser fetches a chart's points
only once it scrolls into view (``static/charts.js``), so a run with 200 metrics or a
1M-point metric renders as fast as one with none. A running run's page follows the run's
events (``/api/events``) and, on each change, reads its JSON twin and the series endpoint's
``after_step`` (``static/run.js``) until the run ends; it polls them if the stream fails.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.records.runs import Run
from chachaml.server.ui.artifacts import artifact_rows
from chachaml.server.ui.charts import DISPLAY_POINTS, metric_groups, series_points
from chachaml.server.ui.common import (
    SECURITY_HEADERS,
    choice_param,
    guarded,
    int_param,
    jsonable,
    path_param,
    store_of,
    twin,
)
from chachaml.server.ui.live import events_after
from chachaml.server.ui.markdown import note_html
from chachaml.tools import metrics as metric_ops
from chachaml.tools import runs as run_ops

STEP_LIMIT = 2**63 - 1
COMPARE_CHOICES = 20


def _ago(seconds: float) -> str:
    """A rough "3m 20s" for how long ago something was."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def liveness(run: Run, now: float) -> dict[str, Any]:
    """Elapsed time, and why a killed run reads killed (its heartbeat stopped, or it ended so)."""
    started = run.started_at.timestamp()
    elapsed = (run.ended_at.timestamp() if run.ended_at else now) - started
    reason = None
    if run.status == "killed":
        if run.ended_at is None and run.heartbeat_at is not None:
            lost = run.heartbeat_at.timestamp() + (run.heartbeat_timeout or 0.0)
            reason = (
                f"heartbeat lost at {_when(datetime.fromtimestamp(lost, run.heartbeat_at.tzinfo))}"
                f", last heartbeat {_ago(now - run.heartbeat_at.timestamp())} ago"
                f" (timeout {_ago(run.heartbeat_timeout or 0.0)}): the process stopped"
                " without ending the run"
            )
        else:
            reason = "ended as killed" + (f": {run.error}" if run.error else "")
    return {
        "started_ts": started,
        "elapsed_seconds": elapsed,
        "live": run.status == "running",
        "killed_reason": reason,
    }


def metric_rows(run: Run) -> list[dict[str, Any]]:
    """Every metric's summary, with the URLs of its series and CSV."""
    base = f"/api/runs/{run.id}/metrics/"
    return [
        {
            **m.model_dump(mode="json"),
            "series_url": base + quote(key, safe=""),
            "csv_url": base + quote(key, safe="") + "?format=csv",
        }
        for key, m in sorted(run.metric_summaries.items())
    ]


async def run_page(request: Request) -> dict[str, Any]:
    """One run: params, latest metrics, every metric's chart, tags, note, datasets, artifacts."""
    store = store_of(request)
    run = await run_ops.get_run(store, path_param(request, "run_id"))
    children = await run_ops.child_runs(store, run.id) if run.children else []
    others = await run_ops.list_runs(store, experiment=run.experiment, limit=COMPARE_CHOICES + 1)
    metrics = metric_rows(run)
    by_key = {m["key"]: m for m in metrics}
    live = liveness(run, time.time())
    return {
        "run": {**run.model_dump(mode="json"), "duration_seconds": run.duration_seconds},
        **live,
        "events_after": await events_after(request) if live["live"] else "",
        "note_html": note_html(run.note),
        "metrics": metrics,
        "metric_groups": [
            {"prefix": g["prefix"], "metrics": [by_key[k] for k in g["keys"]]}
            for g in metric_groups(run.metric_summaries)
        ],
        "children": [
            {"id": c.id, "name": c.name, "status": c.status, "started_at": c.started_at}
            for c in children
        ],
        "compare_choices": [
            {"id": r.id, "name": r.name, "status": r.status} for r in others if r.id != run.id
        ][:COMPARE_CHOICES],
        "artifacts": artifact_rows(run.id, run.artifacts),
    }


def _step_param(request: Request, name: str) -> int | None:
    if not request.query_params.get(name, "").strip():
        return None
    return int_param(request, name, 0, -STEP_LIMIT, STEP_LIMIT)


@guarded
async def metric_series(request: Request) -> Response:
    """One metric of a run: downsampled points of a step range as JSON, or every point as CSV.

    ``min_step``/``max_step`` narrow the range the ``points`` budget is spent on (a zoomed
    chart); ``after_step`` returns only newer points (a live chart).
    """
    store = store_of(request)
    run_id, key = path_param(request, "run_id"), path_param(request, "key")
    if choice_param(request, "format", ("json", "csv"), "json") == "csv":
        series = await metric_ops.metric_history(store, run_id, key)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["step", "value", "timestamp"])
        writer.writerows(zip(series.steps, series.values, series.timestamps, strict=True))
        name = f"{series.run_id}-{series.key}.csv".replace('"', "")
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
        )
    count = int_param(request, "points", DISPLAY_POINTS, 2, 100_000)
    lo, hi = _step_param(request, "min_step"), _step_param(request, "max_step")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidInput(f"min_step ({lo}) must not be greater than max_step ({hi})")
    after = _step_param(request, "after_step")
    if after is not None and after < STEP_LIMIT:
        lo = after + 1 if lo is None else max(lo, after + 1)
    elif after is not None:  # nothing comes after the last step there is
        lo, hi = STEP_LIMIT, STEP_LIMIT - 1
    points = await metric_ops.metric_outline(
        store, run_id, key, min_step=lo, max_step=hi, points=count
    )
    return JSONResponse(jsonable(series_points(points, count)), headers=SECURITY_HEADERS)


def routes() -> list[Route]:
    """The run page and its series endpoint."""
    return [
        Route("/api/runs/{run_id}/metrics/{key:path}", metric_series),
        *twin("/runs/{run_id}", run_page, "run.html"),
    ]

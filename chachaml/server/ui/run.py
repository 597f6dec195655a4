"""One run's page and its metric series (downsampled JSON for charts, every point as CSV)."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chachaml.server.ui.artifacts import artifact_rows
from chachaml.server.ui.charts import DISPLAY_POINTS, run_chart, series_points
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
from chachaml.server.ui.markdown import note_html
from chachaml.tools import runs as run_ops

MAX_CHARTS = 24


async def run_page(request: Request) -> dict[str, Any]:
    """One run: params, latest metrics, a chart per metric, tags, note, datasets, artifacts."""
    store = store_of(request)
    run = await run_ops.get_run(store, path_param(request, "run_id"))
    charts = []
    for key in sorted(run.metric_summaries)[:MAX_CHARTS]:
        points = series_points(await run_ops.metric_history(store, run.id, key))
        charts.append(
            {
                **{k: v for k, v in points.items() if k not in ("steps", "values")},
                "spec": run_chart(points),
            }
        )
    return {
        "run": {**run.model_dump(mode="json"), "duration_seconds": run.duration_seconds},
        "note_html": note_html(run.note),
        "charts": charts,
        "charts_cut": max(0, len(run.metric_summaries) - MAX_CHARTS),
        "artifacts": artifact_rows(run.id, run.artifacts),
    }


@guarded
async def metric_series(request: Request) -> Response:
    """One metric of a run: downsampled points as JSON, or every point as CSV."""
    series = await run_ops.metric_history(
        store_of(request), path_param(request, "run_id"), path_param(request, "key")
    )
    if choice_param(request, "format", ("json", "csv"), "json") == "csv":
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
    points = int_param(request, "points", DISPLAY_POINTS, 2, 100_000)
    return JSONResponse(jsonable(series_points(series, points)), headers=SECURITY_HEADERS)


def routes() -> list[Route]:
    """The run page and its series endpoint."""
    return [
        Route("/api/runs/{run_id}/metrics/{key:path}", metric_series),
        *twin("/runs/{run_id}", run_page, "run.html"),
    ]

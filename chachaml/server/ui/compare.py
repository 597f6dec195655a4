"""Compare: 2-10 runs side by side, params, latest metrics and overlaid curves."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.server.ui.charts import overlay_chart, series_points
from chachaml.server.ui.common import (
    list_param,
    store_of,
    twin,
)
from chachaml.server.ui.runs import run_row
from chachaml.tools import runs as run_ops

MAX_COMPARE_UI = 10


async def compare_page(request: Request) -> dict[str, Any]:
    """2-10 runs: params (differing ones flagged), latest metrics, overlaid curves."""
    ids = list(dict.fromkeys(list_param(request, "ids")))
    if not ids:
        return {"ids": [], "runs": [], "params": [], "metrics": [], "charts": []}
    if not 2 <= len(ids) <= MAX_COMPARE_UI:
        raise InvalidInput(f"compare takes 2 to {MAX_COMPARE_UI} run ids, got {len(ids)}")
    store = store_of(request)
    comparison = await run_ops.compare_runs(store, ids)
    labels = {r.id: f"{r.name or r.id[:8]} ({r.id[:6]})" for r in comparison.runs}
    charts = []
    for key in comparison.metrics:
        curves = []
        for rid in ids:
            if comparison.metrics[key].get(rid) is None:
                continue
            series = await run_ops.metric_history(store, rid, key)
            curves.append((labels[rid], series_points(series, 1000 // len(ids) * 2)))
        charts.append({"key": key, "spec": overlay_chart(key, curves)})
    return {
        "ids": ids,
        "runs": [{**run_row(r), "label": labels[r.id]} for r in comparison.runs],
        "params": [
            {
                "key": k,
                "cells": [by_run.get(r) for r in ids],
                "differs": k in comparison.differing_params,
            }
            for k, by_run in comparison.params.items()
        ],
        "metrics": [
            {"key": k, "cells": [by_run.get(r) for r in ids]}
            for k, by_run in comparison.metrics.items()
        ],
        "charts": charts,
    }


def routes() -> list[Route]:
    """The Compare page."""
    return [*twin("/compare", compare_page, "compare.html")]

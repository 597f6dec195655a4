"""Experiments (with the best value of a chosen metric) and one experiment's page.

The experiment page pages through all its runs with a total, sorts by any run field or
metric on the server, and charts a metric's latest value per run over start time with its
best so far. Links quote the name whole, so ``a/b#c?d`` reaches ``/experiments/{name:path}``.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.routing import Route

from chachaml.errors import NotFound
from chachaml.records.runs import RUN_ORDERS, RunQuery
from chachaml.server.mcp.render import metric_columns
from chachaml.server.ui.common import (
    choice_param,
    int_param,
    path_param,
    store_of,
    text_param,
    twin,
)
from chachaml.server.ui.figures import timeline_spec
from chachaml.server.ui.goals import better_direction
from chachaml.server.ui.runs import run_row
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops

PAGE_SIZES = (25, 50, 100)
CHART_RUNS = 1000  # the chart shows the metric of this many newest runs


def experiment_href(name: str) -> str:
    """The experiment's page: its name as one quoted path segment (``/``, ``#``, ``?`` too)."""
    return "/experiments/" + quote(name, safe="")


def _metric_choice(request: Request) -> tuple[str | None, str]:
    """The chosen metric and which way is best (guessed from its name unless given)."""
    metric = text_param(request, "metric")
    guess = better_direction(metric) if metric else "max"
    return metric, choice_param(request, "direction", ("max", "min"), guess)


async def experiments_page(request: Request) -> dict[str, Any]:
    """Every experiment: description, owner, run count, last activity, best of ``metric``."""
    store = store_of(request)
    metric, direction = _metric_choice(request)
    rows = []
    for exp in await experiment_ops.list_experiments(store):
        best = None
        if metric:
            found = await run_ops.best_run(
                store,
                metric,
                experiment=exp.name,
                direction=direction,  # type: ignore[arg-type]
            )
            best = None if found is None else {"run_id": found.run.id, "value": found.value}
        rows.append(
            {**exp.model_dump(mode="json"), "href": experiment_href(exp.name), "best": best}
        )
    return {"metric": metric, "direction": direction, "experiments": rows}


async def _timeline(name: str, request: Request, metric: str, direction: str) -> dict[str, Any]:
    """The chart of ``metric`` across the experiment's (newest ``CHART_RUNS``) runs."""
    runs = await run_ops.list_runs(store_of(request), experiment=name, limit=CHART_RUNS)
    points = [
        {"run": r.name or r.id[:8], "id": r.id, "started": r.started_at.isoformat(), "value": v}
        for r in reversed(runs)
        if isinstance(v := r.metrics.get(metric), float | int) and math.isfinite(v)
    ]
    return {
        "metric": metric,
        "direction": direction,
        "runs": len(points),
        "capped": len(runs) == CHART_RUNS,
        "spec": timeline_spec(metric, direction, points) if points else None,
    }


async def experiment_page(request: Request) -> dict[str, Any]:
    """One experiment: its runs sorted and paged with a total, its best run, a chart."""
    store = store_of(request)
    name = path_param(request, "name")
    found = [e for e in await experiment_ops.list_experiments(store) if e.name == name]
    if not found:
        raise NotFound(f"no experiment named {name!r}")
    metric, direction = _metric_choice(request)
    sort = text_param(request, "sort") or "started"
    sort_dir = choice_param(request, "dir", ("max", "min"), "max")
    limit = int_param(request, "limit", 50, 1, max(PAGE_SIZES))
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    by_metric = None if sort in RUN_ORDERS else sort
    runs = await run_ops.list_runs(
        store,
        experiment=name,
        limit=limit,
        offset=offset,
        order_by=sort if by_metric is None else "started",
        order_by_metric=by_metric,
        direction=sort_dir,  # type: ignore[arg-type]
    )
    total = await run_ops.count_runs(
        store, RunQuery(experiment=name, order_by_metric=by_metric, limit=None)
    )
    best = None
    if metric:
        won = await run_ops.best_run(store, metric, experiment=name, direction=direction)  # type: ignore[arg-type]
        best = None if won is None else won.model_dump(mode="json")
    keys = metric_columns([r.metrics for r in runs])
    if by_metric is not None and by_metric not in keys:
        keys = [by_metric, *keys]
    chart_metric = metric or (keys[0] if keys else None)
    chart_direction = direction if metric else better_direction(chart_metric or "")
    return {
        "experiment": {**found[0].model_dump(mode="json"), "href": experiment_href(name)},
        "metric": metric,
        "direction": direction,
        "best": best,
        "sort": sort,
        "dir": sort_dir,
        "limit": limit,
        "offset": offset,
        "total": total,
        "runs": [run_row(r) for r in runs],
        "metric_keys": keys,
        "run_orders": list(RUN_ORDERS),
        "chart": None
        if chart_metric is None
        else await _timeline(name, request, chart_metric, chart_direction),
    }


def routes() -> list[Route]:
    """The Experiments pages."""
    return [
        *twin("/experiments", experiments_page, "experiments.html"),
        *twin("/experiments/{name:path}", experiment_page, "experiment.html"),
    ]

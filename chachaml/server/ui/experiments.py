"""Experiments (with the best value of a chosen metric) and one experiment's page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.errors import NotFound
from chachaml.server.mcp.render import metric_columns
from chachaml.server.ui.common import (
    choice_param,
    path_param,
    store_of,
    text_param,
    twin,
)
from chachaml.server.ui.runs import run_row
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops


def _metric_choice(request: Request) -> tuple[str | None, str]:
    return text_param(request, "metric"), choice_param(request, "direction", ("max", "min"), "max")


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
        rows.append({**exp.model_dump(mode="json"), "best": best})
    return {"metric": metric, "direction": direction, "experiments": rows}


async def experiment_page(request: Request) -> dict[str, Any]:
    """One experiment, its newest runs and its best run for ``metric``."""
    store = store_of(request)
    name = path_param(request, "name")
    found = [e for e in await experiment_ops.list_experiments(store) if e.name == name]
    if not found:
        raise NotFound(f"no experiment named {name!r}")
    metric, direction = _metric_choice(request)
    runs = await run_ops.list_runs(store, experiment=name, limit=101)
    best = None
    if metric:
        won = await run_ops.best_run(store, metric, experiment=name, direction=direction)  # type: ignore[arg-type]
        best = None if won is None else won.model_dump(mode="json")
    return {
        "experiment": found[0].model_dump(mode="json"),
        "metric": metric,
        "direction": direction,
        "best": best,
        "runs": [run_row(r) for r in runs[:100]],
        "more": len(runs) > 100,
        "metric_keys": metric_columns([r.metrics for r in runs[:100]]),
    }


def routes() -> list[Route]:
    """The Experiments pages."""
    return [
        *twin("/experiments", experiments_page, "experiments.html"),
        *twin("/experiments/{name:path}", experiment_page, "experiment.html"),
    ]

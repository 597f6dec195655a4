"""Experiments (with the best value of a chosen metric), Search, and Compare."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.errors import InvalidInput, NotFound
from chachaml.records.runs import OPS, ParamValue
from chachaml.server.mcp.render import metric_columns
from chachaml.server.ui.charts import overlay_chart, series_points
from chachaml.server.ui.common import (
    choice_param,
    list_param,
    path_param,
    store_of,
    text_param,
    twin,
)
from chachaml.server.ui.runs import run_row
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops

MAX_COMPARE_UI = 10
MAX_CONDITIONS = 10
_CONDITION = re.compile(r"^\s*([^<>=\s]+)\s*(>=|<=|>|<|=)\s*(\S+)\s*$")
_PAIR = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")


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


def _value(text: str) -> ParamValue:
    """A param value typed as JSON when it parses as a JSON scalar, else the text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, str | int | float | bool) else text


def _conditions(request: Request) -> list[tuple[str, str, float]]:
    out = []
    for raw in request.query_params.getlist("where"):
        if not raw.strip():
            continue
        match = _CONDITION.match(raw)
        if match is None:
            raise InvalidInput(
                f"condition {raw!r} must look like metric>=0.9 (ops: {', '.join(OPS)})"
            )
        key, op, text = match.groups()
        try:
            out.append((key, op, float(text)))
        except ValueError:
            raise InvalidInput(f"condition {raw!r}: {text!r} is not a number") from None
    if len(out) > MAX_CONDITIONS:
        raise InvalidInput(f"at most {MAX_CONDITIONS} metric conditions")
    return out


def _pairs(request: Request, name: str) -> dict[str, str]:
    out = {}
    for raw in request.query_params.getlist(name):
        if not raw.strip():
            continue
        match = _PAIR.match(raw)
        if match is None:
            raise InvalidInput(f"{name} filter {raw!r} must look like key=value")
        out[match.group(1)] = match.group(2)
    return out


async def search_page(request: Request) -> dict[str, Any]:
    """Runs passing every metric condition, param and tag filter; pick some to compare."""
    where = _conditions(request)
    params = {k: _value(v) for k, v in _pairs(request, "param").items()}
    tags = _pairs(request, "tag")
    experiment = text_param(request, "experiment")
    asked = bool(where or params or tags or experiment)
    runs = (
        await run_ops.search_runs(
            store_of(request),
            experiment=experiment,
            where=where,
            params=params,
            tags=tags,
            limit=100,
        )
        if asked
        else []
    )
    keys = list(dict.fromkeys([c[0] for c in where] + metric_columns([r.metrics for r in runs])))
    return {
        "asked": asked,
        "experiment": experiment,
        "where": [f"{k}{op}{val:g}" for k, op, val in where],
        "params": params,
        "tags": tags,
        "runs": [run_row(r) for r in runs],
        "metric_keys": keys,
        "ops": list(OPS),
    }


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
    """Experiments, Search and Compare."""
    return [
        *twin("/experiments", experiments_page, "experiments.html"),
        *twin("/experiments/{name:path}", experiment_page, "experiment.html"),
        *twin("/search", search_page, "search.html"),
        *twin("/compare", compare_page, "compare.html"),
    ]

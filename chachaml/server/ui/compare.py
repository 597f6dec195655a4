"""Compare: 2-10 runs side by side, with a picker to choose them on the page.

Params (identical ones can be hidden), latest metrics with the best value of each row marked,
overlaid curves, parallel coordinates and a param-vs-metric scatter. Every run has one colour
everywhere on the page. With fewer than 2 runs the page is the picker and a message; a bad
pick (too many, an unknown id) keeps the picker and says what is wrong.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chachaml.errors import ChachamlError, InvalidInput
from chachaml.records.runs import RunQuery
from chachaml.server.errors import status_of
from chachaml.server.ui.charts import overlay_chart, series_points
from chachaml.server.ui.common import (
    SECURITY_HEADERS,
    guarded,
    is_api,
    jsonable,
    list_param,
    render,
    store_of,
    text_param,
)
from chachaml.server.ui.figures import color_index, parallel_spec, recolor, scatter_spec
from chachaml.server.ui.goals import best_indices, better_direction
from chachaml.server.ui.runs import run_row
from chachaml.store.protocol import Store
from chachaml.tools import metrics as metric_ops
from chachaml.tools import runs as run_ops

MAX_COMPARE_UI = 10
CANDIDATES_SHOWN = 20  # the picker lists this many runs


def compare_href(ids: list[str], **extra: str | None) -> str:
    """The Compare page for ``ids`` (kept in the URL, comma-separated)."""
    items = [("ids", ",".join(ids))] if ids else []
    items += [(k, v) for k, v in extra.items() if v]
    return "/compare" + ("?" + urlencode(items) if items else "")


def _pick(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "experiment": run.experiment,
        "status": run.status,
        "started_at": run.started_at,
    }


async def _candidates(store: Store, q: str | None, chosen: list[str]) -> list[dict[str, Any]]:
    """Runs to add: ``q`` as an id or prefix, or part of a run's or an experiment's name.

    Names are matched by the store's filters (as the Runs page's name search is), so any run
    can be found however many newer ones there are; matches come newest first. Without ``q``,
    the first picked run's experiment comes first (the run page's "compare with..." lands
    here), then the newest runs.
    """
    wanted = CANDIDATES_SHOWN + len(chosen)
    found: dict[str, dict[str, Any]] = {}
    if q and re.fullmatch(r"[0-9a-fA-F]{8,}", q):
        with suppress(ChachamlError):
            one = await run_ops.get_run(store, q.lower())
            found[one.id] = _pick(one)
    if q:
        named = await run_ops.query_runs(store, RunQuery(name_contains=q, limit=wanted))
        in_experiment = await run_ops.query_runs(
            store, RunQuery(experiment_contains=q, limit=wanted)
        )
        for run in sorted([*named, *in_experiment], key=lambda r: r.started_at, reverse=True):
            found.setdefault(run.id, _pick(run))
    else:
        if chosen:
            with suppress(ChachamlError):
                experiment = (await run_ops.get_run(store, chosen[0])).experiment
                for run in await run_ops.list_runs(store, experiment=experiment, limit=wanted):
                    found.setdefault(run.id, _pick(run))
        for run in await run_ops.list_runs(store, limit=wanted):
            found.setdefault(run.id, _pick(run))
    return [c for rid, c in found.items() if rid not in chosen][:CANDIDATES_SHOWN]


async def _picker(request: Request) -> dict[str, Any]:
    """What the page shows before (or instead of) a comparison: the choice and the picker."""
    ids = list(dict.fromkeys(list_param(request, "ids")))
    q = text_param(request, "q")
    same = "hide" if request.query_params.get("same") == "hide" else None
    candidates = await _candidates(store_of(request), q, ids)
    full = len(ids) >= MAX_COMPARE_UI
    for c in candidates:
        c["add_href"] = None if full else compare_href([*ids, c["id"]], q=q, same=same)
    return {
        "ids": ids,
        "q": q,
        "hide_same": same is not None,
        "max_runs": MAX_COMPARE_UI,
        "candidates": candidates,
        "picked": [],
        "message": None,
        "error": None,
        "runs": [],
        "params": [],
        "metrics": [],
        "charts": [],
        "parallel": None,
        "scatter": None,
    }


def _flip(direction: str) -> str:
    return "min" if direction == "max" else "max"


def _scatter(
    request: Request,
    labels: list[str],
    params: dict[str, list[object]],
    metrics: dict[str, list[object]],
    differing: list[str],
) -> dict[str, Any] | None:
    """The scatter's axes (``x``: any param or metric, ``y``: a metric) and its spec."""
    if not metrics:
        return None
    xs = {f"param:{k}": v for k, v in params.items()} | {
        f"metric:{k}": v for k, v in metrics.items()
    }
    ys = {f"metric:{k}": v for k, v in metrics.items()}
    numeric = [
        k for k in differing if all(isinstance(v, int | float) for v in params[k] if v is not None)
    ]
    default_x = next(iter([*numeric, *differing, *params]), None)
    x = request.query_params.get("x") or ""
    x = x if x in xs else (f"param:{default_x}" if default_x else next(iter(xs)))
    y = request.query_params.get("y") or ""
    y = y if y in ys else next((k for k in ys if k != x), next(iter(ys)))
    x_key, y_key = x.partition(":")[2], y.partition(":")[2]
    return {
        "x": x,
        "y": y,
        "x_choices": list(xs),
        "y_choices": list(ys),
        "spec": scatter_spec(labels, x_key, xs[x], y_key, ys[y]),
    }


async def compare_page(request: Request) -> dict[str, Any]:
    """2-10 runs: params, latest metrics with the best marked, curves and two cross-run charts."""
    data = await _picker(request)
    ids: list[str] = data["ids"]
    if len(ids) < 2:
        store = store_of(request)
        for rid in ids:
            with suppress(ChachamlError):
                one = _pick(await run_ops.get_run(store, rid))
                data["picked"].append({**one, "remove_href": compare_href([], q=data["q"])})
        data["message"] = f"Pick 2 to {MAX_COMPARE_UI} runs to compare: find them below" + (
            " (1 picked so far)." if ids else "."
        )
        return data
    if len(ids) > MAX_COMPARE_UI:
        raise InvalidInput(f"compare takes 2 to {MAX_COMPARE_UI} run ids, got {len(ids)}")
    store = store_of(request)
    comparison = await run_ops.compare_runs(store, ids)
    ids = [r.id for r in comparison.runs]  # prefixes resolved
    labels = {r.id: f"{r.name or r.id[:8]} ({r.id[:6]})" for r in comparison.runs}
    order = [labels[r] for r in ids]
    colors = color_index(order)
    same = "hide" if data["hide_same"] else None
    charts = []
    for key in comparison.metrics:
        curves = []
        for rid in ids:
            if comparison.metrics[key].get(rid) is None:
                continue
            shown = 1000 // len(ids) * 2
            points = await metric_ops.metric_outline(store, rid, key, points=shown)
            curves.append((labels[rid], series_points(points, shown)))
        charts.append({"key": key, "spec": recolor(overlay_chart(key, curves), order)})
    params: dict[str, list[object]] = {
        k: [by_run.get(r) for r in ids] for k, by_run in comparison.params.items()
    }
    metrics: dict[str, list[object]] = {
        k: [by_run.get(r) for r in ids] for k, by_run in comparison.metrics.items()
    }
    flipped = set(list_param(request, "flip"))  # metrics whose better direction was switched
    dims: list[tuple[str, list[object]]] = [(k, params[k]) for k in comparison.differing_params]
    dims += [(f"{k} (metric)" if k in params else k, v) for k, v in metrics.items()]
    data.update(
        ids=ids,
        runs=[
            {
                **run_row(r),
                "label": labels[r.id],
                "color": colors[labels[r.id]],
                "remove_href": compare_href([x for x in ids if x != r.id], q=data["q"], same=same),
            }
            for r in comparison.runs
        ],
        params=[
            {"key": k, "cells": cells, "differs": k in comparison.differing_params}
            for k, cells in params.items()
        ],
        metrics=[
            {
                "key": k,
                "cells": cells,
                "direction": _flip(better_direction(k)) if k in flipped else better_direction(k),
                "best": {"max": best_indices(cells, "max"), "min": best_indices(cells, "min")},
            }
            for k, cells in metrics.items()
        ],
        charts=charts,
        parallel=parallel_spec(order, dims),
        scatter=_scatter(request, order, params, metrics, comparison.differing_params),
    )
    for c in data["candidates"]:
        c["add_href"] = None if len(ids) >= MAX_COMPARE_UI else c["add_href"]
    return data


@guarded
async def compare_view(request: Request) -> Response:
    """The page (or its JSON twin); a bad pick keeps the picker on the page with the error."""
    try:
        data = jsonable(await compare_page(request))
    except ChachamlError as exc:
        if is_api(request):
            raise
        data = jsonable({**await _picker(request), "error": str(exc)})
        return render(request, "compare.html", data, status_of(exc))
    if is_api(request):
        return JSONResponse(data, headers=SECURITY_HEADERS)
    return render(request, "compare.html", data)


def routes() -> list[Route]:
    """The Compare page and its JSON twin."""
    return [Route("/compare", compare_view), Route("/api/compare", compare_view)]

"""The Runs table, the main working surface: filter, choose columns, nest, compare, page.

Server-rendered first (every control is a GET form or a link, so the page works without
JavaScript); ``static/runs.js`` adds key autocomplete, expanding child runs and live rows:
on each run event (``/api/events``) it reads the JSON twin, updates rows in place and adds
runs started since (polling the twin while runs run, if the stream fails).
"""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chachaml.errors import ChachamlError
from chachaml.records.runs import RUN_ORDERS, RUN_STATUSES, RunInfo, RunQuery
from chachaml.server.ui.common import (
    SECURITY_HEADERS,
    choice_param,
    error_response,
    guarded,
    int_param,
    is_api,
    jsonable,
    render,
    store_of,
)
from chachaml.server.ui.live import events_after
from chachaml.server.ui.runs_form import (
    Column,
    FilterError,
    RunsForm,
    base_query,
    read_form,
    sort_fields,
    sort_key,
)
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops

PAGE_SIZES = (25, 50, 100)
DEFAULT_METRIC_COLUMNS = 6
CHILD_ROWS = 25  # a parent shows this many children; the rest are a link away
LIVE_POLL_SECONDS = 3
MAX_OFFSET = 10_000_000
# A page counts its runs up to a cap ("10,000+ runs"): a plain filter from an index, a join
# or a search (each run looked up) lower. Measured over a million runs on the loaded 2-core
# machine: counting them all cost every page 60 ms (SQLite) to 300 ms (PostgreSQL), 100,000
# of them 100 ms on PostgreSQL, 10,000 sorted by a metric 40-100 ms.
PLAIN_COUNT_CAP = 10_000
COUNT_CAP = 1_000


def run_row(run: RunInfo) -> dict[str, Any]:
    """A run as a table row: its listing fields, its duration and, while running, its age."""
    elapsed = time.time() - run.started_at.timestamp() if run.status == "running" else None
    return {
        **run.model_dump(mode="json"),
        "duration_seconds": run.duration_seconds,
        "elapsed_seconds": None if elapsed is None else max(0.0, elapsed),
    }


def _row(run: RunInfo, params: dict[str, Any], cols: list[Column]) -> dict[str, Any]:
    wanted = {c.name for c in cols if c.kind == "params"}
    return {**run_row(run), "params": {k: x for k, x in params.get(run.id, {}).items()
                                       if k in wanted}}  # fmt: skip


async def _default_columns(store: Any, query: RunQuery, sort: str) -> list[Column]:
    """The metrics most of the filtered runs logged (not just this page's): stable columns."""
    keys = await run_ops.metric_keys(store, query)
    cols = [Column("metrics", k) for k in sorted(keys[:DEFAULT_METRIC_COLUMNS])]
    return _with_sorted(cols, sort)


def _with_sorted(cols: list[Column], sort: str) -> list[Column]:
    """The columns, plus the one the table is sorted by if it is not among them."""
    key = sort_key(sort)
    if key in RUN_ORDERS or any(c.key == key for c in cols):
        return cols
    kind, _, name = key.partition(".")
    return [*cols, Column(kind, name)]


async def _children(
    store: Any, shown: list[RunInfo]
) -> tuple[dict[str, int], dict[str, list[RunInfo]]]:
    """Child counts of the shown runs and their first children, oldest first (steps in order).

    Parents with few children share one query; a parent with many gets its own, capped.
    """
    counts = await run_ops.child_counts(store, [r.id for r in shown])
    small = [p for p, n in counts.items() if n <= CHILD_ROWS]
    found: list[RunInfo] = []
    if small:
        limit = sum(counts[p] for p in small)
        found += await run_ops.query_runs(
            store, RunQuery(parent_ids=small, limit=limit, order_by="started", direction="min")
        )
    for parent in (p for p, n in counts.items() if n > CHILD_ROWS):
        found += await run_ops.query_runs(
            store,
            RunQuery(parent_id=parent, limit=CHILD_ROWS, order_by="started", direction="min"),
        )
    by_parent: dict[str, list[RunInfo]] = {}
    for child in found:
        by_parent.setdefault(child.parent_id or "", []).append(child)
    return counts, by_parent


async def runs_page(request: Request) -> dict[str, Any]:
    """Runs filtered by the form and the filter expression, with chosen columns, nested."""
    store = store_of(request)
    form = read_form(request)
    limit = int_param(request, "limit", 50, 1, max(PAGE_SIZES))
    sort = request.query_params.get("sort", "").strip() or "started"
    direction = choice_param(request, "dir", ("max", "min"), "max")
    order = sort_fields(sort)
    query = base_query(form, request.app.state.ui_user)
    ordered = query.model_copy(update={**order, "direction": direction})
    # plain filters are counted from an index, joins and searches up to a lower cap
    costly = bool(
        ordered.order_by_metric or ordered.order_by_param or query.metric_conditions
        or query.params or query.tags or query.name_contains
    )  # fmt: skip
    cap = (COUNT_CAP if costly else PLAIN_COUNT_CAP) + 1
    total = await run_ops.count_runs(store, ordered.model_copy(update={"count_up_to": cap}))
    capped = total >= cap
    total = min(total, cap - 1)
    pages = max(1, math.ceil(total / limit))
    offset = int_param(request, "offset", 0, 0, MAX_OFFSET)
    if request.query_params.get("page", "").strip():
        offset = (int_param(request, "page", 1, 1, MAX_OFFSET) - 1) * limit
    if not capped:
        offset = min(offset, (pages - 1) * limit)
    page = ordered.model_copy(update={"limit": limit + 1, "offset": offset})
    found = await run_ops.query_runs(store, page)
    shown = found[:limit]
    cols = (
        _with_sorted(form.cols, sort)
        if form.cols is not None
        else await _default_columns(store, query, sort)
    )
    counts, children = (
        await _children(store, shown) if form.nest and form.parent is None else ({}, {})
    )
    everyone = shown + [c for kids in children.values() for c in kids]
    params = (
        await run_ops.run_params(store, [r.id for r in everyone])
        if any(c.kind == "params" for c in cols)
        else {}
    )
    rows = []
    for run in shown:
        row = _row(run, params, cols)
        row["child_count"] = counts.get(run.id, 0)
        row["children"] = [_row(c, params, cols) for c in children.get(run.id, [])]
        rows.append(row)
    return {
        "filters": form.as_json(query.created_by),
        "error": None,
        "user": request.app.state.ui_user,
        "sort": sort_key(sort),
        "dir": direction,
        "limit": limit,
        "offset": offset,
        "total": total,
        "total_capped": capped,  # more runs match than were counted: "10,000+"
        "page": offset // limit + 1,
        "pages": pages,
        "more": len(found) > limit,
        "columns": [c.as_json() for c in cols],
        "cols_chosen": form.cols is not None,
        "runs": rows,
        "child_rows": CHILD_ROWS,
        "statuses": list(RUN_STATUSES),
        "run_orders": list(RUN_ORDERS),
        "live_seconds": LIVE_POLL_SECONDS if any(r.status == "running" for r in everyone) else None,
        "events_after": await events_after(request),  # rows follow run events from here
    }


def _error_page(request: Request, message: str) -> dict[str, Any]:
    """The page's data when its filter does not read: the form as typed, the error, no rows."""
    try:
        form = read_form(request)
    except ChachamlError:
        form = RunsForm(q=request.query_params.get("q", ""))
    return {
        "filters": form.as_json(form.user),
        "error": message,
        "user": request.app.state.ui_user,
        "sort": request.query_params.get("sort", "started"),
        "dir": request.query_params.get("dir", "max"),
        "limit": 50,
        "offset": 0,
        "total": 0,
        "total_capped": False,
        "page": 1,
        "pages": 1,
        "more": False,
        "columns": [c.as_json() for c in form.cols or []],
        "cols_chosen": form.cols is not None,
        "runs": [],
        "child_rows": CHILD_ROWS,
        "statuses": list(RUN_STATUSES),
        "run_orders": list(RUN_ORDERS),
        "live_seconds": None,
        "events_after": "",
    }


@guarded
async def runs_view(request: Request) -> Response:
    """The Runs page and its JSON twin; a filter that does not read stays on the page."""
    try:
        data = jsonable(await runs_page(request))
    except FilterError as exc:
        if is_api(request):
            return error_response(request, 422, str(exc))
        return render(request, "runs.html", jsonable(_error_page(request, str(exc))), 422)
    if is_api(request):
        return JSONResponse(data, headers=SECURITY_HEADERS)
    return render(request, "runs.html", data)


@guarded
async def run_keys(request: Request) -> Response:
    """Metric, param and tag keys of the filtered runs and experiment names (autocomplete)."""
    form = read_form(request)
    try:
        query = base_query(form, request.app.state.ui_user)
    except FilterError:  # while a filter is half typed, suggest from every run
        query = RunQuery(limit=None)
    store = store_of(request)
    keys = await run_ops.run_keys(store, query)
    return JSONResponse(
        {**keys, "experiments": await _experiment_names(request)}, headers=SECURITY_HEADERS
    )


NAMES_SECONDS = 30.0


async def _experiment_names(request: Request) -> list[str]:
    """Experiment names for the picker, most recently active first.

    The names are read on every request (one small query), so a rename, a new experiment or
    an archive made through any replica shows at once; only their order, which needs every
    run read, is kept for ``NAMES_SECONDS`` per process (experiments newer than it go first).
    """
    store = store_of(request)
    names = await experiment_ops.experiment_names(store)
    state = request.app.state
    kept: tuple[float, dict[int, int]] | None = getattr(state, "runs_experiment_order", None)
    if kept is None or time.monotonic() - kept[0] >= NAMES_SECONDS:
        listed = await experiment_ops.list_experiments(store)
        kept = (time.monotonic(), {e.id: i for i, e in enumerate(listed)})
        state.runs_experiment_order = kept
    rank = kept[1]
    return [names[i] for i in sorted(names, key=lambda i: rank.get(i, -1))]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (OWASP's advice).

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
    ``'``; numbers (``-0.5`` logged as a number) stay numbers.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@guarded
async def export_csv(request: Request) -> Response:
    """Every run the Runs filters match, as CSV (run fields, params, metrics, tags)."""
    form = read_form(request)
    query = base_query(form, request.app.state.ui_user)  # every match, children too
    query = query.model_copy(update={"top_level": False, "limit": None})
    records = await run_ops.export_query(store_of(request), query)
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(c) for c in columns or ["id"]])
    writer.writerows([csv_cell(record.get(c)) for c in columns] for record in records)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="runs.csv"'},
    )


def routes() -> list[Route]:
    """The Runs page, its twin, the keys for autocomplete and the CSV export."""
    return [
        Route("/runs", runs_view),
        Route("/api/runs", runs_view),
        Route("/api/runs/keys", run_keys),
        Route("/api/export", export_csv),
    ]

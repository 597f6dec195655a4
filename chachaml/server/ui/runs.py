"""The Runs dashboard and its CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.records.runs import RUN_ORDERS, RUN_STATUSES, RunInfo
from chachaml.server.mcp.render import metric_columns
from chachaml.server.ui.common import (
    SECURITY_HEADERS,
    choice_param,
    date_param,
    guarded,
    int_param,
    store_of,
    text_param,
    twin,
)
from chachaml.tools import runs as run_ops

PAGE_SIZES = (25, 50, 100)
MAX_CHARTS = 24
LIVE_REFRESH_SECONDS = 5


def run_filters(request: Request) -> dict[str, Any]:
    """The Runs filters from the query string, checked (``mine`` means the server's user)."""
    status = text_param(request, "status")
    if status is not None and status not in RUN_STATUSES:
        raise InvalidInput(f"query parameter 'status' must be one of {', '.join(RUN_STATUSES)}")
    user = text_param(request, "user")
    if request.query_params.get("mine") == "1":
        user = request.app.state.ui_user
    return {
        "experiment": text_param(request, "experiment"),
        "status": status,
        "created_by": user,
        "since": date_param(request, "since"),
        "until": date_param(request, "until"),
    }


def run_row(run: RunInfo) -> dict[str, Any]:
    """A run as a table row: its listing fields plus its duration."""
    return {**run.model_dump(mode="json"), "duration_seconds": run.duration_seconds}


async def runs_page(request: Request) -> dict[str, Any]:
    """Runs, newest first or by a metric, filtered and paginated; live runs trigger refresh."""
    store = store_of(request)
    filters = run_filters(request)
    limit = int_param(request, "limit", 50, 1, max(PAGE_SIZES))
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    sort = text_param(request, "sort") or "started"
    direction = choice_param(request, "dir", ("max", "min"), "max")
    runs = await run_ops.list_runs(
        store,
        **filters,
        limit=limit + 1,
        offset=offset,
        order_by=sort if sort in RUN_ORDERS else "started",
        order_by_metric=None if sort in RUN_ORDERS else sort,
        direction=direction,  # type: ignore[arg-type]
    )
    shown = runs[:limit]
    return {
        "filters": {**filters, "mine": request.query_params.get("mine") == "1"},
        "user": request.app.state.ui_user,
        "sort": sort,
        "dir": direction,
        "limit": limit,
        "offset": offset,
        "more": len(runs) > limit,
        "runs": [run_row(r) for r in shown],
        "metric_keys": metric_columns([r.metrics for r in shown]) if sort in RUN_ORDERS else [sort],
        "statuses": list(RUN_STATUSES),
        "run_orders": list(RUN_ORDERS),
        "refresh_seconds": (
            LIVE_REFRESH_SECONDS if any(r.status == "running" for r in shown) else None
        ),
    }


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
    records = await run_ops.export_runs(store_of(request), **run_filters(request))
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
    """The Runs pages and endpoints."""
    return [
        *twin("/runs", runs_page, "runs.html"),
        Route("/api/export", export_csv),
    ]

"""MLflow's ``runs/search``: a filter, an order and a page over chachaml's run query.

The filter is read by :mod:`~chachaml.server.api.mlflow.filters`. When the store's query
answers all of it (metric thresholds, tag equality, status, user) and the order is the
default (newest first), ``start_time``, or a metric the filter already requires, one SQL
query returns exactly the page. Otherwise the runs the SQL part matches are checked and
ordered here, then paged: MLflow's semantics exactly (runs without an ordered-by value come
last), at the cost of reading every candidate run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from chachaml.records.runs import Experiment, ParamValue, RunInfo, RunQuery
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import entities, filters, wire
from chachaml.server.api.mlflow.ids import experiment_by_id, experiment_id, experiment_ids
from chachaml.tools import runs as run_ops

api = Api()
Answer = dict[str, Any]
MAX_EXPERIMENTS = 100


class SearchRuns(wire.Message):
    """``runs/search``."""

    experiment_ids: list[str] = Field(default_factory=list, max_length=MAX_EXPERIMENTS)
    filter: str | None = None
    run_view_type: int | str | None = None
    max_results: int | None = None
    order_by: list[str] = Field(default_factory=list, max_length=20)
    page_token: str | None = None


def _sql_order(orders: list[filters.Order], plan: filters.Plan) -> dict[str, Any] | None:
    """The RunQuery ordering of ``orders``, if SQL can give MLflow's order; else ``None``."""
    if not orders:
        return {"order_by": "started", "direction": "max"}
    if len(orders) > 1:
        return None
    order = orders[0]
    direction = "min" if order.ascending else "max"
    if order.kind == "attribute" and order.key == "start_time":
        return {"order_by": "started", "direction": direction}
    required = {c.key for c in plan.metric_conditions}
    if order.kind == "metric" and order.key in required:  # every matching run has it
        return {"order_by_metric": order.key, "direction": direction}
    return None


def _sort(
    runs: list[RunInfo], params: Mapping[str, Mapping[str, ParamValue]], orders: list[filters.Order]
) -> list[RunInfo]:
    """MLflow's order: each key in turn, absent values last; then newest first, then id."""
    runs = sorted(runs, key=lambda r: r.id)
    runs.sort(key=lambda r: r.started_at, reverse=True)
    for order in reversed(orders):

        def value(r: RunInfo, o: filters.Order = order) -> Any:
            return filters.value_of(r, params.get(r.id, {}), o.kind, o.key)

        present = [r for r in runs if value(r) is not None]
        absent = [r for r in runs if value(r) is None]
        present.sort(key=value, reverse=not order.ascending)
        runs = present + absent
    return runs


async def _candidates(call: Call, exps: list[Experiment], base: dict[str, Any]) -> list[RunInfo]:
    found: list[RunInfo] = []
    names: list[str | None] = [e.name for e in exps] or [None]
    for name in names:
        query = RunQuery(experiment=name, limit=None, **base)
        found += await run_ops.query_runs(call.store, query)
    return found


@api.route("POST", "/runs/search", scope="read", body=SearchRuns, response=Answer)
async def search_runs(call: Call) -> Answer:
    """Runs of some experiments matching a filter, ordered, one page at a time."""
    body: SearchRuns = call.body
    size = wire.max_results(body.max_results, 1000)
    offset = wire.page_offset(body.page_token)
    include_archived, only_archived = wire.view_type(body.run_view_type)
    clauses = filters.parse_filter(body.filter)
    orders = [filters.parse_order(o) for o in body.order_by]
    exps = [await experiment_by_id(call.store, e) for e in dict.fromkeys(body.experiment_ids)]
    plan = filters.plan(clauses, entities.FIELD_TAGS)
    if plan.impossible:
        return {"runs": []}
    base = {
        **plan.query_fields(),
        "include_archived": include_archived,
        "only_archived": only_archived,
    }
    sql_order = _sql_order(orders, plan)
    if not plan.rest and len(exps) <= 1 and sql_order is not None:
        query = RunQuery(
            experiment=exps[0].name if exps else None,
            limit=size + 1,
            offset=offset,
            **base,
            **sql_order,
        )
        runs = await run_ops.query_runs(call.store, query)
        more = len(runs) > size
        page = runs[:size]
    else:
        runs = await _candidates(call, exps, base)
        wants_params = any(c.kind == "param" for c in plan.rest) or any(
            o.kind == "param" for o in orders
        )
        params = await run_ops.run_params(call.store, [r.id for r in runs]) if wants_params else {}
        runs = [r for r in runs if filters.matches(r, params.get(r.id, {}), plan.rest)]
        runs = _sort(runs, params, orders)
        more = len(runs) > offset + size
        page = runs[offset : offset + size]
    page_params = await run_ops.run_params(call.store, [r.id for r in page])
    names = {e.name: experiment_id(e) for e in exps} or await experiment_ids(call.store)
    answer: Answer = {
        "runs": [
            entities.run(r, names.get(r.experiment, ""), page_params.get(r.id, {})) for r in page
        ]
    }
    if more:
        answer["next_page_token"] = wire.page_token(offset + size)
    return answer

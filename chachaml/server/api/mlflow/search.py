"""MLflow's ``runs/search``: a filter, an order and a page over chachaml's run query.

The filter is read by :mod:`~chachaml.server.api.mlflow.filters`. When the store's query
answers all of it (metric thresholds, param and tag equality, status, user, start time, run
ids, run names, a parent) for any number of experiments, the page is read in SQL, ordered by
the default (newest first), ``start_time``, ``run_name``, ``user_id``, a metric or a param: a
metric or param order reads the runs that have the value from the store's ordered listing (an
index walk for a metric), then, as MLflow lists runs without the value last, the runs without
it, newest first. Other filters and orders (``LIKE``, ``!=``, ``IS NULL``, several order keys)
are checked and ordered here over every run the SQL part matches: MLflow's semantics exactly,
at the cost of reading every candidate. Either way each metric carries its latest step and time.

Two orders differ from MLflow's in ties and types: runs with equal metric values follow by
run id, and natively logged numeric params sort as numbers, before text (params logged
through MLflow are text and sort as text, as in MLflow).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from chachaml.errors import NotFound
from chachaml.records.runs import Experiment, ParamValue, RunInfo, RunQuery
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import entities, filters, wire
from chachaml.server.api.mlflow.ids import experiment_by_id, experiment_id
from chachaml.tools import experiments as experiment_ops
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


@dataclass(frozen=True)
class SqlOrder:
    """An MLflow order as RunQuery fields, and how to select the runs it leaves out."""

    fields: dict[str, Any]
    missing: dict[str, Any] | None = None  # RunQuery fields of the runs listed after


ATTRIBUTE_ORDERS = {"start_time": "started", "run_name": "name", "user_id": "user"}


def _sql_order(orders: list[filters.Order]) -> SqlOrder | None:
    """The RunQuery ordering of ``orders``, if SQL can give MLflow's order; else ``None``."""
    if not orders:
        return SqlOrder({"order_by": "started", "direction": "max"})
    if len(orders) > 1:
        return None
    order = orders[0]
    direction = "min" if order.ascending else "max"
    if order.kind == "attribute" and order.key in ATTRIBUTE_ORDERS:
        return SqlOrder({"order_by": ATTRIBUTE_ORDERS[order.key], "direction": direction})
    if order.kind == "metric":
        return SqlOrder(
            {"order_by_metric": order.key, "direction": direction}, {"without_metric": order.key}
        )
    if order.kind == "param":
        return SqlOrder(
            {"order_by_param": order.key, "direction": direction}, {"without_param": order.key}
        )
    return None


async def _sql_page(
    call: Call, query: RunQuery, order: SqlOrder, size: int
) -> tuple[list[RunInfo], bool]:
    """One page in SQL: the runs with the ordered value, then those without it if it reaches.

    ``query`` holds the filter, experiment and offset; the page has up to ``size`` runs, and
    whether more follow.
    """
    ordered = query.model_copy(update={**order.fields, "limit": size + 1})
    runs = await run_ops.query_runs(call.store, ordered)
    if len(runs) > size or order.missing is None:
        return runs[:size], len(runs) > size
    # how many runs have the value: the page's start plus what it found, unless it starts
    # past them all (then counted)
    if runs or not query.offset:
        present = query.offset + len(runs)
    else:
        present = await run_ops.count_runs(call.store, ordered)
    rest = query.model_copy(
        update={
            **order.missing,
            "limit": size - len(runs) + 1,
            "offset": max(0, query.offset - present),
        }
    )
    page = runs + await run_ops.query_runs(call.store, rest)
    return page[:size], len(page) > size


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


async def _experiment_ids(
    call: Call, exps: list[Experiment], runs: list[RunInfo]
) -> dict[str, str]:
    """The MLflow id of each page run's experiment, by name."""
    names = {e.name: experiment_id(e) for e in exps}
    for name in {r.experiment for r in runs} - names.keys():
        with contextlib.suppress(NotFound):  # renamed since the page was read: left blank
            names[name] = experiment_id(await experiment_ops.get_experiment(call.store, name))
    return names


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
    sql_order = _sql_order(orders)
    if not plan.rest and sql_order is not None:
        one = exps[0].name if len(exps) == 1 else None  # one: its id drives a metric order
        many = [e.name for e in exps] if len(exps) > 1 else []
        query = RunQuery(experiment=one, experiments=many, offset=offset, **base)
        page, more = await _sql_page(call, query, sql_order, size)
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
    ids = [r.id for r in page]
    page_params = await run_ops.run_params(call.store, ids)
    summaries = await run_ops.metric_summaries_of_runs(call.store, ids)
    names = await _experiment_ids(call, exps, page)
    answer: Answer = {
        "runs": [
            entities.run(
                r, names.get(r.experiment, ""), page_params.get(r.id, {}), summaries.get(r.id, {})
            )
            for r in page
        ]
    }
    if more:
        answer["next_page_token"] = wire.page_token(offset + size)
    return answer

"""Run queries: list, get, search, best, compare, export, metric history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.runs import (
    BestRun,
    Comparison,
    Direction,
    MetricCondition,
    MetricSeries,
    ParamValue,
    Run,
    RunInfo,
    RunQuery,
)
from chachaml.store.protocol import Store

MAX_COMPARE = 50


def _period(since: object, until: object) -> tuple[datetime | None, datetime | None]:
    start, end = v.when(since, "since"), v.when(until, "until")
    if start is not None and end is not None and start >= end:
        raise InvalidInput(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    return start, end


async def list_runs(
    store: Store,
    *,
    experiment: str | None = None,
    status: str | None = None,
    created_by: str | None = None,
    since: object = None,
    until: object = None,
    limit: int | None = 100,
    offset: int = 0,
    include_archived: bool = False,
    order_by: str = "started",
    order_by_metric: str | None = None,
    direction: Direction = "max",
) -> list[RunInfo]:
    """Runs, newest first, narrowed by experiment, status, user and start-time window.

    ``order_by`` sorts by a run field instead (started, name, experiment, status, user,
    duration; ``max`` puts the newest, largest or last in the alphabet first). With
    ``order_by_metric``, only runs that logged it, highest (``max``) or lowest first.
    """
    start, end = _period(since, until)
    query = RunQuery(
        experiment=v.filter_text(experiment, "experiment"),
        status=v.status(status),  # type: ignore[arg-type]
        created_by=v.filter_text(created_by, "created_by"),
        since=start,
        until=end,
        limit=limit if limit is None else v.limit(limit, 100),
        offset=v.offset(offset),
        include_archived=include_archived,
        order_by=v.run_order(order_by),  # type: ignore[arg-type]
        order_by_metric=None if order_by_metric is None else v.key(order_by_metric, "metric"),
        direction=v.direction(direction),  # type: ignore[arg-type]
    )
    return await store.query_runs(query)


async def get_run(store: Store, run_id: str) -> Run:
    """One run in full."""
    return await store.get_run(v.run_id(run_id))


def conditions_for(
    metric_key: str | None, op: str | None, metric_value: object
) -> list[MetricCondition]:
    """One metric threshold from the three separate arguments the API and tools take."""
    given = [metric_key is not None, op is not None, metric_value is not None]
    if not any(given):
        return []
    if not all(given):
        raise InvalidInput("metric_key, op and metric_value go together: give all three or none")
    return [
        MetricCondition(
            key=v.key(metric_key, "metric_key"),
            op=v.op(op),  # type: ignore[arg-type]
            value=v.finite(metric_value, "metric_value"),
        )
    ]


async def search_runs(
    store: Store,
    *,
    experiment: str | None = None,
    metric_key: str | None = None,
    op: str | None = None,
    metric_value: float | None = None,
    where: Sequence[tuple[str, str, float]] = (),
    params: dict[str, ParamValue] | None = None,
    tags: dict[str, str] | None = None,
    status: str | None = None,
    created_by: str | None = None,
    since: object = None,
    until: object = None,
    limit: int | None = 100,
) -> list[RunInfo]:
    """Runs whose latest metric values pass thresholds, with param and tag equality filters.

    With a threshold, results are ordered by that metric (highest first for ``>``, ``>=`` and
    ``=``, lowest first for ``<`` and ``<=``); otherwise newest first.
    """
    conds = conditions_for(metric_key, op, metric_value)
    for cond in where:
        if not isinstance(cond, tuple | list) or len(cond) != 3:
            raise InvalidInput(f"each condition must be (metric, op, value), got {cond!r}")
        conds += conditions_for(cond[0], cond[1], cond[2])
    start, end = _period(since, until)
    first = conds[0] if conds else None
    query = RunQuery(
        experiment=v.filter_text(experiment, "experiment"),
        status=v.status(status),  # type: ignore[arg-type]
        created_by=v.filter_text(created_by, "created_by"),
        since=start,
        until=end,
        metric_conditions=conds,
        params=v.params(params or {}),
        tags=v.tags(tags or {}),
        order_by_metric=first.key if first else None,
        direction="min" if first and first.op in ("<", "<=") else "max",
        limit=limit if limit is None else v.limit(limit, 100),
    )
    return await store.query_runs(query)


async def count_runs(store: Store, query: RunQuery) -> int:
    """How many runs a query matches (for "N more" notes)."""
    return await store.count_runs(query)


async def best_run(
    store: Store,
    metric: str,
    *,
    experiment: str | None = None,
    direction: Direction = "max",
    since: object = None,
    until: object = None,
) -> BestRun | None:
    """The run with the highest (or lowest) latest value of ``metric``.

    Runs that never logged the metric (or whose latest value is NaN) are never best;
    ``None`` when no run qualifies.
    """
    key = v.key(metric, "metric")
    way = v.direction(direction)
    start, end = _period(since, until)
    return await store.best_run(
        RunQuery(
            experiment=v.filter_text(experiment, "experiment"),
            since=start,
            until=end,
            order_by_metric=key,
            direction=way,  # type: ignore[arg-type]
            limit=1,
        )
    )


async def compare_runs(store: Store, run_ids: Sequence[str]) -> Comparison:
    """Params and latest metrics of several runs side by side, with the differing params."""
    if isinstance(run_ids, str) or len(run_ids) < 2:
        raise InvalidInput("compare_runs needs a list of at least 2 run ids")
    if len(run_ids) > MAX_COMPARE:
        raise InvalidInput(f"compare_runs takes at most {MAX_COMPARE} runs, got {len(run_ids)}")
    ids = list(dict.fromkeys(v.run_id(r) for r in run_ids))
    runs = [await store.get_run(rid) for rid in ids]
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    params = {k: {r.id: r.params.get(k) for r in runs} for k in param_keys}
    differing = [
        k
        for k in param_keys
        if len({repr(r.params[k]) if k in r.params else "<missing>" for r in runs}) > 1
    ]
    metrics = {k: {r.id: r.metrics.get(k) for r in runs} for k in metric_keys}
    infos = [RunInfo(**r.model_dump(include=set(RunInfo.model_fields))) for r in runs]
    return Comparison(runs=infos, params=params, differing_params=differing, metrics=metrics)


async def export_runs(
    store: Store,
    *,
    experiment: str | None = None,
    limit: int | None = None,
    status: str | None = None,
    created_by: str | None = None,
    since: object = None,
    until: object = None,
) -> list[dict[str, Any]]:
    """Flat records, one per run: run fields, then ``params.*``, ``metrics.*``, ``tags.*``."""
    start, end = _period(since, until)
    runs = await store.query_runs(
        RunQuery(
            experiment=v.filter_text(experiment, "experiment"),
            status=v.status(status),  # type: ignore[arg-type]
            created_by=v.filter_text(created_by, "created_by"),
            since=start,
            until=end,
            limit=limit if limit is None else v.limit(limit, None),
        )
    )
    params = await store.run_params([r.id for r in runs])
    records: list[dict[str, Any]] = []
    for r in runs:
        record: dict[str, Any] = {
            "id": r.id,
            "experiment": r.experiment,
            "name": r.name,
            "status": r.status,
            "created_by": r.created_by,
            "started_at": r.started_at.isoformat(),
            "ended_at": r.ended_at.isoformat() if r.ended_at else None,
            "duration_seconds": r.duration_seconds,
            "parent_id": r.parent_id,
            "error": r.error,
        }
        record.update({f"params.{k}": val for k, val in params.get(r.id, {}).items()})
        record.update({f"metrics.{k}": val for k, val in r.metrics.items()})
        record.update({f"tags.{k}": val for k, val in r.tags.items()})
        records.append(record)
    return records


async def metric_history(store: Store, run_id: str, key: str) -> MetricSeries:
    """Every point of one metric of a run, ordered by step."""
    return await store.metric_history(v.run_id(run_id), v.key(key, "metric key"))


async def get_tags(store: Store, run_id: str) -> dict[str, str]:
    """A run's tags."""
    return (await store.get_run(v.run_id(run_id))).tags


async def add_tag(
    store: Store, run_id: str, key: str, value: str, user: str | None = None
) -> dict[str, str]:
    """Set one tag on a run (running or ended); returns the run's tags."""
    rid = v.run_id(run_id)
    await store.set_tags(rid, v.tags({key: value}), user)
    return await get_tags(store, rid)


async def set_note(store: Store, run_id: str, note: str, user: str | None = None) -> None:
    """Replace a run's markdown note (at most 100,000 characters, no NUL), as ``user``."""
    if not isinstance(note, str):
        raise InvalidInput(f"note must be a string of markdown, got {type(note).__name__}")
    await store.set_note(v.run_id(run_id), v.text(note, "note"), user)

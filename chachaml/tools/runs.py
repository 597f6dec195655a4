"""Run operations: the writes (start, end, params, tags, notes, datasets, archive) and reads.

The reads are list, get, search, best, compare, export and metric history. Every surface (the
tracking client, the HTTP write API, MCP tools, UI actions) writes through these functions, so
a run is built, checked and ended one way. Metric points have their own module
(:mod:`chachaml.tools.metrics`).
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.alerts import AlertEvent
from chachaml.records.runs import (
    BestRun,
    Comparison,
    Dataset,
    Direction,
    EndStatus,
    MetricCondition,
    MetricSummary,
    NewRun,
    ParamValue,
    Run,
    RunInfo,
    RunQuery,
    StopRequest,
    to_datetime,
)
from chachaml.store.protocol import Store
from chachaml.store.server_state import ServerStore
from chachaml.tools import alerts as alert_ops
from chachaml.tools import deliveries
from chachaml.tools.webhooks import Delivery

log = logging.getLogger("chachaml")

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


MIN_PREFIX = 8  # shorter prefixes match too much to be what someone meant
FULL_ID = 32


async def resolve_run_id(store: Store, run_id: str) -> str:
    """The run id a copied prefix (8+ characters, as ``chachaml runs`` prints 12) names.

    A full id, or a string that is no prefix of any run, comes back as it is (the call then
    says "not found" in its own terms); a prefix of several runs is ``InvalidInput`` listing
    them, so a person or an agent can pick one. Every operation that names a run takes one.
    """
    rid = v.run_id(run_id)
    if len(rid) >= FULL_ID or len(rid) < MIN_PREFIX:
        return rid
    query = RunQuery(id_prefix=rid, include_archived=True, limit=6, order_by="started")
    found = [r.id for r in await store.query_runs(query)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        listed = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise InvalidInput(f"run id prefix {rid!r} is ambiguous: it starts {listed}")
    return rid


async def get_run(store: Store, run_id: str) -> Run:
    """One run in full (``run_id`` may be a unique prefix of 8 or more characters)."""
    return await store.get_run(await resolve_run_id(store, run_id))


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


async def query_runs(store: Store, query: RunQuery) -> list[RunInfo]:
    """Runs matching a query its caller built from checked parts (the Runs table)."""
    return await store.query_runs(query)


async def child_counts(store: Store, parent_ids: Sequence[str]) -> dict[str, int]:
    """How many child runs (pipeline steps, sweep trials) each run has; none: absent."""
    return await store.child_counts(parent_ids) if parent_ids else {}


async def run_params(store: Store, run_ids: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
    """Params of several runs (a listing's param columns), by run id."""
    return await store.run_params(run_ids) if run_ids else {}


KEY_SAMPLE = 200


def _newest(query: RunQuery, sample: int) -> RunQuery:
    """The runs keys are read from: the newest that match, child runs too.

    Neither the query's paging nor its order changes the sample, so a table built from it
    keeps its columns from page to page.
    """
    return query.model_copy(
        update={"limit": sample, "offset": 0, "order_by": "started", "direction": "max",
                "order_by_metric": None, "order_by_param": None, "top_level": False}
    )  # fmt: skip


def _ranked(maps: Sequence[Mapping[str, object]]) -> list[str]:
    counts = Counter(k for m in maps for k in m)
    return sorted(counts, key=lambda k: (-counts[k], k))


async def run_keys(store: Store, query: RunQuery, sample: int = KEY_SAMPLE) -> dict[str, list[str]]:
    """Metric, param and tag keys of the newest runs a query matches, most common first."""
    runs = await store.query_runs(_newest(query, sample))
    params = await run_params(store, [r.id for r in runs])
    return {
        "metrics": _ranked([r.metrics for r in runs]),
        "params": _ranked(list(params.values())),
        "tags": _ranked([r.tags for r in runs]),
    }


async def metric_keys(store: Store, query: RunQuery, sample: int = KEY_SAMPLE) -> list[str]:
    """The metric keys of :func:`run_keys` alone, most common first.

    The Runs table's default columns need no params: reading and decoding the sample's
    params was a quarter of the page's time.
    """
    return _ranked([r.metrics for r in await store.query_runs(_newest(query, sample))])


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
    ids = list(dict.fromkeys([await resolve_run_id(store, r) for r in run_ids]))
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
    query = RunQuery(
        experiment=v.filter_text(experiment, "experiment"),
        status=v.status(status),  # type: ignore[arg-type]
        created_by=v.filter_text(created_by, "created_by"),
        since=start,
        until=end,
        limit=limit if limit is None else v.limit(limit, None),
    )
    return await export_query(store, query)


async def export_query(store: Store, query: RunQuery) -> list[dict[str, Any]]:
    """:func:`export_runs` of a query its caller built (the Runs table's filter)."""
    runs = await store.query_runs(query)
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


async def child_runs(store: Store, parent_id: str, limit: int = 200) -> list[RunInfo]:
    """The runs started under ``parent_id`` (pipeline steps, sweep trials), oldest first."""
    query = RunQuery(
        parent_id=v.run_id(parent_id),
        include_archived=True,
        order_by="started",
        direction="min",
        limit=v.limit(limit, 1000),
    )
    return await store.query_runs(query)


# writes

END_STATUSES: tuple[str, ...] = ("completed", "failed", "killed", "stopped")
DEFAULT_HEARTBEAT_TIMEOUT = 3600.0


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, as a failed run records it.

    Made storable whatever the message: NUL spelled out, cut to the stores' text limit.
    """
    return v.storable("".join(traceback.format_exception_only(type(exc), exc)).strip())


def new_run(
    experiment: str,
    name: str | None = None,
    *,
    created_by: str,
    run_id: str | None = None,
    started_at: float | None = None,
    parent_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
) -> NewRun:
    """A checked :class:`NewRun` (a fresh id, started now, unless given); no I/O.

    Separate from :func:`start_run` so that a client refuses bad input before it opens a store.
    """
    return NewRun(
        id=uuid.uuid4().hex if run_id is None else run_id,
        experiment=v.name(experiment, "experiment"),
        name=None if name is None else v.name(name, "run name"),
        created_by=created_by,
        started_at=time.time() if started_at is None else started_at,
        parent_id=None if parent_id is None else v.run_id(parent_id),
        tags=v.tags(tags or {}),
        environment=dict(environment or {}),
        heartbeat_timeout=heartbeat_timeout,
    )


async def start_run(
    store: Store,
    new: NewRun,
    params: Mapping[str, Any] | None = None,
    delivery: Delivery | None = None,
) -> dict[str, ParamValue]:
    """Create a running run (from :func:`new_run`) with its first params; returns them checked.

    Params are checked before the run exists; if storing them fails, the run is ended failed
    (best effort) and the error raised, so no run is left running that nobody will end.
    """
    clean = v.params(params or {})
    await store.create_run(new)
    if clean:
        try:
            await store.log_params(new.id, clean)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await end_run(store, new.id, "failed", error_text(exc), delivery=delivery)
            raise
    return clean


async def log_params(store: Store, run_id: str, params: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Record params (immutable: the same value again is fine, another is ``Conflict``)."""
    clean = v.params(params)
    await store.log_params(v.run_id(run_id), clean)
    return clean


async def set_tags(
    store: Store, run_id: str, tags: Mapping[str, Any], user: str | None = None
) -> None:
    """Set (or overwrite) tags on a run, running or ended, as ``user``."""
    await store.set_tags(v.run_id(run_id), v.tags(tags), user)


async def log_dataset(store: Store, run_id: str, dataset: Dataset) -> Dataset:
    """Attach a dataset description (role, name, shape, features, source, digest) to a run."""
    await store.log_dataset(v.run_id(run_id), dataset)
    return dataset


async def heartbeat(
    store: Store, run_ids: Sequence[str], at: float | None = None
) -> list[StopRequest]:
    """Mark running runs alive at ``at`` (now); returns the stop requests pending for them.

    A run silent past its heartbeat timeout reads killed.
    """
    return await store.heartbeat([v.run_id(r) for r in run_ids], time.time() if at is None else at)


async def end_run(
    store: Store,
    run_id: str,
    status: EndStatus = "completed",
    error: str | None = None,
    ended_at: float | None = None,
    *,
    delivery: Delivery | None = None,
) -> list[AlertEvent]:
    """End a running run, then do what follows a run's end; returns the alerts that fired.

    ``Conflict`` if it had already ended; an ``ended_at`` (the caller's clock) before the
    run's start is refused. The error text is made storable, never refused. What follows:
    the metric alert rules are evaluated (their webhooks queued and this process's delivery
    workers woken); that never fails the end, trouble is logged.
    """
    if status not in END_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(END_STATUSES)}; got {status!r}")
    rid = v.run_id(run_id)
    error = v.storable_error(error)
    if ended_at is not None:  # the caller's clock: a run never ends before it started
        started = (await store.get_run(rid)).started_at  # to the microsecond
        if to_datetime(ended_at) < started:
            raise InvalidInput(
                f"ended_at ({to_datetime(ended_at).isoformat()}) is before run"
                f" {rid!r} started ({started.isoformat()})"
            )
    await store.end_run(rid, status, error, time.time() if ended_at is None else ended_at)
    return await evaluate_alerts(store, rid, delivery)


async def evaluate_alerts(
    store: Store, run_id: str, delivery: Delivery | None = None
) -> list[AlertEvent]:
    """Evaluate the metric rules on a run that changed: a few queries, no network.

    Webhooks of what fires are only queued (this process's delivery workers are woken to send
    them), so a write never waits on a webhook; alerts never fail the write either.
    """
    try:
        fired = await alert_ops.evaluate_run(store, run_id, delivery)
    except Exception as exc:
        log.warning("chachaml: evaluating alerts for run %s failed: %s", run_id, exc)
        return []
    if any(e.delivery == "pending" for e in fired):
        deliveries.wake()
    return fired


async def get_tags(store: Store, run_id: str) -> dict[str, str]:
    """A run's tags."""
    return (await get_run(store, run_id)).tags


async def add_tag(
    store: Store, run_id: str, key: str, value: str, user: str | None = None
) -> dict[str, str]:
    """Set one tag on a run (running or ended); returns the run's tags."""
    rid = await resolve_run_id(store, run_id)
    await set_tags(store, rid, {key: value}, user)
    return await get_tags(store, rid)


async def set_note(store: Store, run_id: str, note: str, user: str | None = None) -> None:
    """Replace a run's markdown note (at most 100,000 characters, no NUL), as ``user``."""
    if not isinstance(note, str):
        raise InvalidInput(f"note must be a string of markdown, got {type(note).__name__}")
    rid = await resolve_run_id(store, run_id)
    await store.set_note(rid, v.text(note, "note"), user)


async def metric_summaries_of_runs(
    store: ServerStore, run_ids: Sequence[str]
) -> dict[str, dict[str, MetricSummary]]:
    """Each metric's latest value, step and time for each of a page of runs, in one read.

    The ids come from a listing the caller just read, so they are not checked again (a
    thousand-run page would spend a millisecond on it); unknown ids map to nothing.
    """
    return await store.metric_summaries_of_runs(run_ids)


async def delete_tag(store: ServerStore, run_id: str, key: str) -> None:
    """Remove one tag from a run; ``NotFound`` if it has no such tag."""
    await store.delete_tag(v.run_id(run_id), v.key(key, "tag key"))


async def rename_run(store: ServerStore, run_id: str, name: str | None) -> None:
    """Give a run another name (``None`` or empty: unnamed)."""
    await store.rename_run(v.run_id(run_id), v.name(name, "run name") if name else None)


async def delete_run(store: ServerStore, run_id: str) -> None:
    """Archive one run, whatever its status (MLflow's delete): out of listings, restorable."""
    await store.set_run_archived(v.run_id(run_id), True)


async def restore_run(store: ServerStore, run_id: str) -> None:
    """Bring an archived run back into listings (until ``delete_archived`` has removed it)."""
    await store.set_run_archived(v.run_id(run_id), False)

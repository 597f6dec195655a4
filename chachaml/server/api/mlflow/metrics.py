"""MLflow's metric endpoints: log-metric, log-batch, get-history and the bulk-interval read.

Points go through the same packed-chunk ingest as native logging
(:func:`~chachaml.tools.metrics.pack_points` then
:func:`~chachaml.tools.metrics.log_run_metrics`, which also evaluates alert rules). Every
MLflow point carries its step (the client sends 0 when none is given) and its timestamp in
milliseconds; several points may share a step, as in MLflow. A run's latest value is the last
point logged at its highest step.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, NotRequired

import anyio.to_thread
from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs it on Python 3.11

from chachaml.errors import InvalidInput, NotFound
from chachaml.records.runs import MetricChunk, MetricSeries
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import entities, wire
from chachaml.server.api.mlflow.runs import RunRef, delivery, log_params, set_tags
from chachaml.tools import metrics as metric_ops
from chachaml.tools import runs as run_ops

api = Api()
Answer = dict[str, Any]
INT64 = 1 << 63
MAX_BATCH = 16 << 20  # bytes of a log-batch body (MLflow's client sends 1,000 points at most)
OFF_LOOP = 2000  # points: packing more happens in a worker thread
HISTORY_PAGE = 25_000  # MLflow's GET_METRIC_HISTORY_MAX_RESULTS
MAX_BULK_RUNS = 100
BULK_PER_RUN = 2500  # MLflow's MAX_RESULTS_PER_RUN for the bulk-interval read


class Metric(wire.Message):
    """One point as MLflow sends it (``value`` may be ``"NaN"``/``"Infinity"``)."""

    key: str = Field(max_length=250)
    value: float
    timestamp: int | None = Field(default=None, ge=-INT64, lt=INT64)
    step: int | None = Field(default=None, ge=-INT64, lt=INT64)
    model_id: str | None = Field(default=None, max_length=300)  # MLflow 3: its logged model


Int64 = Annotated[int, Field(ge=-INT64, lt=INT64)]


class Point(TypedDict):
    """One point of a batch, checked as :class:`Metric` is but kept a dict.

    A batch's 1,000 points validate four times faster as dicts than as models, and their
    columns are gathered straight from them.
    """

    key: Annotated[str, Field(max_length=250)]
    value: float
    timestamp: NotRequired[Int64 | None]
    step: NotRequired[Int64 | None]
    model_id: NotRequired[Annotated[str, Field(max_length=300)] | None]


class LogMetric(RunRef, Metric):
    """``runs/log-metric``."""


class LogBatch(RunRef):
    """``runs/log-batch``: metrics, params and tags of one run in one request."""

    metrics: list[Point] = Field(default_factory=list, max_length=100_000)
    params: list[wire.KeyValue] = Field(default_factory=list, max_length=10_000)
    tags: list[wire.KeyValue] = Field(default_factory=list, max_length=10_000)


def _chunks(run_id: str, metrics: list[Point]) -> list[MetricChunk]:
    """The points as one packed chunk per key (a missing step is MLflow's 0).

    Each column is one comprehension over the points of a key (a batch usually holds one
    key): a third of the time of appending point by point.
    """
    now = time.time()
    keys = list(dict.fromkeys(m["key"] for m in metrics))  # in the order they come
    by_key: dict[str, list[Point]] = {key: [] for key in keys}
    if len(keys) == 1:
        by_key[keys[0]] = metrics
    else:
        for m in metrics:
            by_key[m["key"]].append(m)
    columns: dict[str, metric_ops.Columns] = {
        key: (
            [m.get("step") or 0 for m in points],
            [m["value"] for m in points],
            [now if (at := m.get("timestamp")) is None else at / 1000.0 for m in points],
        )
        for key, points in by_key.items()
    }
    return metric_ops.pack_columns(run_id, columns)


def _point(m: Metric) -> Point:
    return {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}


async def _log_points(call: Call, run_id: str, metrics: list[Point]) -> None:
    if len(metrics) > OFF_LOOP:
        chunks = await anyio.to_thread.run_sync(_chunks, run_id, metrics)
    else:
        chunks = _chunks(run_id, metrics)
    await metric_ops.log_run_metrics(call.store, run_id, chunks, delivery=delivery(call))


class Heartbeats:
    """When this server last recorded each run's heartbeat, to record it once a second.

    A write to a run says it is alive (MLflow's client sends no heartbeat of its own), but
    a heartbeat is a write transaction of its own: one per ``log-batch`` cost a fifth of the
    request. Runs time out after tens of seconds, so a beat a second per server loses
    nothing; replicas each keep their own, in memory, as a cache of no consequence.
    """

    EVERY = 1.0  # seconds
    MOST = 10_000  # runs remembered; beyond, the memory starts again

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def due(self, run_id: str, now: float) -> bool:
        """Whether ``run_id``'s heartbeat should be written now (and note that it is)."""
        last = self._last.get(run_id)
        if last is not None and 0 <= now - last < self.EVERY:
            return False
        if len(self._last) >= self.MOST:
            self._last.clear()
        self._last[run_id] = now
        return True


async def _heartbeat(call: Call, run_id: str) -> None:
    """Record that the run is alive, at most once a second per run (:class:`Heartbeats`)."""
    now = time.time()
    beats: Heartbeats | None = getattr(call.request.app.state, "mlflow_heartbeats", None)
    if beats is None or beats.due(run_id, now):
        await run_ops.heartbeat(call.store, [run_id], now)


@api.route("POST", "/runs/log-metric", scope="write", body=LogMetric, response=Answer)
async def log_metric(call: Call) -> Answer:
    """Log one metric point."""
    body: LogMetric = call.body
    rid = body.rid
    await _log_points(call, rid, [_point(body)])
    await _heartbeat(call, rid)
    return {}


@api.route(
    "POST",
    "/runs/log-batch",
    scope="write",
    body=LogBatch,
    response=Answer,
    bounded_ints=True,
    from_json=True,
    max_body=MAX_BATCH,
)
async def log_batch(call: Call) -> Answer:
    """Log metrics, params and tags of one run: params first, then tags, then the points."""
    body: LogBatch = call.body
    rid = body.rid
    if body.params:
        params: dict[str, str] = {}
        for p in body.params:
            if params.setdefault(p.key, p.value) != p.value:
                raise InvalidInput(f"param {p.key!r} is given twice with different values")
        await log_params(call, rid, params)
    if body.tags:
        await set_tags(call, rid, {t.key: t.value for t in body.tags})
    metrics = await _unlinked(call, rid, body.metrics)
    if metrics:
        await _log_points(call, rid, metrics)
    await _heartbeat(call, rid)
    return {}


async def _unlinked(call: Call, run_id: str, metrics: list[Point]) -> list[Point]:
    """The points to log, without copies that only link a run's point to a logged model.

    MLflow 3's ``log_model`` sends the run's points at the model's step again with the
    model's id; MLflow stores an identical point once, and chachaml reads a logged model's
    metrics from its run, so such a copy is skipped. A new point naming a model is logged.
    """
    linked = {m["key"] for m in metrics if m.get("model_id")}
    if not linked:
        return metrics
    stored: set[tuple[str, int, int, float | None]] = set()
    for key in linked:
        series = await _series(call, run_id, key)
        if series is not None:
            stored.update(
                (key, step, round(at * 1000), value)
                for step, at, value in zip(
                    series.steps, series.timestamps, series.values, strict=True
                )
            )
    return [
        m for m in metrics
        if not (m.get("model_id")
                and (m["key"], m.get("step") or 0, m.get("timestamp"), m["value"]) in stored)
    ]  # fmt: skip


def _history(series: MetricSeries, start: int, stop: int) -> list[dict[str, Any]]:
    return [
        {
            "key": series.key,
            "value": entities.number(series.values[i]),
            "timestamp": round(series.timestamps[i] * 1000),
            "step": series.steps[i],
        }
        for i in range(start, min(stop, len(series.steps)))
    ]


async def _series(
    call: Call, run_id: str, key: str, start: int | None = None, end: int | None = None
) -> MetricSeries | None:
    """A metric's history (of steps ``start..end``); ``None`` if the run never logged it."""
    try:
        return await metric_ops.metric_history(
            call.store, run_id, key, min_step=start, max_step=end
        )
    except NotFound:
        await run_ops.get_run(call.store, run_id)  # NotFound for a run that does not exist
        return None


@api.route("GET", "/metrics/get-history", scope="read", response=Answer)
async def get_metric_history(call: Call) -> Answer:
    """Every point of one metric of a run, by step, in pages."""
    run_id = wire.required_param(call, "run_id", "run_uuid")
    key = wire.required_param(call, "metric_key")
    size = wire.max_results(wire.int_param(call, "max_results"), HISTORY_PAGE, 1 << 30)
    offset = wire.page_offset(wire.text_param(call, "page_token", required=False))
    series = await _series(call, run_id, key)
    if series is None:
        return {"metrics": []}
    answer: Answer = {"metrics": _history(series, offset, offset + size)}
    if offset + size < len(series.steps):
        answer["next_page_token"] = wire.page_token(offset + size)
    return answer


def _sampled(series: MetricSeries, start: int | None, end: int | None, most: int) -> list[int]:
    """Indexes of up to ``most`` points spread evenly over the steps (first and last kept)."""
    picked = [
        i
        for i, s in enumerate(series.steps)
        if (start is None or s >= start) and (end is None or s <= end)
    ]
    if len(picked) <= most:
        return picked
    if most == 1:
        return [picked[-1]]
    stride = (len(picked) - 1) / (most - 1)
    return sorted({picked[round(n * stride)] for n in range(most)})


@api.route("GET", "/metrics/get-history-bulk-interval", scope="read", response=Answer)
async def get_history_bulk_interval(call: Call) -> Answer:
    """A metric of several runs, at most ``max_results`` points each, spread over the steps."""
    run_ids = call.request.query_params.getlist("run_ids")
    if not run_ids or len(run_ids) > MAX_BULK_RUNS:
        raise InvalidInput(f"give 1 to {MAX_BULK_RUNS} run_ids")
    key = wire.required_param(call, "metric_key")
    most = wire.max_results(wire.int_param(call, "max_results"), BULK_PER_RUN, BULK_PER_RUN)
    start, end = wire.int_param(call, "start_step"), wire.int_param(call, "end_step")
    if (start is None) != (end is None):
        raise InvalidInput("give both start_step and end_step, or neither")
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"end_step ({end}) must not be before start_step ({start})")
    out: list[dict[str, Any]] = []
    for run_id in run_ids:
        series = await _series(call, run_id, key, start, end)  # reads only those chunks
        if series is None:
            continue
        for i in _sampled(series, start, end, most):
            point = _history(series, i, i + 1)[0]
            point["run_id"] = series.run_id
            out.append(point)
    return {"metrics": out}

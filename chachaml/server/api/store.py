"""The store read API, version 1, under ``/api/store/v1/``: what a remote Python client reads.

With ``CHACHAML_STORE=http://host:8080`` the tracking client's
:class:`~chachaml.client.remote.RemoteStore` reads here (and writes through ``/api/w/``), so
the client's queries (``runs``, ``best_run``, ``compare_runs``, ``load_artifact``, the
registry's reads) run the same operations as against a local store. The paths and bodies are
a wire schema of their own, declared with pydantic models and published in the OpenAPI
document; ``v1`` is in the path so that a later incompatible change is a ``v2`` served beside
it, not a silent break of clients already deployed in training jobs. Pipelines and alert
rules are read from their own modules (:mod:`~chachaml.server.api.pipelines`,
:mod:`~chachaml.server.api.alerts`) under the same prefix. Reads need a token when the
server protects reads.
"""

from __future__ import annotations

import base64

from starlette.responses import StreamingResponse

from chachaml.records.registry import Model, ModelDetail, ModelVersion
from chachaml.records.runs import Artifact, Experiment, MetricSeries, MetricSummary, Run, RunQuery
from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import INT64, Api, Call
from chachaml.server.errors import ApiError
from chachaml.store.artifacts import ArtifactStore, StoredObject, uri_digest
from chachaml.store.codec import pack_arrays, pack_positions
from chachaml.tools import registry as registry_ops

api = Api()
PREFIX = "/api/store/v1"
RUN = PREFIX + "/runs/{run_id}"
ERR = (401, 403, 404)


@api.route("GET", RUN, scope="read", response=Run, errors=ERR)
async def get_run(call: Call) -> Run:
    """Everything about one run."""
    return await call.store.get_run(call.path("run_id"))


@api.route("POST", PREFIX + "/runs/query", scope="read", body=RunQuery, response=m.RunList,
           errors=ERR)  # fmt: skip
async def query_runs(call: Call) -> m.RunList:
    """Runs matching a query (the store's ``RunQuery``)."""
    return m.RunList(runs=await call.store.query_runs(call.body))


@api.route("POST", PREFIX + "/runs/count", scope="read", body=RunQuery, response=m.Count,
           errors=ERR)  # fmt: skip
async def count_runs(call: Call) -> m.Count:
    """How many runs match a query."""
    return m.Count(count=await call.store.count_runs(call.body))


@api.route("POST", PREFIX + "/params", scope="read", body=m.RunIds, response=m.ParamsByRun,
           errors=ERR)  # fmt: skip
async def run_params(call: Call) -> m.ParamsByRun:
    """Params of several runs."""
    return m.ParamsByRun(params=await call.store.run_params(call.body.run_ids))


@api.route("POST", PREFIX + "/runs/child-counts", scope="read", body=m.RunIds,
           response=m.ChildCounts, errors=ERR)  # fmt: skip
async def child_counts(call: Call) -> m.ChildCounts:
    """How many child runs each of several runs has."""
    return m.ChildCounts(counts=await call.store.child_counts(call.body.run_ids))


@api.route("GET", RUN + "/metrics", scope="read", response=dict[str, MetricSummary], errors=ERR)
async def metric_summaries(call: Call) -> dict[str, MetricSummary]:
    """Latest value, step and range of each metric of a run."""
    return await call.store.metric_summaries(call.path("run_id"))


STEP_RANGE = (("min_step", "integer", False), ("max_step", "integer", False))
MAX_POINTS = 1_000_000  # a chart's points asked of metric_outline


def _step(call: Call, name: str) -> int | None:
    """An optional step bound from the query string (a 422 unless a 64-bit integer)."""
    raw = call.request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if not -INT64 <= value < INT64:
        raise ApiError(422, f"query parameter {name!r} must fit in 64 bits, got {value}")
    return value


@api.route("GET", RUN + "/metrics/{key:path}", scope="read", response=MetricSeries, errors=ERR,
           query=STEP_RANGE)  # fmt: skip
async def metric_history(call: Call) -> MetricSeries:
    """The points of one metric, by step, optionally in a step range (NaN values as null)."""
    return await call.store.metric_history(
        call.path("run_id"), call.path("key"),
        min_step=_step(call, "min_step"), max_step=_step(call, "max_step"),
    )  # fmt: skip


@api.route("GET", RUN + "/series/{key:path}", scope="read", response=m.PackedPoints, errors=ERR,
           query=STEP_RANGE)  # fmt: skip
async def packed_history(call: Call) -> m.PackedPoints:
    """The points of one metric as packed base64 arrays (NaN stays NaN, infinities kept)."""
    points = await call.store.metric_points(
        call.path("run_id"), call.path("key"),
        min_step=_step(call, "min_step"), max_step=_step(call, "max_step"),
    )  # fmt: skip
    packed = pack_arrays(points.steps, points.values, points.timestamps)
    steps, vals, times = (base64.b64encode(b).decode() for b in packed)
    return m.PackedPoints(key=points.key, steps=steps, values=vals, timestamps=times,
                          total=points.total, first_step=points.first_step,
                          last_step=points.last_step)  # fmt: skip


@api.route("GET", RUN + "/outline/{key:path}", scope="read", response=m.PackedOutline,
           errors=ERR, query=(*STEP_RANGE, ("points", "integer", True)))  # fmt: skip
async def packed_outline(call: Call) -> m.PackedOutline:
    """A step range of one metric for a chart of ``points`` points, packed.

    The store's ``metric_outline``: ``positions`` (int64, base64; null when every point of the
    range is returned) places each point among the ``in_range`` points of the range.
    """
    points = _step(call, "points")
    if points is None or not 1 <= points <= MAX_POINTS:
        got = "nothing" if points is None else points
        raise ApiError(422, f"query parameter 'points' must be 1 to {MAX_POINTS}, got {got}")
    found = await call.store.metric_outline(
        call.path("run_id"), call.path("key"),
        min_step=_step(call, "min_step"), max_step=_step(call, "max_step"), points=points,
    )  # fmt: skip
    packed = pack_arrays(found.steps, found.values, found.timestamps)
    steps, vals, times = (base64.b64encode(b).decode() for b in packed)
    where = None if found.positions is None else pack_positions(found.positions)
    outlined = base64.b64encode(pack_positions(found.outlined)).decode()
    return m.PackedOutline(key=found.key, steps=steps, values=vals, timestamps=times,
                           total=found.total, first_step=found.first_step,
                           last_step=found.last_step, in_range=found.in_range,
                           positions=None if where is None
                           else base64.b64encode(where).decode(),
                           outlined=outlined)  # fmt: skip


@api.route("GET", RUN + "/artifacts", scope="read", response=m.ArtifactList, errors=ERR)
async def list_artifacts(call: Call) -> m.ArtifactList:
    """A run's artifact records."""
    return m.ArtifactList(artifacts=await call.store.list_artifacts(call.path("run_id")))


@api.route("GET", RUN + "/artifacts/{name:path}", scope="read", response=Artifact, errors=ERR)
async def get_artifact(call: Call) -> Artifact:
    """One artifact record."""
    return await call.store.get_artifact(call.path("run_id"), call.path("name"))


@api.route("POST", PREFIX + "/objects/contains", scope="read", body=m.ObjectRef,
           response=m.Contained, errors=(401, 403, 422))  # fmt: skip
async def contains_object(call: Call) -> m.Contained:
    """Whether an object is stored, complete, under its hash (before uploading it again)."""
    body: m.ObjectRef = call.body
    if uri_digest(body.uri) != body.sha256:
        raise ApiError(422, f"uri {body.uri!r} does not name the object with sha256 {body.sha256}")
    obj = StoredObject(body.uri, body.sha256, body.size)
    return m.Contained(stored=await _artifact_store(call).contains(obj))


def _artifact_store(call: Call) -> ArtifactStore:
    artifacts: ArtifactStore | None = call.request.app.state.artifacts
    if artifacts is None:
        raise ApiError(503, "this server has no artifact store")
    return artifacts


@api.route("GET", PREFIX + "/objects/{uri:path}", scope="read", binary_response=True,
           errors=(*ERR, 422))  # fmt: skip
async def get_object(call: Call) -> StreamingResponse:
    """The bytes of a stored object (``objects/ab/cdef...``), streamed block by block."""
    uri = call.path("uri")
    uri_digest(uri)
    artifacts = _artifact_store(call)
    # NotFound before the first byte. The reader checks the hash against its record
    # (RemoteStore's load_artifact does): a transfer cut short here would hide the cause.
    blocks = await artifacts.open_stream(uri, verify=False)
    return StreamingResponse(blocks, media_type="application/octet-stream")


@api.route("GET", PREFIX + "/experiments", scope="read", response=list[Experiment],
           errors=(401, 403))  # fmt: skip
async def list_experiments(call: Call) -> list[Experiment]:
    """Every experiment, most recently active first."""
    return await call.store.list_experiments()


@api.route("GET", PREFIX + "/experiments/{name:path}", scope="read", response=Experiment,
           errors=ERR)  # fmt: skip
async def get_experiment(call: Call) -> Experiment:
    """One experiment."""
    return await call.store.get_experiment(call.path("name"))


@api.route("GET", PREFIX + "/models", scope="read", response=list[Model], errors=(401, 403))
async def list_models(call: Call) -> list[Model]:
    """Every registered model."""
    return await call.store.list_models()


@api.route("GET", PREFIX + "/models/{name}", scope="read", response=ModelDetail, errors=ERR)
async def get_model(call: Call) -> ModelDetail:
    """A model with its versions, note and history."""
    return await call.store.get_model(call.path("name"))


@api.route("GET", PREFIX + "/models/{name}/versions/{version:int}", scope="read",
           response=ModelVersion, errors=(*ERR, 422))  # fmt: skip
async def get_model_version(call: Call) -> ModelVersion:
    """One model version."""
    version = registry_ops.check_version(call.request.path_params["version"])
    return await call.store.get_model_version(call.path("name"), version)

"""Store reads over HTTP under ``/api/store/``: what the remote Python client needs.

With ``CHACHAML_STORE=http://host:8080`` the tracking client's
:class:`~chachaml.client.remote.RemoteStore` answers the ``Store`` protocol's reads here, so the
client's queries (``runs``, ``best_run``, ``compare_runs``, ``load_artifact``, the registry's
reads) run the same operations as against a local store. Reads need a token when the server
protects reads.
"""

from __future__ import annotations

import base64
import math

from starlette.responses import StreamingResponse

from chachaml.records.registry import Model, ModelDetail, ModelVersion
from chachaml.records.runs import Artifact, Experiment, MetricSeries, MetricSummary, Run, RunQuery
from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.errors import ApiError
from chachaml.store.artifacts import ArtifactStore, uri_digest
from chachaml.store.codec import pack_columns
from chachaml.tools import registry as registry_ops

api = Api()
RUN = "/api/store/runs/{run_id}"
ERR = (401, 403, 404)


@api.route("GET", RUN, scope="read", response=Run, errors=ERR)
async def get_run(call: Call) -> Run:
    """Everything about one run."""
    return await call.store.get_run(call.path("run_id"))


@api.route("POST", "/api/store/runs/query", scope="read", body=RunQuery, response=m.RunList,
           errors=ERR)  # fmt: skip
async def query_runs(call: Call) -> m.RunList:
    """Runs matching a query (the store's ``RunQuery``)."""
    return m.RunList(runs=await call.store.query_runs(call.body))


@api.route("POST", "/api/store/runs/count", scope="read", body=RunQuery, response=m.Count,
           errors=ERR)  # fmt: skip
async def count_runs(call: Call) -> m.Count:
    """How many runs match a query."""
    return m.Count(count=await call.store.count_runs(call.body))


@api.route("POST", "/api/store/params", scope="read", body=m.RunIds, response=m.ParamsByRun,
           errors=ERR)  # fmt: skip
async def run_params(call: Call) -> m.ParamsByRun:
    """Params of several runs."""
    return m.ParamsByRun(params=await call.store.run_params(call.body.run_ids))


@api.route("GET", RUN + "/metrics", scope="read", response=dict[str, MetricSummary], errors=ERR)
async def metric_summaries(call: Call) -> dict[str, MetricSummary]:
    """Latest value, step and range of each metric of a run."""
    return await call.store.metric_summaries(call.path("run_id"))


@api.route("GET", RUN + "/metrics/{key:path}", scope="read", response=MetricSeries, errors=ERR)
async def metric_history(call: Call) -> MetricSeries:
    """Every point of one metric, by step (NaN values as null)."""
    return await call.store.metric_history(call.path("run_id"), call.path("key"))


@api.route("GET", RUN + "/series/{key:path}", scope="read", response=m.PackedSeries, errors=ERR)
async def packed_history(call: Call) -> m.PackedSeries:
    """Every point of one metric as packed base64 arrays (NaN stays NaN, infinities kept)."""
    series = await call.store.metric_history(call.path("run_id"), call.path("key"))
    values = [math.nan if x is None else x for x in series.values]
    packed = pack_columns(series.steps, values, series.timestamps)
    steps, vals, times = (base64.b64encode(b).decode() for b in packed)
    return m.PackedSeries(key=series.key, steps=steps, values=vals, timestamps=times)


@api.route("GET", RUN + "/artifacts", scope="read", response=m.ArtifactList, errors=ERR)
async def list_artifacts(call: Call) -> m.ArtifactList:
    """A run's artifact records."""
    return m.ArtifactList(artifacts=await call.store.list_artifacts(call.path("run_id")))


@api.route("GET", RUN + "/artifacts/{name:path}", scope="read", response=Artifact, errors=ERR)
async def get_artifact(call: Call) -> Artifact:
    """One artifact record."""
    return await call.store.get_artifact(call.path("run_id"), call.path("name"))


@api.route("GET", "/api/store/objects/{uri:path}", scope="read", binary_response=True,
           errors=(*ERR, 422))  # fmt: skip
async def get_object(call: Call) -> StreamingResponse:
    """The bytes of a stored object (``objects/ab/cdef...``), streamed block by block."""
    uri = call.path("uri")
    uri_digest(uri)
    artifacts: ArtifactStore | None = call.request.app.state.artifacts
    if artifacts is None:
        raise ApiError(503, "this server has no artifact store")
    # NotFound before the first byte. The reader checks the hash against its record
    # (RemoteStore's load_artifact does): a transfer cut short here would hide the cause.
    blocks = await artifacts.open_stream(uri, verify=False)
    return StreamingResponse(blocks, media_type="application/octet-stream")


@api.route("GET", "/api/store/experiments", scope="read", response=list[Experiment],
           errors=(401, 403))  # fmt: skip
async def list_experiments(call: Call) -> list[Experiment]:
    """Every experiment, most recently active first."""
    return await call.store.list_experiments()


@api.route("GET", "/api/store/experiments/{name:path}", scope="read", response=Experiment,
           errors=ERR)  # fmt: skip
async def get_experiment(call: Call) -> Experiment:
    """One experiment."""
    return await call.store.get_experiment(call.path("name"))


@api.route("GET", "/api/store/models", scope="read", response=list[Model], errors=(401, 403))
async def list_models(call: Call) -> list[Model]:
    """Every registered model."""
    return await call.store.list_models()


@api.route("GET", "/api/store/models/{name}", scope="read", response=ModelDetail, errors=ERR)
async def get_model(call: Call) -> ModelDetail:
    """A model with its versions, note and history."""
    return await call.store.get_model(call.path("name"))


@api.route("GET", "/api/store/models/{name}/versions/{version:int}", scope="read",
           response=ModelVersion, errors=(*ERR, 422))  # fmt: skip
async def get_model_version(call: Call) -> ModelVersion:
    """One model version."""
    version = registry_ops.check_version(call.request.path_params["version"])
    return await call.store.get_model_version(call.path("name"), version)

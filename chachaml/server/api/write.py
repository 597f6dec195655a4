"""The HTTP write API under ``/api/w/``, each endpoint a thin call of an operation.

Runs, params, metrics, tags, notes, datasets, artifacts, experiments and the model registry.

Writes need a write-scoped bearer token (see :mod:`chachaml.server.tokens`); the token's
user is who a new run, model version or promotion is attributed to.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from chachaml.errors import InvalidInput, NotFound
from chachaml.records import validation as v
from chachaml.records.registry import ModelVersion
from chachaml.records.runs import Artifact, Dataset, Experiment, MetricChunk, StopRequest
from chachaml.server.access import principal_of
from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.errors import ApiError
from chachaml.store.artifacts import ArtifactStore, StoredObject, validate_artifact_name
from chachaml.store.codec import make_chunk, unpack_chunk
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import metrics as metric_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import retention
from chachaml.tools import runs as run_ops
from chachaml.tools import watch as watch_ops
from chachaml.tools.webhooks import Delivery

T = TypeVar("T")
api = Api()
MAX_BATCH = 16 << 20  # a metric batch's body: the Python client sends far less per request
SLICE = 2_000  # points validated per call in a big batch
OFF_LOOP = 20_000  # points (or base64 characters) beyond which packing leaves the loop
BATCH: TypeAdapter[m.MetricBatch | m.MetricValues] = TypeAdapter(m.MetricBatch | m.MetricValues)
POINTS = TypeAdapter(list[m.MetricPoint])
SERIES = TypeAdapter(list[m.PackedSeries])
RUN = "/api/w/runs/{run_id}"
ERR = (401, 403, 404, 422)


def _artifacts(call: Call) -> ArtifactStore:
    store: ArtifactStore | None = call.request.app.state.artifacts
    if store is None:
        raise ApiError(503, "this server has no artifact store")
    return store


def _limit(call: Call) -> int:
    limit: int = call.request.app.state.max_upload_bytes
    return limit


@api.route("POST", "/api/w/runs", scope="write", body=m.CreateRun, response=m.RunCreated,
           status=201, errors=ERR)  # fmt: skip
async def create_run(call: Call) -> m.RunCreated:
    """Start a run, attributed to the token's user."""
    body: m.CreateRun = call.body
    user = call.user
    if body.created_by and principal_of(call.request).via == "local":
        user = body.created_by  # local mode trusts the client's user; a token's user wins
    new = run_ops.new_run(
        body.experiment,
        body.name,
        created_by=user,
        run_id=body.id,
        started_at=body.started_at,
        parent_id=body.parent_id,
        tags=body.tags,
        environment=body.environment,
        heartbeat_timeout=body.heartbeat_timeout,
    )
    await run_ops.start_run(call.store, new, body.params, _delivery(call))
    return m.RunCreated(id=new.id, created_by=user)


@api.route("POST", RUN + "/params", scope="write", body=m.Params, response=m.Ok,
           errors=(*ERR, 409))  # fmt: skip
async def log_params(call: Call) -> m.Ok:
    """Record params; the same value again is fine, a different one is a 409."""
    params: m.Params = call.body
    await run_ops.log_params(call.store, call.path("run_id"), params.root)
    return m.Ok()


def _series_chunk(run_id: str, series: m.PackedSeries) -> MetricChunk:
    try:
        raw = [base64.b64decode(x, validate=True) for x in (series.steps, series.values,
                                                             series.timestamps)]  # fmt: skip
    except ValueError:  # binascii.Error, or non-ASCII text
        msg = f"series {series.key!r}: steps, values and timestamps must be base64"
        raise InvalidInput(msg) from None
    if any(len(x) % 8 for x in raw) or not len(raw[0]) == len(raw[1]) == len(raw[2]) != 0:
        raise InvalidInput(
            f"series {series.key!r}: steps, values and timestamps must be equally long,"
            " non-empty arrays of 8-byte numbers"
        )
    steps, values, times = unpack_chunk(*raw)
    if not all(0 <= t <= m.LAST_SECOND for t in times):
        raise InvalidInput(f"series {series.key!r}: timestamps must be seconds since the epoch")
    return make_chunk(
        run_id, v.key(series.key, "metric key"), list(zip(steps, values, times, strict=True))
    )


async def _point_chunks(call: Call, run_id: str, points: list[m.MetricPoint]) -> list[MetricChunk]:
    summaries = await metric_ops.next_steps(call.store, run_id) if points else {}
    return await _off_loop(len(points), metric_ops.pack_points, run_id, points, summaries)


async def _off_loop(weight: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a worker thread when ``weight`` (points, bytes) makes it slow."""
    if weight <= OFF_LOOP:
        return fn(*args)
    return await anyio.to_thread.run_sync(fn, *args)


def _delivery(call: Call) -> Delivery:
    delivery: Delivery = call.request.app.state.delivery
    return delivery


def _validate_batch(data: Any) -> m.MetricBatch | m.MetricValues:
    """Validate a big metric batch ``SLICE`` points at a time.

    Each slice is one short hold of the GIL, so the event loop keeps its turn while a worker
    thread validates the batch.
    """
    lists = {f: data.get(f) for f in ("metrics", "series")} if isinstance(data, dict) else {}
    if not all(isinstance(x, list | None) for x in lists.values()) or not any(
        isinstance(x, list) and len(x) > SLICE for x in lists.values()
    ):
        return BATCH.validate_python(data)
    head = BATCH.validate_python({**data, "metrics": [], "series": []})
    assert isinstance(head, m.MetricBatch)  # a list is no metric value
    parts: dict[str, list[Any]] = {}
    for name, adapter in (("metrics", POINTS), ("series", SERIES)):
        items: list[Any] = lists[name] or []
        parts[name] = []
        for start in range(0, len(items), SLICE):
            try:
                parts[name] += adapter.validate_python(items[start : start + SLICE])
            except ValidationError as exc:
                raise _slice_error(exc, name, start) from None
    return head.model_copy(update=parts)


def _slice_error(exc: ValidationError, name: str, start: int) -> ApiError:
    fields = [
        {"loc": ["body", name, start + int(e["loc"][0]), *e["loc"][1:]], "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    where = ".".join(str(p) for p in fields[0]["loc"])
    return ApiError(422, f"invalid request: {where}: {fields[0]['message']}", fields)


@api.route("POST", RUN + "/metrics", scope="write", body=m.MetricBatch | m.MetricValues,
           response=m.MetricsLogged, errors=ERR, bounded_ints=True, max_body=MAX_BATCH,
           validate=_validate_batch)  # fmt: skip
async def log_metrics(call: Call) -> m.MetricsLogged:
    """Log metrics: ``{"accuracy": 0.94}`` or a batch ``{"metrics": [...], "series": [...]}``."""
    run_id = (await run_ops.get_run(call.store, call.path("run_id"))).id  # a prefix too
    body: m.MetricBatch | m.MetricValues = call.body
    if isinstance(body, m.MetricValues):
        points = [m.MetricPoint(key=k, value=val) for k, val in body.root.items()]
        chunks = await _point_chunks(call, run_id, points)
    else:
        size = sum(len(s.steps) for s in body.series)
        chunks = await _off_loop(size, lambda: [_series_chunk(run_id, s) for s in body.series])
        chunks += await _point_chunks(call, run_id, body.metrics)
    stored = await metric_ops.log_run_metrics(
        call.store, run_id, chunks, batch=call.batch, delivery=_delivery(call)
    )
    return m.MetricsLogged(points=stored)


@api.route("POST", RUN + "/tags", scope="write", body=m.Tags, response=m.Tags, errors=ERR)
async def set_tags(call: Call) -> m.Tags:
    """Set tags on a run (running or ended); returns all its tags."""
    run_id = call.path("run_id")
    await run_ops.set_tags(call.store, run_id, call.body.root, call.user)
    return m.Tags(await run_ops.get_tags(call.store, run_id))


@api.route("POST", RUN + "/note", scope="write", body=m.Note, response=m.Ok, errors=ERR)
async def set_note(call: Call) -> m.Ok:
    """Replace a run's markdown note."""
    await run_ops.set_note(call.store, call.path("run_id"), call.body.note, call.user)
    return m.Ok()


@api.route("POST", RUN + "/datasets", scope="write", body=Dataset, response=m.Ok, errors=ERR)
async def log_dataset(call: Call) -> m.Ok:
    """Attach a dataset description (role, name, shape, features, source, digest)."""
    await run_ops.log_dataset(call.store, call.path("run_id"), call.body)
    return m.Ok()


@api.route("POST", RUN + "/end", scope="write", body=m.EndRun, response=m.Ok,
           errors=(*ERR, 409))  # fmt: skip
async def end_run(call: Call) -> m.Ok:
    """End a running run (completed, failed or killed); ending it twice is a 409."""
    body: m.EndRun = call.body
    await run_ops.end_run(call.store, call.path("run_id"), body.status, body.error,
                          body.ended_at, delivery=_delivery(call))  # fmt: skip
    return m.Ok()


@api.route("POST", "/api/w/heartbeat", scope="write", body=m.Heartbeat,
           response=m.HeartbeatReply, errors=(401, 403, 422))  # fmt: skip
async def heartbeat(call: Call) -> m.HeartbeatReply:
    """Mark running runs alive now; the reply lists who asked any of them to stop, and why.

    A run silent past its heartbeat timeout reads killed.
    """
    return m.HeartbeatReply(stops=await run_ops.heartbeat(call.store, call.body.run_ids))


@api.route("POST", RUN + "/stop", scope="write", body=m.StopRun, response=StopRequest,
           errors=(*ERR, 409))  # fmt: skip
async def stop_run(call: Call) -> StopRequest:
    """Ask a running run to stop, as the token's user; its process sees it at its next heartbeat.

    Asking again returns the first request; a run that ended (or reads killed) is a 409.
    """
    return await watch_ops.stop_run(call.store, call.path("run_id"), call.body.reason, call.user)


async def _spool(call: Call) -> tuple[Path, str | None, dict[str, str]]:
    """Stream a multipart upload's ``file`` part to a temporary file, within the size limit."""
    limit = _limit(call)
    declared = call.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 65536:
        raise ApiError(413, f"upload is larger than {limit} bytes")
    if not call.request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "upload artifacts as multipart/form-data with a 'file' part")
    try:
        async with call.request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(422, "the form needs a 'file' part",
                               [{"loc": ["body", "file"], "message": "missing"}])  # fmt: skip
            fields = {k: x for k, x in form.items() if isinstance(x, str)}
            fd, tmp = tempfile.mkstemp(prefix="chachaml-upload-")
            path = Path(tmp)
            size = 0
            try:
                with open(fd, "wb") as out:
                    while chunk := await upload.read(1 << 20):
                        size += len(chunk)
                        if size > limit:
                            raise ApiError(413, f"upload is larger than {limit} bytes")
                        out.write(chunk)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return path, upload.filename, fields | {"content_type": upload.content_type or ""}
    except MultiPartException as exc:
        raise ApiError(422, f"malformed multipart body: {exc.message}") from None


@api.route("POST", RUN + "/artifacts", scope="write", body_kind="multipart", response=Artifact,
           status=201, errors=(*ERR, 413, 415))  # fmt: skip
async def upload_artifact(call: Call) -> Artifact:
    """Upload a file as an artifact (multipart: ``file``, optional ``name``), streamed."""
    run_id = (await run_ops.get_run(call.store, call.path("run_id"))).id  # a prefix too
    path, filename, fields = await _spool(call)
    try:
        name = validate_artifact_name(fields.get("name") or filename or "")
        return await artifact_ops.put_file(call.store, _artifacts(call), run_id, name, path,
                                           content_type=fields["content_type"] or None)  # fmt: skip
    finally:
        path.unlink(missing_ok=True)


@api.route("POST", "/api/w/objects", scope="write", body_kind="binary",
           response=m.StoredObjectOut, status=201, errors=(401, 403, 413))  # fmt: skip
async def upload_object(call: Call) -> m.StoredObjectOut:
    """Upload raw bytes (``application/octet-stream``); record them with ``artifact-records``."""
    limit = _limit(call)
    fd, tmp = tempfile.mkstemp(prefix="chachaml-object-")
    path = Path(tmp)
    try:
        size = 0
        async with await anyio.open_file(fd, "wb") as out:
            declared = call.request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ApiError(413, f"upload is larger than {limit} bytes")
            async for chunk in call.request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"upload is larger than {limit} bytes")
                await out.write(chunk)
        obj = await _artifacts(call).put_file(path)
    finally:
        path.unlink(missing_ok=True)
    return m.StoredObjectOut(uri=obj.uri, sha256=obj.sha256, size=obj.size)


@api.route("POST", RUN + "/artifact-records", scope="write", body=m.ArtifactRecordIn,
           response=Artifact, status=201, errors=ERR)  # fmt: skip
async def record_artifact(call: Call) -> Artifact:
    """Record an artifact of a run from an uploaded object (replacing one of that name)."""
    body: m.ArtifactRecordIn = call.body
    obj = StoredObject(body.uri, body.sha256, body.size)
    return await artifact_ops.record_object(call.store, _artifacts(call), call.path("run_id"),
                                            body.name, obj, content_type=body.content_type,
                                            serializer=body.serializer)  # fmt: skip


@api.route("POST", "/api/w/archive", scope="write", body=m.Archive, response=m.Count,
           errors=(401, 403, 422))  # fmt: skip
async def archive_runs(call: Call) -> m.Count:
    """Archive ended runs started before ``started_before``; returns how many."""
    body: m.Archive = call.body
    return m.Count(count=await retention.archive_runs(call.store, body.started_before,
                                                    body.experiment))  # fmt: skip


@api.route("POST", "/api/w/archived/delete", scope="admin", body=m.DeleteArchived,
           response=m.Count, errors=(401, 403, 422))  # fmt: skip
async def delete_archived(call: Call) -> m.Count:
    """Delete archived runs and the artifact files no other run or model uses; how many runs."""
    artifacts: ArtifactStore | None = call.request.app.state.artifacts
    return m.Count(count=await retention.delete_archived(call.store, artifacts))


@api.route("POST", "/api/w/experiments", scope="write", body=m.CreateExperiment,
           response=Experiment, status=201, errors=(401, 403, 422))  # fmt: skip
async def create_experiment(call: Call) -> Experiment:
    """Create an experiment, or update the description and owner of an existing one."""
    body: m.CreateExperiment = call.body
    owner = body.owner
    if owner is None:  # a new experiment belongs to its creator; an update keeps its owner
        try:
            await call.store.get_experiment(body.name)
        except NotFound:
            owner = call.user
    return await experiment_ops.create_experiment(call.store, body.name, body.description, owner)


@api.route("POST", "/api/w/models", scope="write", body=m.RegisterModel, response=ModelVersion,
           status=201, errors=ERR)  # fmt: skip
async def register_model(call: Call) -> ModelVersion:
    """Register the next version of a model from an artifact logged on a run."""
    b: m.RegisterModel = call.body
    return await registry_ops.register_model(
        call.store, b.name, b.run_id, b.artifact, call.user, b.stage, b.description, b.tags,
        source=b.source,
    )  # fmt: skip


@api.route("POST", "/api/w/models/{name}/versions/{version:int}/promote", scope="write",
           body=m.Promote, response=ModelVersion, errors=ERR)  # fmt: skip
async def promote(call: Call) -> ModelVersion:
    """Move a model version to a stage, attributed to the token's user."""
    body: m.Promote = call.body
    version: Any = call.request.path_params["version"]
    return await registry_ops.promote(
        call.store, call.path("name"), version, body.stage, call.user, body.reason,
        archive_existing=body.archive_existing,
    )  # fmt: skip

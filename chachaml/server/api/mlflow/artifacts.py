"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts``) over chachaml's artifacts.

A run created through MLflow reports ``artifact_uri`` ``mlflow-artifacts:/<experiment
id>/<run id>/artifacts``, which MLflow's client resolves to this proxy on the tracking
server; so ``<experiment id>/<run id>/artifacts/<name>`` is the artifact ``<name>`` of that
run, the same record chachaml's own listing, UI and ``load_artifact`` read. Natively logged
artifacts download through here as they are; MLflow's uploads become ordinary artifacts.

- ``PUT .../<name>`` stores the body (streamed to a temporary file, at most the server's
  upload limit) as the artifact ``<name>``, replacing one of that name.
- ``GET .../<name>`` streams its bytes, checked against the recorded hash as they pass.
- ``GET /artifacts?path=...`` lists one folder level (names split on ``/``), as MLflow's
  repositories do: a file's path lists nothing, an unknown folder is empty.

Paths are checked before anything is touched: an empty, ``.`` or ``..`` segment, a control
character or a name under the reserved ``.mlflow/`` folder (where logged models keep their
records, :mod:`~chachaml.server.api.mlflow.logged_models`) is ``INVALID_PARAMETER_VALUE``.
MLflow's multipart and presigned transfers are for files above 500 MB on cloud stores; the
client uses them only when ``/server-info`` offers them, which chachaml does not.
"""

from __future__ import annotations

import mimetypes
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from starlette.responses import StreamingResponse

from chachaml.errors import InvalidInput, NotFound
from chachaml.records.runs import Artifact
from chachaml.server.api.endpoint import Api, Call
from chachaml.server.api.mlflow import wire
from chachaml.server.api.mlflow.entities import ARTIFACT_ROOT
from chachaml.server.api.mlflow.ids import experiment_id
from chachaml.server.errors import ApiError
from chachaml.store.artifacts import ArtifactStore, validate_artifact_name
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import experiments as experiment_ops
from chachaml.tools import runs as run_ops

api = Api()  # under PREFIX
tracking_api = Api()  # under the tracking prefixes (the older run-scoped listing)
Answer = dict[str, Any]
PREFIX = "/api/2.0/mlflow-artifacts"
RESERVED = ".mlflow"  # chachaml's own records beside a run's MLflow artifacts
LAYOUT = "<experiment id>/<run id>/artifacts/<name>"


@dataclass(frozen=True)
class Location:
    """A place under the proxy: a run, and a name in its artifacts (``""``: the run's root)."""

    run_id: str
    name: str


def artifact_store(call: Call) -> ArtifactStore:
    """The server's artifact store (a 503 on a server started without one)."""
    found: ArtifactStore | None = call.request.app.state.artifacts
    if found is None:
        raise ApiError(503, "this server has no artifact store")
    return found


def _segments(path: str) -> list[str]:
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(
            f"artifact path {path!r} has an empty, '.' or '..' segment; paths stay inside a run"
        )
    if any(ord(ch) < 32 or ch == "\x7f" for ch in path) or "\\" in path:
        raise InvalidInput(f"artifact path {path!r} holds a control character or a backslash")
    return parts


async def locate(call: Call, path: str) -> Location:
    """The run and artifact name a proxy path names; ``NotFound`` for an unknown run.

    The experiment id in the path must be the run's (so a path names one artifact only).
    """
    parts = _segments(path)
    if len(parts) < 3 or parts[2] != "artifacts":
        raise NotFound(f"no artifact location {path!r}: chachaml's are {LAYOUT}")
    exp_id, run_id = parts[0], parts[1]
    run = await run_ops.get_run(call.store, run_id)
    if run.id != run_id:  # get_run takes unique prefixes; a path names the whole id
        raise NotFound(f"no run with id {run_id!r}")
    exp = await experiment_ops.get_experiment(call.store, run.experiment)
    if experiment_id(exp) != exp_id:
        raise NotFound(f"run {run_id} is not in experiment {exp_id!r}")
    name = "/".join(parts[3:])
    if name:
        validate_artifact_name(name)
    return Location(run.id, name)


def folder(artifacts: list[Artifact], prefix: str) -> list[dict[str, Any]]:
    """One folder level of a run's artifacts as MLflow's ``FileInfo`` (paths relative to it).

    A prefix naming a file lists nothing, as MLflow's repositories answer; the reserved
    ``.mlflow/`` folder is left out of the run's root.
    """
    entries: dict[str, dict[str, Any]] = {}
    for art in artifacts:
        if prefix:
            if art.name == prefix:
                return []
            if not art.name.startswith(prefix + "/"):
                continue
            rest = art.name[len(prefix) + 1 :]
        else:
            rest = art.name
        head, sep, _ = rest.partition("/")
        if not prefix and head == RESERVED:
            continue
        if sep:
            entries[head] = {"path": head, "is_dir": True}
        else:
            entries.setdefault(head, {"path": head, "is_dir": False, "file_size": art.size})
    return sorted(entries.values(), key=lambda e: str(e["path"]))


async def spool(call: Call, limit: int) -> Path:
    """The request body in a temporary file; a 413 as soon as it passes ``limit`` bytes."""
    declared = call.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"upload is larger than {limit} bytes")
    fd, tmp = tempfile.mkstemp(prefix="chachaml-mlflow-")
    path = Path(tmp)
    try:
        size = 0
        async with await anyio.open_file(fd, "wb") as out:
            async for chunk in call.request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"upload is larger than {limit} bytes")
                await out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@api.route("GET", "/artifacts", scope="read", response=Answer, errors=(400, 401, 403, 404))
async def list_artifacts(call: Call) -> Answer:
    """One folder level of a run's artifacts (``path``: ``<exp id>/<run id>/artifacts/...``)."""
    path = (call.request.query_params.get("path") or "").strip("/")
    where = await locate(call, path)
    found = await artifact_ops.list_artifacts(call.store, where.run_id)
    return {"files": folder(found, where.name)}


@tracking_api.route("GET", "/artifacts/list", scope="read", response=Answer,
                    errors=(400, 401, 403, 404))  # fmt: skip
async def list_run_artifacts(call: Call) -> Answer:
    """One folder level of a run's artifacts by run id (``artifacts/list``, MLflow's UI)."""
    run = await run_ops.get_run(call.store, wire.required_param(call, "run_id", "run_uuid"))
    exp = await experiment_ops.get_experiment(call.store, run.experiment)
    path = (call.request.query_params.get("path") or "").strip("/")
    if path:
        _segments(path)
    found = await artifact_ops.list_artifacts(call.store, run.id)
    return {
        "root_uri": f"{ARTIFACT_ROOT}{experiment_id(exp)}/{run.id}/artifacts",
        "files": [
            {**f, "path": f"{path}/{f['path']}" if path else f["path"]} for f in folder(found, path)
        ],
    }


@api.route("GET", "/artifacts/{path:path}", scope="read", binary_response=True,
           errors=(400, 401, 403, 404))  # fmt: skip
async def download_artifact(call: Call) -> StreamingResponse:
    """An artifact's bytes, streamed (never rendered: served as an attachment)."""
    where = await locate(call, call.path("path"))
    if not where.name:
        raise NotFound("name an artifact to download: " + LAYOUT)
    art, blocks = await artifact_ops.open_artifact(
        call.store, artifact_store(call), where.run_id, where.name
    )
    filename = art.name.rsplit("/", 1)[-1]
    return StreamingResponse(
        blocks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(art.size),
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        },
    )


@api.route("PUT", "/artifacts/{path:path}", scope="write", body_kind="binary", response=Answer,
           errors=(400, 401, 403, 404, 413))  # fmt: skip
async def upload_artifact(call: Call) -> Answer:
    """Store the body as an artifact of the run (streamed, within the upload limit)."""
    where = await locate(call, call.path("path"))
    if not where.name:
        raise InvalidInput("name the artifact to upload: " + LAYOUT)
    if where.name.split("/", 1)[0] == RESERVED:
        raise InvalidInput(f"{RESERVED}/ is reserved for chachaml's records of MLflow models")
    limit: int = call.request.app.state.max_upload_bytes
    path = await spool(call, limit)
    try:
        media = call.request.headers.get("content-type", "").partition(";")[0].strip()
        guessed = mimetypes.guess_type(where.name)[0]
        await artifact_ops.put_file(
            call.store, artifact_store(call), where.run_id, where.name, path,
            content_type=media or guessed or "application/octet-stream",
        )  # fmt: skip
    finally:
        path.unlink(missing_ok=True)
    return {}


@api.route("DELETE", "/artifacts/{path:path}", scope="write", response=Answer,
           errors=(401, 403, 501))  # fmt: skip
async def delete_artifact(call: Call) -> Answer:
    """Not served: chachaml keeps a run's artifacts until the run itself is deleted."""
    raise ApiError(
        501,
        "chachaml does not delete single artifacts: they go with their run (delete_archived)",
        code="NOT_IMPLEMENTED",
    )

"""A run's artifacts: the browse page with previews, and the download endpoint.

Names are checked by the artifact store's validator (no absolute paths, no ``..``), and
bytes are served with their recorded content type only for raster images; everything else
downloads as an attachment under a sandboxing Content-Security-Policy.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chachaml.errors import NotFound, StoreUnavailable
from chachaml.records import validation as v
from chachaml.records.runs import Artifact, Table
from chachaml.server.ui.common import guarded, path_param, store_of, twin
from chachaml.store.artifacts import ArtifactStore, uri_digest, validate_artifact_name
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import runs as run_ops

PREVIEW_BYTES = 256 * 1024
PREVIEW_CHARS = 20_000
PREVIEW_ROWS = 50
INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
TABLE_TYPE = "application/vnd.chachaml.table+json"


def download_url(run_id: str, name: str) -> str:
    """Where an artifact's bytes are served."""
    return f"/api/artifacts/{run_id}/{quote(name)}"


def artifact_rows(run_id: str, artifacts: list[Artifact]) -> list[dict[str, Any]]:
    """Artifacts as listed: their record (without the storage URI) and download link."""
    return [
        {**a.model_dump(mode="json", exclude={"uri"}), "url": download_url(run_id, a.name)}
        for a in artifacts
    ]


def _artifact_store(request: Request) -> ArtifactStore:
    found: ArtifactStore | None = request.app.state.artifacts
    if found is None:
        raise StoreUnavailable("this server has no artifact store configured")
    return found


def _kind(art: Artifact) -> str:
    if art.content_type in INLINE_IMAGES:
        return "image"
    if art.content_type == TABLE_TYPE:
        return "table"
    if art.content_type in ("application/json",) or art.name.endswith(".json"):
        return "json"
    if art.content_type.startswith("text/") or art.serializer == "text":
        return "text"
    return "binary"


def preview_of(art: Artifact, data: bytes) -> dict[str, Any]:
    """What a page shows of an artifact: a table, some text, pretty JSON, or nothing."""
    kind = _kind(art)
    if kind == "table":
        try:
            table = Table.model_validate_json(data)
        except ValidationError:
            return {"kind": "text", "text": data[:PREVIEW_CHARS].decode("utf-8", "replace")}
        return {
            "kind": "table",
            "headers": table.headers,
            "rows": table.rows[:PREVIEW_ROWS],
            "total_rows": len(table.rows),
        }
    text = data.decode("utf-8", "replace")
    if kind == "json":
        try:
            text = json.dumps(json.loads(text), indent=2)
        except ValueError:
            kind = "text"
    return {"kind": kind, "text": text[:PREVIEW_CHARS], "cut": len(text) > PREVIEW_CHARS}


async def artifacts_page(request: Request) -> dict[str, Any]:
    """A run's artifacts, each with a preview when small enough to show."""
    store = store_of(request)
    run = await run_ops.get_run(store, path_param(request, "run_id"))
    rows = []
    for art, row in zip(run.artifacts, artifact_rows(run.id, run.artifacts), strict=True):
        kind = _kind(art)
        if kind == "image":
            preview: dict[str, Any] = {"kind": "image", "src": row["url"]}
        elif kind == "binary" or art.size > PREVIEW_BYTES:
            preview = {"kind": "none"}
        else:
            _, data = await artifact_ops.read_bytes(
                store, _artifact_store(request), run.id, art.name
            )
            preview = preview_of(art, data)
        rows.append({**row, "preview": preview})
    return {
        "run": {"id": run.id, "name": run.name, "experiment": run.experiment},
        "artifacts": rows,
    }


@guarded
async def download(request: Request) -> Response:
    """An artifact's bytes, streamed: raster images inline, anything else as an attachment.

    Memory stays one block per download whatever the artifact's size; a corrupt object is
    cut short before its last block (the client sees fewer bytes than Content-Length).
    """
    run_id, name = path_param(request, "run_id"), path_param(request, "name")
    art = await store_of(request).get_artifact(v.run_id(run_id), validate_artifact_name(name))
    if uri_digest(art.uri) != art.sha256:
        raise StoreUnavailable(
            f"artifact {name!r} of run {run_id!r} is corrupt: its content hash does not match"
        )
    try:
        blocks = await _artifact_store(request).open_stream(art.uri)
    except NotFound:  # say which artifact, never where the store keeps it
        raise NotFound(f"artifact {name!r} of run {run_id!r} is missing its stored bytes") from None
    inline = art.content_type in INLINE_IMAGES and request.query_params.get("download") != "1"
    filename = quote(art.name.rsplit("/", 1)[-1])
    return StreamingResponse(
        blocks,
        media_type=art.content_type if inline else "application/octet-stream",
        headers={
            "Content-Length": str(art.size),
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": (
                f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{filename}"
            ),
        },
    )


def routes() -> list[Route]:
    """The artifact browser and the download endpoint."""
    return [
        *twin("/runs/{run_id}/artifacts", artifacts_page, "artifacts.html"),
        Route("/api/artifacts/{run_id}/{name:path}", download),
    ]

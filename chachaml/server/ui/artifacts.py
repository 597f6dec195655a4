"""A run's artifacts: the browse page (a tree, and a preview on demand), and the download endpoint.

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
from chachaml.server.ui.common import guarded, path_param, store_of, text_param, twin
from chachaml.store.artifacts import ArtifactStore
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


def human_size(size: int) -> str:
    """A byte count as people read it: ``812 B``, ``4.2 KiB``, ``1.5 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def artifact_rows(run_id: str, artifacts: list[Artifact]) -> list[dict[str, Any]]:
    """Artifacts as listed: record (no storage URI), download link, readable size, kind.

    Raster images also get a thumbnail source: the download route, served inline.
    """
    return [
        {
            **a.model_dump(mode="json", exclude={"uri"}),
            "url": download_url(run_id, a.name),
            "size_text": human_size(a.size),
            "kind": _kind(a),
            "thumb": download_url(run_id, a.name) if _kind(a) == "image" else None,
        }
        for a in artifacts
    ]


def artifact_tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows nested by the ``/`` in their names: folders (sorted first) then files, by name.

    A folder holds ``path`` (its prefix), ``children``, and the ``count`` and ``size_text``
    of every file under it.
    """
    root: dict[str, Any] = {"children": {}, "files": []}
    for row in rows:
        node = root
        *folders, _ = row["name"].split("/")
        for depth, part in enumerate(folders):
            node = node["children"].setdefault(
                part,
                {
                    "name": part,
                    "path": "/".join(folders[: depth + 1]) + "/",
                    "children": {},
                    "files": [],
                },
            )
        node["files"].append(row)

    def emit(node: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
        out: list[dict[str, Any]] = []
        count = size = 0
        for name in sorted(node["children"]):
            folder = node["children"][name]
            children, n, total = emit(folder)
            out.append(
                {
                    "type": "folder",
                    "name": name,
                    "path": folder["path"],
                    "children": children,
                    "count": n,
                    "size_text": human_size(total),
                }
            )
            count, size = count + n, size + total
        for row in sorted(node["files"], key=lambda r: r["name"]):
            out.append({"type": "file", "label": row["name"].rsplit("/", 1)[-1], **row})
            count, size = count + 1, size + row["size"]
        return out, count, size

    return emit(root)[0]


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


async def _preview(request: Request, run_id: str, art: Artifact, url: str) -> dict[str, Any]:
    """One artifact's preview, read only when asked for and only up to ``PREVIEW_BYTES``."""
    kind = _kind(art)
    if kind == "image":
        return {"kind": "image", "src": url}
    if kind == "binary" or art.size > PREVIEW_BYTES:
        why = "too large to preview" if kind != "binary" else "binary"
        return {"kind": "none", "reason": why}
    store = store_of(request)
    _, data = await artifact_ops.read_bytes(store, _artifact_store(request), run_id, art.name)
    return preview_of(art, data)


async def artifacts_page(request: Request) -> dict[str, Any]:
    """A run's artifacts as a tree, and the preview of the one chosen with ``?name=``.

    Previews are read on demand (the page fetches this twin with ``?name=`` when a file is
    picked), so a run with many or large artifacts lists at the cost of its records.
    """
    store = store_of(request)
    run = await run_ops.get_run(store, path_param(request, "run_id"))
    rows = artifact_rows(run.id, run.artifacts)
    chosen = text_param(request, "name", 1000)
    selected: dict[str, Any] | None = None
    if chosen is not None:
        found = [(a, r) for a, r in zip(run.artifacts, rows, strict=True) if a.name == chosen]
        if not found:
            known = ", ".join(a.name for a in run.artifacts[:20]) or "none"
            raise NotFound(f"run {run.id} has no artifact {chosen!r} (artifacts: {known})")
        art, row = found[0]
        selected = {**row, "preview": await _preview(request, run.id, art, row["url"])}
    return {
        "run": {"id": run.id, "name": run.name, "experiment": run.experiment},
        "artifacts": rows,
        "tree": artifact_tree(rows),
        "total_size_text": human_size(sum(a.size for a in run.artifacts)),
        "selected": selected,
    }


@guarded
async def download(request: Request) -> Response:
    """An artifact's bytes, streamed: raster images inline, anything else as an attachment.

    Memory stays one block per download whatever the artifact's size; a corrupt object is
    cut short before its last block (the client sees fewer bytes than Content-Length).
    """
    run_id, name = path_param(request, "run_id"), path_param(request, "name")
    art, blocks = await artifact_ops.open_artifact(
        store_of(request), _artifact_store(request), v.run_id(run_id), name
    )
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

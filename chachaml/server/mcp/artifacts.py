"""The opt-in ``artifacts`` toolset: list a run's artifacts and read one (text, JSON, images)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent
from pydantic import BaseModel, Field

from chachaml.errors import ChachamlError
from chachaml.records.runs import Artifact, Table
from chachaml.server.mcp import render
from chachaml.server.mcp.runs import RunId, ToolFn, answer
from chachaml.store.artifacts import ArtifactStore
from chachaml.store.artifacts.serializers import decode
from chachaml.store.protocol import Store
from chachaml.tools import artifacts as artifact_ops

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


class ArtifactList(BaseModel):
    """A run's artifacts."""

    run_id: str
    artifacts: list[Artifact]


def _skops_text(art: Artifact, data: bytes) -> str:
    """A skops model described by its repr, loaded by the one trust rule (no ``trusted``)."""
    try:
        model = decode(data, art.serializer)
    except ChachamlError as exc:
        raise ToolError(
            f"artifact {art.name!r} is a skops model that cannot be read over MCP: {exc}"
            " (in Python: load_artifact(run_id, name, trusted=[...]))"
        ) from None
    return f"scikit-learn model (skops, {art.size} bytes): {model!r}"


def _artifact_content(art: Artifact, data: bytes, max_chars: int) -> list[ContentBlock]:
    if art.content_type in IMAGE_TYPES:
        return [
            ImageContent(
                type="image", data=base64.b64encode(data).decode(), mime_type=art.content_type
            ),
        ]
    if art.serializer == "pickle":
        raise ToolError(
            f"artifact {art.name!r} was stored with pickle, which is not read over MCP"
            " (loading it can run code); load it in Python with allow_pickle=True"
        )
    value: Any = (
        _skops_text(art, data) if art.serializer == "skops" else decode(data, art.serializer)
    )
    if art.serializer == "table" and isinstance(value, Table):
        rows = value.rows[: render.MAX_ROWS]
        text = render.table(value.headers, rows) + render.more_note(
            len(rows), len(value.rows), "only the first rows are shown"
        )
    elif art.serializer == "numpy":
        text = f"numpy array, shape {value.shape}, dtype {value.dtype}:\n{value!r}"
    elif art.serializer == "json":
        text = json.dumps(value, indent=1, default=str)
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = data.decode()
        except UnicodeDecodeError:
            text = f"binary content ({art.content_type}, {art.size} bytes) cannot be shown as text"
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n… ({len(text) - max_chars} more characters; raise max_chars)"
    return [TextContent(type="text", text=text)]


def artifact_tools(store: Store, artifacts: ArtifactStore) -> list[ToolFn]:
    """The ``artifacts`` toolset, bound to ``store`` and the artifact store."""

    async def list_artifacts(run_id: RunId) -> Annotated[CallToolResult, ArtifactList]:
        """A run's artifacts: name, content type, size. Example: {"run_id": "3f2c9a..."}."""
        found = await artifact_ops.list_artifacts(store, run_id)
        rows = [[a.name, a.content_type, a.serializer, a.size, a.created_at] for a in found]
        text = (
            f"Artifacts of run {run_id}:\n"
            + render.table(["artifact", "type", "serializer", "bytes", "created"], rows)
            if found
            else f"Run {run_id} has no artifacts."
        )
        return answer(ArtifactList(run_id=run_id, artifacts=found), text)

    async def read_artifact(
        run_id: RunId,
        name: Annotated[str, Field(description="Artifact name as list_artifacts shows it.")],
        max_chars: Annotated[
            int, Field(ge=100, le=200_000, description="Longest text to return.")
        ] = 20_000,
    ) -> CallToolResult:
        """Read an artifact: text and JSON as text, tables as a table, images as images.

        Example: {"run_id": "3f2c9a...", "name": "confusion_matrix"}.
        """
        art, data = await artifact_ops.read_bytes(store, artifacts, run_id, name)
        if art.serializer == "skops":  # loading a model is CPU work: off the event loop
            content = await anyio.to_thread.run_sync(_artifact_content, art, data, max_chars)
        else:
            content = _artifact_content(art, data, max_chars)
        return CallToolResult(content=content)

    return [list_artifacts, read_artifact]

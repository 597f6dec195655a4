"""Artifact operations: store bytes or files for a run, list them, read them back."""

from __future__ import annotations

import hashlib
import mimetypes
import time
from collections.abc import AsyncIterator
from pathlib import Path

from chachaml.errors import InvalidInput, NotFound, StoreUnavailable
from chachaml.records import validation as v
from chachaml.records.runs import Artifact, ArtifactRecord
from chachaml.store.artifacts import (
    ArtifactStore,
    StoredObject,
    uri_digest,
    validate_artifact_name,
)
from chachaml.store.protocol import Store
from chachaml.tools.runs import resolve_run_id


async def _record(
    store: Store, run_id: str, name: str, obj: StoredObject, content_type: str, serializer: str
) -> Artifact:
    await store.add_artifact(
        ArtifactRecord(
            run_id=run_id,
            name=name,
            content_type=content_type,
            serializer=serializer,
            size=obj.size,
            sha256=obj.sha256,
            uri=obj.uri,
            created_at=time.time(),
        )
    )
    return await store.get_artifact(run_id, name)


async def put_bytes(
    store: Store,
    artifacts: ArtifactStore,
    run_id: str,
    name: str,
    data: bytes,
    *,
    content_type: str,
    serializer: str,
) -> Artifact:
    """Store bytes as an artifact of a run (replacing one of the same name)."""
    rid, safe = v.run_id(run_id), validate_artifact_name(name)
    await store.get_run(rid)  # unknown run: fail before writing any bytes
    obj = await artifacts.put_bytes(data)
    return await _record(store, rid, safe, obj, content_type, serializer)


async def put_file(
    store: Store,
    artifacts: ArtifactStore,
    run_id: str,
    name: str,
    path: str | Path,
    *,
    content_type: str | None = None,
) -> Artifact:
    """Store a local file as an artifact, streaming it (its type guessed from the name)."""
    rid, safe = v.run_id(run_id), validate_artifact_name(name)
    src = Path(path)
    if not src.is_file():
        raise InvalidInput(f"log_file: {str(src)!r} is not a file")
    await store.get_run(rid)
    obj = await artifacts.put_file(src)
    guessed = mimetypes.guess_type(safe)[0] or "application/octet-stream"
    return await _record(store, rid, safe, obj, content_type or guessed, "file")


async def record_object(
    store: Store,
    artifacts: ArtifactStore,
    run_id: str,
    name: str,
    obj: StoredObject,
    *,
    content_type: str = "application/octet-stream",
    serializer: str = "file",
) -> Artifact:
    """Record an artifact of a run from an object already in the artifact store.

    The object's URI must name its sha256, and the artifact store must hold it (uploaded
    first), else ``InvalidInput``; an artifact of that name is replaced.
    """
    rid, safe = v.run_id(run_id), validate_artifact_name(name)
    if uri_digest(obj.uri) != obj.sha256:
        raise InvalidInput(f"uri {obj.uri!r} does not name the object with sha256 {obj.sha256}")
    if not await artifacts.contains(obj):
        raise InvalidInput(
            f"artifact {safe!r} of run {rid!r}: no object of {obj.size} bytes with sha256"
            f" {obj.sha256} was uploaded; POST the bytes to /api/w/objects first"
        )
    return await _record(store, rid, safe, obj, content_type, serializer)


async def read_bytes(
    store: Store, artifacts: ArtifactStore, run_id: str, name: str
) -> tuple[Artifact, bytes]:
    """An artifact's record and its bytes, checked against the recorded sha256."""
    rid = await resolve_run_id(store, run_id)
    art = await store.get_artifact(rid, validate_artifact_name(name))
    try:
        data = await artifacts.get_bytes(art.uri)
    except NotFound:  # said in the caller's terms: no storage path or object URI
        raise NotFound(f"artifact {name!r} of run {run_id!r} is missing its stored bytes") from None
    if hashlib.sha256(data).hexdigest() != art.sha256:
        raise StoreUnavailable(
            f"artifact {name!r} of run {run_id!r} is corrupt: its content hash does not match"
        )
    return art, data


async def open_artifact(
    store: Store, artifacts: ArtifactStore, run_id: str, name: str
) -> tuple[Artifact, AsyncIterator[bytes]]:
    """An artifact's record and its bytes as blocks, for a download of any size.

    ``NotFound`` comes before any byte; the hash is checked as the blocks pass and the last
    block is held back until it matches, so a corrupt artifact never arrives whole.
    """
    rid = await resolve_run_id(store, run_id)
    art = await store.get_artifact(rid, validate_artifact_name(name))
    if uri_digest(art.uri) != art.sha256:
        raise StoreUnavailable(
            f"artifact {name!r} of run {run_id!r} is corrupt: its content hash does not match"
        )
    try:
        blocks = await artifacts.open_stream(art.uri)
    except NotFound:  # said in the caller's terms: no storage path or object URI
        raise NotFound(f"artifact {name!r} of run {run_id!r} is missing its stored bytes") from None
    return art, blocks


async def list_artifacts(store: Store, run_id: str) -> list[Artifact]:
    """A run's artifacts."""
    return await store.list_artifacts(await resolve_run_id(store, run_id))

"""The ``ArtifactStore`` protocol, and the object naming and checks every artifact store shares.

An artifact's bytes are stored once per distinct sha256 (``objects/ab/cdef...``); the run's
artifact record maps a validated name to that object.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

import anyio

from chachaml.errors import InvalidInput, StoreUnavailable

CHUNK = 1 << 20
MAX_NAME = 1024


def validate_artifact_name(name: object) -> str:
    """Return the name if it is a safe relative path; raise ``InvalidInput`` otherwise.

    Refused: empty names, absolute paths, ``..`` or ``.`` segments, empty segments,
    backslashes, NUL and other control characters, names over 1024 characters.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"artifact name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"artifact name is longer than {MAX_NAME} characters")
    if any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        raise InvalidInput(f"artifact name {name!r} contains NUL or control characters")
    if "\\" in name:
        raise InvalidInput(f"artifact name {name!r} contains a backslash; use '/' for folders")
    if (
        name.startswith("/")
        or PurePosixPath(name).is_absolute()
        or (len(name) > 1 and name[1] == ":")
    ):
        raise InvalidInput(f"artifact name {name!r} is an absolute path; use a relative name")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(
            f"artifact name {name!r} has an empty, '.' or '..' segment; names stay inside the run"
        )
    return name


@dataclass(frozen=True)
class StoredObject:
    """Where an artifact's bytes went, and what they were."""

    uri: str
    sha256: str
    size: int


def object_uri(sha256: str) -> str:
    """The relative URI of the object holding content with this sha256."""
    return f"objects/{sha256[:2]}/{sha256[2:]}"


def uri_digest(uri: str) -> str:
    """The sha256 an object URI names; ``InvalidInput`` for anything but ``objects/ab/<62 hex>``."""
    parts = uri.split("/")
    if (
        len(parts) != 3
        or parts[0] != "objects"
        or len(parts[1]) != 2
        or len(parts[2]) != 62
        or not all(c in "0123456789abcdef" for c in parts[1] + parts[2])
    ):
        raise InvalidInput(f"not an artifact object URI: {uri!r}")
    return parts[1] + parts[2]


def corrupt_object(uri: str) -> StoreUnavailable:
    """The error for an object whose bytes do not match their hash."""
    return StoreUnavailable(f"artifact object {uri} is corrupt: its content hash does not match")


async def verified(
    blocks: AsyncIterator[bytes], digest: str, corrupt: Callable[[], Exception]
) -> AsyncIterator[bytes]:
    """Pass ``blocks`` on, hashing them; the last one only once the sha256 is ``digest``."""
    hasher = hashlib.sha256()
    held: bytes | None = None
    async for block in blocks:
        await anyio.to_thread.run_sync(hasher.update, block)
        if held is not None:
            yield held
        held = block
    if hasher.hexdigest() != digest:
        raise corrupt()
    if held is not None:
        yield held


class ArtifactStore(Protocol):
    """Blob storage for artifact bytes, addressed by content hash.

    URIs are relative (``objects/ab/cdef...``), so the same database records work on any
    artifact root. ``put_*`` return the object's URI, sha256 and size, and skip the upload
    when the object is already there; ``get_bytes``/``copy_to`` raise ``NotFound`` for a URI
    that has no object and ``StoreUnavailable`` when the bytes do not match their hash.
    Storage that cannot be reached (or refuses the credentials) raises ``StoreUnavailable``
    saying which. Deleting is :class:`DeletableObjects`' (``delete`` ignores missing objects).
    """

    @property
    def root(self) -> str:
        """Where objects live (a folder path or URL)."""
        ...

    async def put_bytes(self, data: bytes) -> StoredObject:
        """Store bytes."""
        ...

    async def put_file(self, path: Path) -> StoredObject:
        """Store a file's content, streaming it."""
        ...

    async def get_bytes(self, uri: str) -> bytes:
        """The whole object."""
        ...

    async def copy_to(self, uri: str, dest: Path) -> None:
        """Write the object to a local file, streaming it."""
        ...

    async def open_stream(self, uri: str, *, verify: bool = True) -> AsyncIterator[bytes]:
        """The object in blocks of about ``CHUNK`` bytes, read as they are consumed.

        ``NotFound`` is raised here, before any byte. With ``verify`` the hash is checked as
        the blocks pass and the last block is held back until it matches (``StoreUnavailable``
        otherwise), so a corrupt object never arrives whole; without it the reader checks.
        """
        ...

    async def contains(self, obj: StoredObject) -> bool:
        """Whether the object is stored, complete, under its hash."""
        ...

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless objects can be stored and read right now."""
        ...


@runtime_checkable
class DeletableObjects(Protocol):
    """An artifact store whose objects this process may delete (a folder, a bucket).

    Not a server's (:class:`~chachaml.client.remote.HttpArtifactStore`): objects are shared by
    content, and only the server can check that no record references one before it goes.
    """

    async def delete(self, uri: str) -> None:
        """Remove an object if it exists."""
        ...


@runtime_checkable
class UriReferences(Protocol):
    """A store that can say which artifact URIs nothing references any more."""

    async def unused_uris(self, uris: Sequence[str]) -> list[str]:
        """Those of ``uris`` that no artifact row or model version references now."""
        ...


async def sweep_unused(store: object, artifacts: ArtifactStore, uris: Sequence[str]) -> int:
    """Delete the objects of ``uris`` (from ``delete_archived``) still unused; how many went.

    Objects are shared by content: between ``delete_archived``'s commit and this sweep,
    another run may log identical bytes and reference the same object. Each URI is checked
    again right before its file goes; a store that cannot say keeps every file.
    """
    if not isinstance(store, UriReferences) or not isinstance(artifacts, DeletableObjects):
        return 0
    deleted = 0
    for uri in uris:
        if await store.unused_uris([uri]):
            await artifacts.delete(uri)
            deleted += 1
    return deleted

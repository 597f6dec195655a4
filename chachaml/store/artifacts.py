"""Artifact storage: content-addressed blobs under an artifact root.

An artifact's bytes are stored once per distinct sha256 (``objects/ab/cdef...``); the run's
artifact record maps a validated name to that object. Writes go to a temporary file first and
are renamed into place, so a crash never leaves a half-written object under its hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

import anyio

from chachaml.errors import InvalidInput, NotFound, StoreUnavailable

if TYPE_CHECKING:
    from chachaml.settings import S3Settings

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


class LocalArtifactStore:
    """Objects as files under a local folder; URIs are ``objects/<2 hex>/<62 hex>``."""

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root).expanduser().resolve()

    @property
    def root(self) -> str:
        """The artifact folder."""
        return str(self._root)

    def _path(self, uri: str) -> Path:
        digest = uri_digest(uri)
        return self._root / "objects" / digest[:2] / digest[2:]

    def _commit(self, tmp: Path, digest: str, size: int) -> StoredObject:
        uri = object_uri(digest)
        final = self._path(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            tmp.unlink()
        else:
            os.replace(tmp, final)
        return StoredObject(uri=uri, sha256=digest, size=size)

    def _tmp(self) -> tuple[BinaryIO, Path]:
        tmp_dir = self._root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir)
        return os.fdopen(fd, "wb"), Path(name)

    def _put_bytes(self, data: bytes) -> StoredObject:
        fh, tmp = self._tmp()
        with fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return self._commit(tmp, hashlib.sha256(data).hexdigest(), len(data))

    def _put_file(self, path: Path) -> StoredObject:
        digest = hashlib.sha256()
        size = 0
        fh, tmp = self._tmp()
        try:
            with fh, open(path, "rb") as src:
                while block := src.read(CHUNK):
                    digest.update(block)
                    size += len(block)
                    fh.write(block)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._commit(tmp, digest.hexdigest(), size)

    async def put_bytes(self, data: bytes) -> StoredObject:
        """Store bytes."""
        return await anyio.to_thread.run_sync(self._put_bytes, data)

    async def put_file(self, path: Path) -> StoredObject:
        """Store a file, streaming it through the hash."""
        if not path.is_file():
            raise InvalidInput(f"not a file: {str(path)!r}")
        return await anyio.to_thread.run_sync(self._put_file, path)

    def _existing(self, uri: str) -> Path:
        path = self._path(uri)
        if not path.is_file():
            raise NotFound(f"artifact object {uri} is missing from the artifact store")
        return path

    async def get_bytes(self, uri: str) -> bytes:
        """Read an object."""
        return await anyio.to_thread.run_sync(lambda: self._existing(uri).read_bytes())

    async def copy_to(self, uri: str, dest: Path) -> None:
        """Copy an object to a local path."""
        await anyio.to_thread.run_sync(shutil.copyfile, self._existing(uri), dest)

    async def open_stream(self, uri: str, *, verify: bool = True) -> AsyncIterator[bytes]:
        """Read an object a block at a time (for downloads: memory stays one block)."""
        path = await anyio.to_thread.run_sync(self._existing, uri)
        fh = await anyio.open_file(path, "rb")

        async def blocks() -> AsyncIterator[bytes]:
            async with fh:
                while block := await fh.read(CHUNK):
                    yield block

        if not verify:
            return blocks()
        return verified(blocks(), uri_digest(uri), lambda: corrupt_object(uri))

    async def delete(self, uri: str) -> None:
        """Delete an object; missing objects are ignored."""
        await anyio.to_thread.run_sync(lambda: self._path(uri).unlink(missing_ok=True))

    async def contains(self, obj: StoredObject) -> bool:
        """Whether the object's file exists with its size (files appear only complete)."""
        path = self._path(obj.uri)
        return await anyio.to_thread.run_sync(
            lambda: path.is_file() and path.stat().st_size == obj.size
        )

    def _check(self) -> None:
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the artifact folder {self._root}: {exc}"
            raise StoreUnavailable(msg) from exc
        if not os.access(self._root, os.R_OK | os.W_OK | os.X_OK):
            raise StoreUnavailable(f"the artifact folder {self._root} is not writable")

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the folder exists (or can be made) and is writable."""
        await anyio.to_thread.run_sync(self._check)

    def objects(self) -> Iterator[StoredObject]:
        """Every object file under the root (its size from the file, its hash from its name)."""
        folder = self._root / "objects"
        for path in sorted(folder.glob("??/*")) if folder.is_dir() else ():
            uri = f"objects/{path.parent.name}/{path.name}"
            try:
                digest = uri_digest(uri)
            except InvalidInput:
                continue  # not an object file
            yield StoredObject(uri=uri, sha256=digest, size=path.stat().st_size)

    def path_of(self, obj: StoredObject) -> Path:
        """The local file holding an object."""
        return self._path(obj.uri)


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
    again right before its file goes; a store that cannot say keeps every file, as does an
    artifact store this process may not delete from (a server's, which sweeps its own).
    """
    if not isinstance(store, UriReferences) or not isinstance(artifacts, DeletableObjects):
        return 0
    deleted = 0
    for uri in uris:
        if await store.unused_uris([uri]):
            await artifacts.delete(uri)
            deleted += 1
    return deleted


def open_artifact_store(root: str, s3: S3Settings | None = None) -> ArtifactStore:
    """The artifact store a root names: ``s3://bucket/prefix`` or a local folder.

    The S3 client library is imported only here, when an ``s3://`` root is opened.
    """
    if root.startswith("s3://"):
        from chachaml.store.s3 import S3ArtifactStore

        return S3ArtifactStore(root, s3)
    if "://" in root and not root.startswith("file://"):
        raise InvalidInput(
            f"unsupported artifact root {root!r}; use a local folder path or s3://bucket/prefix"
        )
    return LocalArtifactStore(root.removeprefix("file://"))

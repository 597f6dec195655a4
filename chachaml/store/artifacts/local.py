"""Artifact objects as files under a local folder.

Writes go to a temporary file first and are renamed into place, so a crash never leaves a
half-written object under its hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

import anyio

from chachaml.errors import InvalidInput, NotFound, StoreUnavailable
from chachaml.store.artifacts.protocol import (
    CHUNK,
    StoredObject,
    corrupt_object,
    object_uri,
    uri_digest,
    verified,
)


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

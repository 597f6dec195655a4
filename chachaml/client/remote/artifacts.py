"""Artifact bytes through a chachaml server: uploads to ``/api/w/objects``, downloads streamed.

:class:`HttpArtifactStore` is the :class:`~chachaml.store.artifacts.ArtifactStore` of a
remote store. It has no ``delete``: objects are shared by content between runs and model
versions, and only the server can check, right before an object goes, that no record of any
client references it (it does so itself when archived runs are deleted); a client deleting
bytes would race records it cannot see.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx

from chachaml.client.remote.connection import Connection, raise_for
from chachaml.errors import StoreUnavailable
from chachaml.store.artifacts import StoredObject, corrupt_object, uri_digest, verified

CHUNK = 1 << 20
OBJECTS = "/api/store/v1/objects"


class HttpArtifactStore:
    """An :class:`~chachaml.store.artifacts.ArtifactStore` that uploads to the server."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    @property
    def root(self) -> str:
        """The server's object endpoint."""
        return f"{self._conn.url}{OBJECTS}"

    async def _upload(self, content: bytes | AsyncIterator[bytes]) -> StoredObject:
        response = await self._conn.request(
            "POST",
            "/api/w/objects",
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
        data = response.json()
        return StoredObject(uri=data["uri"], sha256=data["sha256"], size=data["size"])

    async def put_bytes(self, data: bytes) -> StoredObject:
        """Upload bytes."""
        return await self._upload(data)

    async def put_file(self, path: Path) -> StoredObject:
        """Upload a file, streaming it."""

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as f:
                while block := await f.read(CHUNK):
                    yield block

        return await self._upload(chunks())

    async def get_bytes(self, uri: str) -> bytes:
        """Download an object."""
        return (await self._conn.request("GET", f"{OBJECTS}/{uri}")).content

    async def open_stream(self, uri: str, *, verify: bool = True) -> AsyncIterator[bytes]:
        """Download an object block by block, checking its hash before the last block."""
        url, http = self._conn.url, self._conn.http
        try:
            response = await http.send(http.build_request("GET", f"{OBJECTS}/{uri}"), stream=True)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach {url}: {exc!r}") from exc
        if not response.is_success:
            await response.aread()
            await response.aclose()
            raise_for(response)

        async def blocks() -> AsyncIterator[bytes]:
            try:
                async for block in response.aiter_bytes(CHUNK):
                    yield block
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"cannot reach {url}: {exc!r}") from exc
            finally:
                await response.aclose()

        if not verify:
            return blocks()
        return verified(blocks(), uri_digest(uri), lambda: corrupt_object(uri))

    async def copy_to(self, uri: str, dest: Path) -> None:
        """Download an object to a file, streaming it (the file appears once complete)."""
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}")
        try:
            async with await anyio.open_file(tmp, "wb") as fh:
                async for block in await self.open_stream(uri):
                    await fh.write(block)
            await anyio.Path(tmp).replace(dest)
        finally:
            await anyio.Path(tmp).unlink(missing_ok=True)

    async def contains(self, obj: StoredObject) -> bool:
        """Whether the server holds the object, complete, under its hash."""
        body = {"uri": obj.uri, "sha256": obj.sha256, "size": obj.size}
        response = await self._conn.request("POST", f"{OBJECTS}/contains", json=body)
        stored: bool = response.json()["stored"]
        return stored

    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the server says its stores are ready."""
        await self._conn.request("GET", "/readyz")

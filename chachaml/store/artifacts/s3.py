"""Artifact objects in AWS S3 or any S3-compatible service (MinIO, DigitalOcean Spaces...).

Built on obstore (Rust ``object_store`` underneath): native asyncio, streaming multipart
uploads, retries with backoff, and the same API for GCS and Azure should they be wanted.
This module is imported only when an ``s3://`` artifact root is opened.

Keys are ``<prefix>/objects/ab/cdef...``, the same relative URIs a local root uses, so the
database records do not change when the root does. Every object carries its sha256 as user
metadata; an upload is skipped when the key already holds an object with that hash and size.
Files are hashed once to name their key, then streamed up in parts (at most
``part_size * CONCURRENCY`` bytes in memory) while hashed again, and refused if they changed
in between; with checksums on, S3 also verifies each request body against its sha256.
Downloads are hashed as they stream and refused when they do not match their key.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import obstore
from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from chachaml.errors import ChachamlError, InvalidInput, NotFound, StoreUnavailable
from chachaml.settings import S3Settings
from chachaml.store.artifacts.protocol import CHUNK, StoredObject, object_uri, uri_digest, verified

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

PART_SIZE = 8 << 20
MIN_PART_SIZE = 5 << 20  # S3's smallest part (all but the last)
CONCURRENCY = 4
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,62}")
_CODE = re.compile(r"<Code>(\w+)</Code>")
_STATUS = re.compile(r"status code: (\d{3})")


def parse_s3_root(root: str) -> tuple[str, str]:
    """``s3://bucket/a/prefix`` as ``("bucket", "a/prefix")``; ``InvalidInput`` if malformed."""
    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not root.startswith("s3://") or not _BUCKET.fullmatch(bucket):
        raise InvalidInput(f"not an S3 artifact root: {root!r}; use s3://bucket/prefix")
    if prefix and any(p in ("", ".", "..") for p in prefix.split("/")):
        raise InvalidInput(f"S3 prefix of {root!r} has an empty, '.' or '..' segment")
    return bucket, prefix


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class S3ArtifactStore:
    """Objects in an S3 bucket under a prefix; see the module docs for the guarantees."""

    def __init__(
        self, root: str, settings: S3Settings | None = None, *, part_size: int = PART_SIZE
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise InvalidInput(f"S3 part size must be at least {MIN_PART_SIZE} bytes")
        self._bucket, self._prefix = parse_s3_root(root)
        s = settings if settings is not None else S3Settings()
        self._part_size = part_size
        self._endpoint = s.endpoint or f"AWS S3 ({s.region or 'default region'})"
        config: S3Config = {}
        if s.endpoint:
            config["endpoint"] = s.endpoint
        if s.region:
            config["region"] = s.region
        if s.access_key_id:
            config["access_key_id"] = s.access_key_id
        if s.secret_access_key:
            config["secret_access_key"] = s.secret_access_key
        if s.session_token:
            config["session_token"] = s.session_token
        if s.checksum:
            config["checksum_algorithm"] = "sha256"
        client: ClientConfig = {
            "allow_http": bool(s.endpoint and s.endpoint.startswith("http://")),
            "connect_timeout": timedelta(seconds=5),
            "read_timeout": timedelta(seconds=60),
            "timeout": timedelta(hours=1),  # a whole large download; stalls hit read_timeout
        }
        retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=60)}
        self._store = S3Store(
            self._bucket,
            prefix=self._prefix or None,
            config=config,
            client_options=client,
            retry_config=retry,
        )

    @property
    def root(self) -> str:
        """The ``s3://bucket/prefix`` URL."""
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    def _error(self, exc: Exception, uri: str | None) -> ChachamlError:
        text = str(exc)
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        found = _CODE.search(text)
        code = found.group(1) if found else None
        if code == "NoSuchBucket":
            return StoreUnavailable(
                f"the bucket {self._bucket!r} does not exist at {self._endpoint}"
            )
        if isinstance(exc, FileNotFoundError):
            return NotFound(f"artifact object {uri} is missing from {self.root}")
        if "http://169.254.1" in text:  # the instance/container metadata credential lookup
            return StoreUnavailable(
                f"no S3 credentials for {self.root}: set CHACHAML_S3_ACCESS_KEY_ID and"
                " CHACHAML_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY);"
                f" looking them up from the instance metadata service failed: {first}"
            )
        status = _STATUS.search(text)
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError) or (
            status is not None and status.group(1) in ("401", "403")
        ):
            return StoreUnavailable(
                f"{self._endpoint} refused the credentials for {self.root}"
                f" ({code or 'access denied'}): check CHACHAML_S3_ACCESS_KEY_ID and"
                " CHACHAML_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                " and that they may use the bucket"
            )
        if "error sending request" in text or "timed out" in text.lower():
            return StoreUnavailable(
                f"cannot reach the S3 endpoint {self._endpoint} for {self.root}: {first}"
            )
        return StoreUnavailable(f"S3 request for {self.root} failed: {first}")

    @contextmanager
    def _translated(self, uri: str | None = None) -> Iterator[None]:
        try:
            yield
        except (BaseError, FileNotFoundError) as exc:
            raise self._error(exc, uri) from exc

    async def _head(self, uri: str) -> tuple[str | None, int] | None:
        """The sha256 recorded on an object and its size, or ``None`` if it is not there."""
        try:
            with self._translated(uri):
                result = await obstore.get_async(self._store, uri, options={"head": True})
        except NotFound:
            return None
        recorded = result.attributes.get("sha256")
        return (recorded if isinstance(recorded, str) else None), result.meta["size"]

    async def contains(self, obj: StoredObject) -> bool:
        """Whether the key holds an object recorded with this sha256 and size."""
        return await self._head(obj.uri) == (obj.sha256, obj.size)

    async def put_bytes(self, data: bytes) -> StoredObject:
        """Store bytes (in parts when larger than one part)."""
        digest = await anyio.to_thread.run_sync(lambda: hashlib.sha256(data).hexdigest())
        obj = StoredObject(uri=object_uri(digest), sha256=digest, size=len(data))
        if not await self.contains(obj):
            await self._put(obj, data, multipart=len(data) > self._part_size)
        return obj

    async def put_file(self, path: Path) -> StoredObject:
        """Store a file: hash it, then stream it up in parts, checking it did not change."""
        if not path.is_file():
            raise InvalidInput(f"not a file: {str(path)!r}")
        digest, size = await anyio.to_thread.run_sync(_hash_file, path)
        obj = StoredObject(uri=object_uri(digest), sha256=digest, size=size)
        if await self.contains(obj):
            return obj
        if size <= self._part_size:  # one request; the file is at most one part
            await self._put(obj, await anyio.Path(path).read_bytes(), multipart=False)
            return obj
        rehash = hashlib.sha256()

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as fh:
                while block := await fh.read(self._part_size):
                    await anyio.to_thread.run_sync(rehash.update, block)
                    yield block

        await self._put(obj, chunks(), multipart=True)
        if rehash.hexdigest() != digest:
            await self.delete(obj.uri)
            raise InvalidInput(f"{str(path)!r} changed while it was being uploaded; log it again")
        return obj

    async def _put(
        self, obj: StoredObject, body: bytes | AsyncIterator[bytes], *, multipart: bool
    ) -> None:
        with self._translated(obj.uri):
            await obstore.put_async(
                self._store,
                obj.uri,
                body,
                attributes={"sha256": obj.sha256, "Content-Type": "application/octet-stream"},
                use_multipart=multipart,
                chunk_size=self._part_size,
                max_concurrency=CONCURRENCY,
            )

    def _corrupt(self, uri: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"artifact object {uri} in {self.root} is corrupt: its content hash does not match"
        )

    async def get_bytes(self, uri: str) -> bytes:
        """Read a whole object, checking its hash."""
        digest = uri_digest(uri)
        with self._translated(uri):
            result = await obstore.get_async(self._store, uri)
            data = bytes(await result.bytes_async())
        actual = await anyio.to_thread.run_sync(lambda: hashlib.sha256(data).hexdigest())
        if actual != digest:
            raise self._corrupt(uri)
        return data

    async def copy_to(self, uri: str, dest: Path) -> None:
        """Stream an object into a local file, checking its hash before the file appears."""
        digest, hasher = uri_digest(uri), hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        os.close(fd)
        tmp = Path(name)
        try:
            with self._translated(uri):
                result = await obstore.get_async(self._store, uri)
                async with await anyio.open_file(tmp, "wb") as fh:
                    async for block in result.stream(min_chunk_size=CHUNK):
                        await anyio.to_thread.run_sync(hasher.update, block)
                        await fh.write(block)
            if hasher.hexdigest() != digest:
                raise self._corrupt(uri)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    async def open_stream(self, uri: str, *, verify: bool = True) -> AsyncIterator[bytes]:
        """Stream an object a block at a time, checking its hash before the last block."""
        digest = uri_digest(uri)
        with self._translated(uri):
            result = await obstore.get_async(self._store, uri)

        async def blocks() -> AsyncIterator[bytes]:
            with self._translated(uri):
                async for block in result.stream(min_chunk_size=CHUNK):
                    yield bytes(block)

        return verified(blocks(), digest, lambda: self._corrupt(uri)) if verify else blocks()

    async def delete(self, uri: str) -> None:
        """Delete an object; missing objects are ignored."""
        uri_digest(uri)
        with self._translated(uri):
            await obstore.delete_async(self._store, uri)

    async def check(self) -> None:
        """List the bucket once: raises ``StoreUnavailable`` saying what is wrong, if anything."""
        with self._translated():
            await obstore.list_with_delimiter_async(self._store, prefix="objects")

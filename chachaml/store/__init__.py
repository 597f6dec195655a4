"""Persistence: the ``Store`` protocol, its backends, and artifact storage."""

from __future__ import annotations

from chachaml.errors import InvalidInput
from chachaml.store.protocol import Store


async def open_store(url: str, *, token: str | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///path.db``, ``postgresql://...`` or a server.

    ``http(s)://host:port`` is a chachaml server's HTTP API, reached with ``token``.
    """
    if url.startswith("sqlite:///"):
        from chachaml.store.sqlite import SQLiteStore

        return await SQLiteStore.open(url)
    if url.startswith(("postgresql://", "postgres://")):
        from chachaml.store.postgres import PostgresStore

        return await PostgresStore.open(url)
    if url.startswith(("http://", "https://")):
        from chachaml.store.http import HttpStore

        return await HttpStore.open(url, token)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise InvalidInput(
        f"unsupported store URL {url!r} (scheme {scheme!r}); use sqlite:///path/to/file.db"
        ", postgresql://user@host/database or http://server:8080"
    )


__all__ = ["Store", "open_store"]

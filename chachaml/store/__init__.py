"""Persistence: the ``Store`` protocol, its backends, and artifact storage."""

from __future__ import annotations

from chachaml.errors import InvalidInput
from chachaml.store.protocol import Store


async def open_store(url: str) -> Store:
    """Open the store a URL names: ``sqlite:///path.db`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        from chachaml.store.sqlite import SQLiteStore

        return await SQLiteStore.open(url)
    if url.startswith(("postgresql://", "postgres://")):
        from chachaml.store.postgres import PostgresStore

        return await PostgresStore.open(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise InvalidInput(
        f"unsupported store URL {url!r} (scheme {scheme!r}); use sqlite:///path/to/file.db"
        " or postgresql://user@host/database"
    )


__all__ = ["Store", "open_store"]

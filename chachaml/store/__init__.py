"""Persistence: the ``Store`` protocol, its backends, and artifact storage."""

from __future__ import annotations

from chachaml.errors import InvalidInput
from chachaml.store.protocol import Store


async def open_store(url: str) -> Store:
    """Open the database a URL names: ``sqlite:///path.db`` or ``postgresql://...``.

    A server's ``http(s)://`` URL is not storage but a client of a server:
    :func:`chachaml.client.remote.open_any_store` opens it.
    """
    if url.startswith("sqlite:///"):
        from chachaml.store.sqlite import SQLiteStore

        return await SQLiteStore.open(url)
    if url.startswith(("postgresql://", "postgres://")):
        from chachaml.store.postgres import PostgresStore

        return await PostgresStore.open(url)
    if url.startswith(("http://", "https://")):
        raise InvalidInput(
            f"{url!r} is a chachaml server, not a database; open it with"
            " chachaml.client.remote.open_any_store"
        )
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise InvalidInput(
        f"unsupported store URL {url!r} (scheme {scheme!r}); use sqlite:///path/to/file.db"
        ", postgresql://user@host/database or http://server:8080"
    )


__all__ = ["Store", "open_store"]

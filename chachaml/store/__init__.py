"""Persistence: the ``Store`` protocol, its backends, and artifact storage."""

from __future__ import annotations

from pathlib import Path

from chachaml.errors import InvalidInput
from chachaml.store.protocol import ServerStore, Store


def sqlite_path(url: str) -> Path | None:
    """The absolute file a ``sqlite:///`` URL names (None for other URLs and ``:memory:``)."""
    if not url.startswith("sqlite:///"):
        return None
    from chachaml.store.sqlite import path_from_url

    path = path_from_url(url)
    return None if path == ":memory:" else Path(path).expanduser().absolute()


async def open_store(url: str) -> ServerStore:
    """Open the database a URL names: ``sqlite:///path.db`` or ``postgresql://...``.

    A server's ``http(s)://`` URL is not storage but a client of a server:
    :func:`chachaml.client.remote.open_any_store` opens it.
    """
    if (path := sqlite_path(url)) is not None and not path.parent.is_dir():
        # a typo'd or placeholder path must not become a new, empty store
        raise InvalidInput(
            f"the folder of store {url} does not exist: {path.parent}; check the path"
            " (a new store is created only in an existing folder)"
        )
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


__all__ = ["ServerStore", "Store", "open_store", "sqlite_path"]

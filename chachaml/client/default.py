"""The default client (``import chachaml as ml`` acts through it) and the APIs bound to it.

It is made on first use and lives here, below the package root, so that the registry,
alerts, pipelines and sklearn helpers reach it without importing ``chachaml`` itself.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chachaml.client.client import Client

_lock = threading.Lock()
_default: list[Client] = []  # at most one: the process's default client


def default_client() -> Client:
    """The process's default client (settings from the environment; see ``use_store``)."""
    if not _default:
        from chachaml.client.client import Client  # the client imports this module

        with _lock:
            if not _default:
                _default.append(Client())
    return _default[0]


def resolve_client(client: Client | None) -> Client:
    """``client``, or the default client when it is ``None``."""
    return client if client is not None else default_client()


class ClientBound:
    """An API bound to a client (the default client when none is given)."""

    def __init__(self, client: Client | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        """The client this API talks through."""
        return resolve_client(self._client)

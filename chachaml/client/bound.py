"""The base of the APIs that act through a client, the default client unless given one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chachaml.client.client import Client


def resolve_client(client: Client | None) -> Client:
    """``client``, or the default client when it is ``None``."""
    if client is not None:
        return client
    import chachaml

    return chachaml.default_client()


class ClientBound:
    """An API bound to a client (the default client when none is given)."""

    def __init__(self, client: Client | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        """The client this API talks through."""
        return resolve_client(self._client)

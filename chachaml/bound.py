"""The base of the APIs that act through a client, the default client unless given one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chachaml.tracking.client import Client


class ClientBound:
    """An API bound to a client (the default client when none is given)."""

    def __init__(self, client: Client | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Client:
        """The client this API talks through."""
        if self._client is not None:
            return self._client
        import chachaml

        return chachaml.default_client()

"""A chachaml server app in the test's own process, reached through ``httpx.ASGITransport``.

The remote store (:class:`~chachaml.client.remote.RemoteStore`) talks to it exactly as to a
``chachaml serve`` over the network (same app, access layer, error envelope, write and read
API), minus the socket and the process: a test pays milliseconds, not a server start. The
server's SQLite store is opened on first use in the event loop that uses it, since a store
belongs to one loop: a tracking ``Client`` sends from its own background loop.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx

from chachaml.client.remote import RemoteStore
from chachaml.store import ServerStore, Store, open_store
from chachaml.store.artifacts import LocalArtifactStore, StoredObject, object_uri
from chachaml.tools.webhooks import Delivery

BASE_URL = "http://127.0.0.1"  # a loopback Host, as a local-mode server requires (conftest)


class InProcessServer(httpx.AsyncBaseTransport):
    """A transport whose far end is ``create_app`` over a SQLite file and an artifact folder.

    ``tokens`` (``CHACHAML_TOKENS`` entries as tuples) put the server in team mode; without
    them it is in local mode, where the client may name the author of each write.
    ``delivery`` is the server's webhook delivery (a receiver on loopback needs
    ``allow_private``); the default refuses private targets, as ``chachaml serve`` does.
    """

    def __init__(
        self,
        db: Path,
        artifacts: Path,
        tokens: tuple[tuple[str, ...], ...] = (),
        delivery: Delivery | None = None,
    ) -> None:
        self.store_url = f"sqlite:///{db}"
        self._artifacts = artifacts
        self._tokens = tokens
        self._delivery = delivery or Delivery()
        self._open: dict[asyncio.AbstractEventLoop, tuple[ServerStore, httpx.ASGITransport]] = {}

    async def _app(self) -> httpx.ASGITransport:
        loop = asyncio.get_running_loop()
        if loop not in self._open:
            from chachaml.server.access import AccessConfig  # the server, only when used
            from chachaml.server.api.routes import ApiConfig
            from chachaml.server.app import create_app

            store = await open_store(self.store_url)
            artifacts = LocalArtifactStore(self._artifacts)
            access = AccessConfig(tokens=self._tokens, local_user="tester")
            api = ApiConfig(delivery=self._delivery)
            app = create_app(store, artifacts=artifacts, access=access, api=api)
            self._open[loop] = (store, httpx.ASGITransport(app))
        return self._open[loop][1]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a request with the app, as a server would."""
        return await (await self._app()).handle_async_request(request)

    async def aclose(self) -> None:
        """Close the server's store of this loop (the client closing its pool ends it)."""
        opened = self._open.pop(asyncio.get_running_loop(), None)
        if opened is not None:
            await opened[1].aclose()
            await opened[0].close()


async def stored_object(store: Store, content: bytes) -> StoredObject:
    """The object an artifact record of ``content`` names, stored where the store needs it.

    A database only records artifacts, so any content-addressed URI does; a server refuses a
    record whose bytes it does not hold, so over a remote store the bytes are uploaded first.
    """
    if isinstance(store, RemoteStore):
        return await store.artifacts.put_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    return StoredObject(object_uri(digest), digest, len(content))

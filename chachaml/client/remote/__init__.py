"""The remote store: the ``Store`` of training code pointed at a server (``CHACHAML_STORE=http://...``).

Why it exists: training code on a laptop, a Dask worker or a CI job should not need database
credentials or a reachable database, only a server URL and a token; and whatever it does
against a server it does exactly as against a database. :class:`RemoteStore` implements every
method of the :class:`~chachaml.store.protocol.Store` protocol (runs, metrics, artifacts, the
whole registry, pipelines, alert rules and their history) as requests to the server's HTTP
API: reads to the versioned store API ``/api/store/v1/``, writes to the write API ``/api/w/``
(the one any language uses), artifact bytes through :class:`HttpArtifactStore`.

What it does not have is the server's own state (the ``ServerStore`` part: tokens,
idempotency keys, firing alerts, the webhook queue): the server keeps that. Alert rules are
evaluated by the server, when metrics arrive and runs end, and on request:
:meth:`RemoteStore.check_alerts`, which ``chachaml.check_alerts()`` calls.

Writes carry an ``Idempotency-Key`` and are retried on connection errors and 503s with the
same key (:mod:`~chachaml.client.remote.connection`). A metric batch's key derives from the
batch id the tracking runtime gives its chunks, so the batch keeps its key when it is sent
again at the next ``flush()`` after a failure; the server records the id with the points, so
a retry never stores a point twice, even after a crash. ``transport=httpx.ASGITransport(app)``
runs a server app in the same process instead of over a socket.
"""

from __future__ import annotations

import httpx

from chachaml.client.remote.artifacts import HttpArtifactStore
from chachaml.client.remote.store import RemoteStore
from chachaml.store import Store, open_store


async def open_any_store(
    url: str, *, token: str | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> Store:
    """The store a URL names: a server's HTTP API, or a database.

    ``http(s)://`` is a chachaml server reached with ``token`` (over ``transport`` if given);
    anything else is the database :func:`chachaml.store.open_store` opens.
    """
    if url.startswith(("http://", "https://")):
        return await RemoteStore.open(url, token, transport=transport)
    return await open_store(url)


__all__ = ["HttpArtifactStore", "RemoteStore", "open_any_store"]

"""One HTTP connection to a chachaml server: retries, idempotency keys, errors as ``ChachamlError``.

Writes (``POST``) carry an ``Idempotency-Key`` and are retried on connection errors and 503s
with the same key, so a write whose answer was lost is not applied twice. The server's error
envelope becomes the error the same call raises against a database (``NotFound``,
``Conflict``, ``InvalidInput``...), so code behaves alike over both.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import anyio
import httpx
from pydantic import TypeAdapter

from chachaml.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)
from chachaml.tls import client_context

ATTEMPTS = 4
READ = "/api/store/v1"  # the read API; writes are under /api/w
USER_HEADER = "X-Chachaml-User"  # who did it, honoured by a server in local mode only
ERRORS: Mapping[int, type[Exception]] = {404: NotFound, 409: Conflict, 413: InvalidInput,
                                         415: InvalidInput, 422: InvalidInput}  # fmt: skip


def raise_for(response: httpx.Response) -> None:
    """Raise the ``ChachamlError`` an unsuccessful answer stands for."""
    if response.is_success:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:500] or response.reason_phrase
    if response.status_code == 401:
        raise Unauthorized(f"the server at {response.url.host} refused the token: {message}")
    if response.status_code == 403:
        raise Forbidden(f"the server at {response.url.host} refused the request: {message}")
    kind = ERRORS.get(response.status_code, StoreUnavailable)
    raise kind(message)


class Connection:
    """An ``httpx.AsyncClient`` to one server, with the retry rule of every request.

    ``transport`` replaces the network: ``httpx.ASGITransport(app)`` runs a server app in the
    same process (tests, notebooks), with no socket.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=client_context(),
        )

    async def close(self) -> None:
        """Close the connection pool (and the transport)."""
        await self.http.aclose()

    async def request(
        self, method: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request, retried with one idempotency key (``key``, else a new one).

        Retried on connection errors, 503s and 409s for an earlier attempt in progress.
        """
        headers = {"Idempotency-Key": key or uuid.uuid4().hex} if method == "POST" else {}
        headers.update(kwargs.pop("headers", None) or {})
        once = hasattr(kwargs.get("content"), "__aiter__")  # a stream cannot be sent again
        delay = 0.2
        for attempt in range(ATTEMPTS):
            last = once or attempt == ATTEMPTS - 1
            try:
                response = await self.http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                if last:
                    raise StoreUnavailable(f"cannot reach {self.url}: {exc!r}") from exc
            else:
                in_progress = response.status_code == 409 and "in progress" in response.text
                if in_progress and last:  # transient: the batch is kept and sent again later
                    raise StoreUnavailable(
                        f"the server at {self.url} is still working on an earlier attempt of"
                        f" {method} {path} (or it died mid-request and the claim has not"
                        " expired yet); will retry"
                    )
                if not (response.status_code == 503 or in_progress) or last:
                    raise_for(response)
                    return response
            await anyio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def get(self, path: str, kind: Any) -> Any:
        """``GET`` a path and validate the answer as ``kind``."""
        return TypeAdapter(kind).validate_json((await self.request("GET", path)).content)

    async def post(
        self,
        path: str,
        body: Any,
        kind: Any = None,
        *,
        key: str | None = None,
        user: str | None = None,
    ) -> Any:
        """``POST`` a JSON body (as ``user`` when the server lets the client say so)."""
        named = user and user.isascii() and user.isprintable()  # what a header can carry
        headers = {USER_HEADER: user} if named else None
        response = await self.request("POST", path, json=body, key=key, headers=headers)
        return None if kind is None else TypeAdapter(kind).validate_json(response.content)


def quoted(part: str) -> str:
    """One path segment, ``/`` included."""
    return quote(part, safe="")

"""Typed JSON endpoints: one declaration gives the Starlette route and its OpenAPI entry.

``Api.route`` records the method, path, scope, request body model and response type of a
handler; the route it builds authorises the caller, reads the body with a size limit,
validates it with pydantic (a 422 listing the fields otherwise), makes writes carrying an
``Idempotency-Key`` header safe to retry, and serialises the answer with the declared type.
:mod:`chachaml.server.api.openapi` reads the same declarations, so the spec cannot drift.

An idempotency key's claim is a lease: if the server dies mid-request the key is in flight
(a retry gets 409 with ``Retry-After``) until the lease runs out, then a retry takes it over
and runs the request again. A write that must not happen twice even then records its own
proof in its transaction: metric batches store :func:`batch_id` with their points.

Each route caps its body (``max_body``: 1 MiB unless it says otherwise), and a body above
``OFFLOAD_BYTES`` is decoded and validated in a worker thread, at most ``HEAVY_AT_ONCE`` at
a time, so a big batch neither stalls the event loop (``/healthz`` keeps answering) nor
multiplies its memory by the number of senders. The decoder and a route's ``validate``
call back into Python per object or slice, which lets the loop take the GIL in between.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.to_thread
from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chachaml.records.validation import NUL_MESSAGE
from chachaml.server.access import require
from chachaml.server.errors import ApiError, envelope, from_validation
from chachaml.store.server_state import Scope, ServerStore

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_JSON_BYTES = 1 << 20  # a JSON body's default cap; bulk routes declare their own
OFFLOAD_BYTES = 1 << 20  # bodies above this are decoded and validated in a worker thread
HEAVY_AT_ONCE = 2
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
INT64 = 1 << 63
LONG_NUMBER = re.compile(rb"\d{19}")  # where an integer may not fit in 64 bits
BodyKind = Literal["json", "multipart", "binary", "none"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "multipart": "multipart/form-data",
    "binary": "application/octet-stream",
}


@dataclass
class Call:
    """One request as a handler sees it: the store, the caller and the validated body."""

    request: Request
    store: ServerStore
    user: str
    body: Any = None
    idempotency_key: str | None = None

    @property
    def batch(self) -> str | None:
        """The id under which a batch write records itself, if it came with a key."""
        key = self.idempotency_key
        return None if key is None else batch_id(self.user, key)

    def path(self, name: str) -> str:
        """A path parameter, without NUL: a 422 naming it here covers every API path alike.

        PostgreSQL cannot hold NUL (a store query with one fails as a 500) and SQLite would
        answer differently, so no handler passes one on to the store.
        """
        value: str = self.request.path_params[name]
        if "\x00" in value:
            raise ApiError(422, f"path parameter {name!r} {NUL_MESSAGE}")
        return value


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    """What the route and the OpenAPI document both need to know about a handler."""

    method: str
    path: str
    summary: str
    handler: Handler
    scope: Scope
    body: Any = None
    body_kind: BodyKind = "none"
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, str, bool], ...] = ()
    binary_response: bool = False
    idempotent: bool = False
    bounded_ints: bool = False  # the body model bounds every integer itself
    from_json: bool = False  # validate straight from the bytes (no Python objects in between)
    max_body: int = MAX_JSON_BYTES
    validate: Callable[[Any], Any] | None = None  # validates a big body in slices


@dataclass
class Api:
    """A list of endpoints; ``route`` is a decorator that adds one."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        scope: Scope,
        body: Any = None,
        body_kind: BodyKind | None = None,
        response: Any = None,
        status: int = 200,
        errors: Sequence[int] = (),
        query: Sequence[tuple[str, str, bool]] = (),
        binary_response: bool = False,
        bounded_ints: bool = False,
        from_json: bool = False,
        max_body: int = MAX_JSON_BYTES,
        validate: Callable[[Any], Any] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a handler; its docstring's first line is the summary.

        ``bounded_ints`` skips the scan of the parsed body for integers beyond 64 bits: for
        bodies whose model bounds every integer field (metric batches, where it costs more
        than parsing when float fractions run to 19 digits). ``from_json`` (with
        ``bounded_ints``) has pydantic validate the bytes as it parses them, a third faster for
        a metric batch than parsing into Python objects first; any body it refuses is read
        again the usual way, for the usual error. ``max_body`` caps a JSON body
        (a 413 beyond); ``validate`` replaces the body model's validation of a body larger
        than ``OFFLOAD_BYTES`` (it runs in a worker thread and should work in slices).
        """

        def add(handler: Handler) -> Handler:
            kind: BodyKind = body_kind or ("json" if body is not None else "none")
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    summary=(handler.__doc__ or "").strip().splitlines()[0],
                    handler=handler,
                    scope=scope,
                    body=body,
                    body_kind=kind,
                    response=response,
                    status=status,
                    errors=tuple(errors),
                    query=tuple(query),
                    binary_response=binary_response,
                    idempotent=method == "POST" and kind == "json",
                    bounded_ints=bounded_ints,
                    from_json=from_json and bounded_ints,
                    max_body=max_body,
                    validate=validate,
                )
            )
            return handler

        return add

    def routes(self, prefix: str = "") -> list[Route]:
        """Starlette routes for every endpoint (one per path, dispatching on method).

        ``prefix`` mounts the same endpoints under another path (MLflow's client reaches one
        protocol under both ``/api/2.0/mlflow`` and ``/ajax-api/2.0/mlflow``).
        """
        by_path: dict[str, dict[str, Endpoint]] = {}
        for ep in self.endpoints:
            by_path.setdefault(prefix + ep.path, {})[ep.method] = ep
        return [
            Route(path, _dispatcher(methods), methods=list(methods))
            for path, methods in by_path.items()
        ]


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or a 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


@functools.cache
def adapter(kind: Any) -> TypeAdapter[Any]:
    """One ``TypeAdapter`` per body or response type (building one costs ~0.1 ms a request)."""
    return TypeAdapter(kind)


def _json_response(ep: Endpoint, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if ep.response is None:
        return Response(status_code=204)
    content = adapter(ep.response).dump_json(result)
    return Response(content, status_code=ep.status, media_type="application/json")


def _check_ints(data: Any) -> None:
    """A 422 for an integer no database column can hold (outside int64)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not -INT64 <= item < INT64:
            raise ApiError(422, f"integer {item} is out of range (must fit in 64 bits)")


def _decode_hook(obj: dict[str, Any]) -> dict[str, Any]:
    """Called per JSON object: a Python frame, where the loop thread can take the GIL."""
    return obj


def _has_lone_surrogate(data: Any) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
    return False


def _decode(raw: bytes, *, threaded: bool) -> Any:
    try:  # pydantic's parser also refuses lone surrogates, which no database can store
        if not threaded:
            return from_json(raw) if raw else None
        data = json.loads(raw, object_hook=_decode_hook) if raw else None
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, f"request body is not valid JSON: {exc}") from None
    if SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(data):
        raise ApiError(422, "request body is not valid JSON: it holds a lone surrogate")
    return data


def _parse_sync(ep: Endpoint, raw: bytes, threaded: bool) -> Any:
    if ep.from_json and not threaded:
        try:
            return adapter(ep.body).validate_json(raw)
        except ValidationError:
            pass  # the usual way below says what is wrong, as for any other body
    data = _decode(raw, threaded=threaded)
    if data is None:
        raise ApiError(422, "request body is missing: send a JSON object")
    if not ep.bounded_ints and LONG_NUMBER.search(raw):
        _check_ints(data)
    try:
        if threaded and ep.validate is not None:
            return ep.validate(data)
        return adapter(ep.body).validate_python(data)
    except ValidationError as exc:
        raise from_validation(exc) from None


_heavy: anyio.CapacityLimiter | None = None


async def _parse(ep: Endpoint, raw: bytes) -> Any:
    """The validated body; a big one is handled in a worker thread, a few at a time."""
    if len(raw) <= OFFLOAD_BYTES:
        return _parse_sync(ep, raw, False)
    global _heavy
    if _heavy is None:
        _heavy = anyio.CapacityLimiter(HEAVY_AT_ONCE)
    return await anyio.to_thread.run_sync(_parse_sync, ep, raw, True, limiter=_heavy)


def _dispatcher(methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        ep = methods[request.method if request.method != "HEAD" else "GET"]
        store: ServerStore = request.app.state.store
        user = require(request, ep.scope).user  # the access layer found the caller
        declared = MEDIA_TYPES.get(ep.body_kind)
        if declared is not None and request.method == "POST":
            media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if media != declared:  # uploads too: no body type a cross-site form picks freely
                raise ApiError(415, f"send the request body as {declared}")
        call = Call(request=request, store=store, user=user)
        if ep.body_kind != "json":
            return _json_response(ep, await ep.handler(call))
        raw = await read_limited(request, ep.max_body)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            call.body = await _parse(ep, raw)
            return _json_response(ep, await ep.handler(call))
        return await _idempotent(ep, call, key, raw)

    return endpoint


def request_hash(method: str, path: str, raw: bytes) -> str:
    """What an idempotency key is bound to: the method, the path and the body's bytes."""
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), raw])).hexdigest()


def batch_id(user: str, key: str) -> str:
    """The batch id of a write sent with an idempotency key (keys are per user)."""
    return hashlib.sha256(f"{user}\0{key}".encode()).hexdigest()[:32]


async def _idempotent(ep: Endpoint, call: Call, key: str, raw: bytes) -> Response:
    """Run a write once per (user, key); a retry gets the stored answer back."""
    if not 1 <= len(key) <= 200:
        raise ApiError(422, "Idempotency-Key must be 1 to 200 characters")
    hashed = request_hash(call.request.method, call.request.url.path, raw)
    lease: float = getattr(call.request.app.state, "idempotency_lease", 60.0)
    stored = await call.store.claim_idempotency_key(call.user, key, hashed, lease)
    if stored is not None:
        if stored.request_hash != hashed:
            raise ApiError(422, f"Idempotency-Key {key!r} was used for a different request")
        if stored.in_flight:
            busy = envelope(409, f"a request with Idempotency-Key {key!r} is still in progress"
                            f" (a claim left by a crash expires after {lease:g} s)")  # fmt: skip
            busy.headers["Retry-After"] = "1"
            return busy
        return Response(
            stored.body or b"",
            status_code=stored.status,
            media_type="application/json" if stored.body else None,
            headers={"Idempotent-Replayed": "true"},
        )
    call.idempotency_key = key
    try:
        call.body = await _parse(ep, raw)
        response = _json_response(ep, await ep.handler(call))
    except BaseException:
        await call.store.release_idempotency_key(call.user, key)
        raise
    body = bytes(response.body)
    await call.store.finish_idempotency_key(call.user, key, response.status_code, body.decode())
    return response

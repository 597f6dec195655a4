"""One JSON error envelope for the HTTP API, installed once as Starlette exception handlers.

Every error answer is ``{"error": {"status": 404, "code": "not_found", "message": "...",
"fields": [...]}}``; ``fields`` (validation errors only) lists ``{"loc": [...], "message"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from chachaml.errors import (
    ChachamlError,
    Conflict,
    Forbidden,
    InvalidInput,
    MissingExtra,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)

CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
    501: "not_installed",
    503: "unavailable",
}
STATUS: Sequence[tuple[type[ChachamlError], int]] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (StoreUnavailable, 503),
    (MissingExtra, 501),  # this server lacks an optional dependency: not the caller's fault
)


class ApiError(Exception):
    """An HTTP error with a status, a message and optional field errors."""

    def __init__(self, status: int, message: str, fields: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = list(fields)


def from_validation(exc: ValidationError, prefix: str = "body") -> ApiError:
    """A 422 listing each field pydantic refused."""
    fields = [
        {"loc": [prefix, *err["loc"]], "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = fields[0] if fields else {"loc": [prefix], "message": "invalid"}
    where = ".".join(str(p) for p in first["loc"])
    return ApiError(422, f"invalid request: {where}: {first['message']}", fields)


def envelope(status: int, message: str, fields: Sequence[Mapping[str, Any]] = ()) -> JSONResponse:
    """The error envelope as a response."""
    error: dict[str, Any] = {
        "status": status,
        "code": CODES.get(status, "error"),
        "message": message,
    }
    if fields:
        error["fields"] = list(fields)
    return JSONResponse({"error": error}, status_code=status)


def status_of(exc: ChachamlError) -> int:
    """The HTTP status of a chachaml error."""
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return envelope(exc.status, exc.message, exc.fields)


async def _chachaml_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChachamlError)
    return envelope(status_of(exc), str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith("/api/"):
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    return envelope(exc.status_code, str(exc.detail))


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    ChachamlError: _chachaml_error,
    HTTPException: _http_error,
}

"""One JSON error envelope for the HTTP API, installed once as Starlette exception handlers.

Every error answer is ``{"error": {"status": 404, "code": "not_found", "message": "...",
"fields": [...]}}``; ``fields`` (validation errors only) lists ``{"loc": [...], "message"}``.

Under MLflow's prefixes (:data:`MLFLOW_PREFIXES`) the same errors take MLflow's wire shape,
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`` with MLflow's HTTP status, so
an unmodified ``mlflow`` client raises the ``MlflowException`` its users catch. The shape is
picked here, by path, for every handler and for the access layer's refusals alike.
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
# MLflow's error codes by chachaml status, and the HTTP status MLflow gives each code
# (mlflow/exceptions.py ERROR_CODE_TO_HTTP_STATUS)
MLFLOW_PREFIXES = (
    "/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/",
    "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/",
)  # fmt: skip
MLFLOW_CODES: Mapping[int, str] = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "ENDPOINT_NOT_FOUND",
    409: "INVALID_PARAMETER_VALUE",  # a write contradicting stored data (a param changed)
    413: "INVALID_PARAMETER_VALUE",  # RESOURCE_EXHAUSTED is 429, which MLflow's client retries
    415: "INVALID_PARAMETER_VALUE",
    422: "INVALID_PARAMETER_VALUE",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
}
MLFLOW_STATUS: Mapping[str, int] = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INVALID_STATE": 500,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
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
    """An HTTP error with a status, a message and optional field errors.

    ``code`` names a protocol's own error code where it has one (MLflow's ``error_code``,
    e.g. ``RESOURCE_ALREADY_EXISTS``); otherwise the code follows from the status.
    """

    def __init__(
        self,
        status: int,
        message: str,
        fields: Sequence[Mapping[str, Any]] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = list(fields)
        self.code = code


def is_mlflow(path: str) -> bool:
    """Whether a path is under MLflow's REST prefixes (errors then take MLflow's shape)."""
    return path.startswith(MLFLOW_PREFIXES)


def mlflow_envelope(status: int, message: str, code: str | None = None) -> JSONResponse:
    """An error in MLflow's shape: its ``error_code`` and the HTTP status MLflow gives it."""
    name = code or MLFLOW_CODES.get(status, "INTERNAL_ERROR")
    return JSONResponse(
        {"error_code": name, "message": message}, status_code=MLFLOW_STATUS.get(name, status)
    )


def envelope_for(
    path: str,
    status: int,
    message: str,
    fields: Sequence[Mapping[str, Any]] = (),
    code: str | None = None,
) -> JSONResponse:
    """The error answer for a request to ``path``: MLflow's shape under its prefixes."""
    if is_mlflow(path):
        return mlflow_envelope(status, message, code)
    return envelope(status, message, fields)


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
    return envelope_for(request.url.path, exc.status, exc.message, exc.fields, exc.code)


async def _chachaml_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChachamlError)
    return envelope_for(request.url.path, status_of(exc), str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if is_mlflow(request.url.path):
        return mlflow_envelope(exc.status_code, str(exc.detail))
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

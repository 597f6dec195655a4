"""What every page shares: templates, query-parameter parsing, the page/JSON twin, errors.

A page handler builds one JSON-ready dict; ``twin`` returns it as JSON under ``/api`` and
renders it through a template everywhere else, so the UI and the API cannot drift.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic_core import to_jsonable_python
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from chachaml.errors import ChachamlError, InvalidInput
from chachaml.records.validation import NUL_MESSAGE
from chachaml.server.errors import envelope_for, status_of
from chachaml.server.ui.times import when

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Pages another piece of the app may add; the nav links them once their route exists.
OPTIONAL_NAV = (("/alerts", "Alerts"), ("/chat", "Chat"))
NAV = (
    ("/", "Overview"),
    ("/runs", "Runs"),
    ("/experiments", "Experiments"),
    ("/search", "Search"),
    ("/compare", "Compare"),
    ("/models", "Models"),
    ("/pipelines", "Pipelines"),
)

Builder = Callable[[Request], Awaitable[dict[str, Any]]]
Handler = Callable[[Request], Awaitable[Response]]


def _cell(value: object) -> str:
    """A value as a table shows it: floats to 4 significant digits, ISO times as ``when``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", value):
        return when(value)  # a <time> element the viewer's browser shows in its own zone
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _with_query(request: Request, **changes: object) -> str:
    """The current URL's query with some parameters replaced (``None`` removes one)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    items += [(k, str(v)) for k, v in changes.items() if v is not None]
    return "?" + urlencode(items)


TEMPLATES = Environment(
    loader=PackageLoader("chachaml.server", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["cell"] = _cell
TEMPLATES.filters["duration"] = _duration
TEMPLATES.filters["when"] = when  # every timestamp a page prints goes through this one


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Models and datetimes to plain JSON types (NaN/inf floats become ``None``/strings)."""
    out: dict[str, Any] = to_jsonable_python(data, inf_nan_mode="constants")
    return out


def is_api(request: Request) -> bool:
    """Whether the request asked for JSON (paths under ``/api``, MLflow's ``/ajax-api``)."""
    return request.url.path.startswith(("/api/", "/ajax-api/"))


def error_response(request: Request, status: int, message: str) -> Response:
    """The API's one error envelope under /api, a page elsewhere."""
    if is_api(request):
        response = envelope_for(request.url.path, status, message)
        response.headers.update(SECURITY_HEADERS)
        return response
    return render(request, "error.html", {"status": status, "message": message}, status)


def guarded(handler: Handler) -> Handler:
    """Turn chachaml errors into 4xx/503 answers with a message (never a 500)."""

    @wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ChachamlError as exc:
            return error_response(request, status_of(exc), str(exc))

    return run


def render(request: Request, template: str, data: dict[str, Any], status: int = 200) -> Response:
    """A page: the template over the page's dict, plus the nav and helpers."""
    paths = {getattr(r, "path", None) for r in request.app.routes}
    nav = [*NAV, *((p, label) for p, label in OPTIONAL_NAV if p in paths)]
    who = request.scope.get("state", {}).get("chachaml.principal")  # the access layer's caller
    html = TEMPLATES.get_template(template).render(
        data=data,
        nav=nav,
        signed_in=getattr(who, "user", None) if getattr(who, "via", None) == "session" else None,
        path=request.url.path,
        with_query=lambda **changes: _with_query(request, **changes),
        api_url="/api" + request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def twin(path: str, build: Builder, template: str) -> list[Route]:
    """A page at ``path`` and its JSON twin at ``/api`` + ``path``, both from ``build``."""

    @guarded
    async def page(request: Request) -> Response:
        data = jsonable(await build(request))
        if is_api(request):
            return JSONResponse(data, headers=SECURITY_HEADERS)
        return render(request, template, data)

    return [Route(path, page), Route("/api" + path, page)]


def store_of(request: Request) -> Any:
    """The app's store (typed loosely: the app state is untyped)."""
    return request.app.state.store


def text_param(request: Request, name: str, max_len: int = 200) -> str | None:
    """An optional text query parameter (empty means absent)."""
    value = request.query_params.get(name, "").strip()
    if len(value) > max_len:
        raise InvalidInput(f"query parameter {name!r} is longer than {max_len} characters")
    return _no_nul(value, f"query parameter {name!r}") or None


def int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within ``lo..hi``."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise InvalidInput(f"query parameter {name!r} must be between {lo} and {hi}, got {value}")
    return value


def choice_param(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    """A query parameter that must be one of ``choices``."""
    value = request.query_params.get(name, "").strip() or default
    if value not in choices:
        raise InvalidInput(f"query parameter {name!r} must be one of {', '.join(choices)}")
    return value


def date_param(request: Request, name: str) -> str | None:
    """An optional ISO date or datetime query parameter, checked here for a clear message."""
    value = text_param(request, name, 40)
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"query parameter {name!r} must be an ISO date like 2025-01-31, got {value!r}"
        ) from None
    return value


def list_param(request: Request, name: str) -> list[str]:
    """Every value of a repeated parameter, also split on commas, blanks dropped."""
    return [
        _no_nul(part.strip(), f"query parameter {name!r}")
        for raw in request.query_params.getlist(name)
        for part in raw.split(",")
        if part.strip()
    ]


def _no_nul(value: str, what: str) -> str:
    """Refuse NUL in a URL's text: PostgreSQL cannot compare it (the same 422 on SQLite)."""
    if "\x00" in value:
        raise InvalidInput(f"{what} {NUL_MESSAGE}")
    return value


def path_param(request: Request, name: str) -> str:
    """A path parameter as text (without NUL)."""
    return _no_nul(str(request.path_params[name]), f"path segment {name!r}")

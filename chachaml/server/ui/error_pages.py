"""Error pages for the UI's routes: unknown paths and failures get a styled page with the nav.

Starlette answers an unknown path or a wrong method with an ``HTTPException``; under ``/api``
that stays the API's JSON error envelope, elsewhere it becomes ``error.html``.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from chachaml.server.errors import EXCEPTION_HANDLERS, envelope_for
from chachaml.server.ui.common import SECURITY_HEADERS, is_api, render

TITLES = {404: "Page not found", 405: "Method not allowed", 500: "Something went wrong"}


async def http_error(request: Request, exc: Exception) -> Response:
    """An unknown route or method: the API's envelope under ``/api``, a styled page elsewhere."""
    assert isinstance(exc, HTTPException)
    if is_api(request) or exc.status_code < 400:
        return await EXCEPTION_HANDLERS[HTTPException](request, exc)
    if exc.status_code == 404:
        message = f"There is no page at {request.url.path}."
    else:
        message = str(exc.detail)
    data = {"status": exc.status_code, "title": TITLES.get(exc.status_code), "message": message}
    response = render(request, "error.html", data, exc.status_code)
    response.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    """A bug: the envelope under ``/api``, a styled page elsewhere; never a traceback.

    Starlette re-raises the exception after this answer, so the server log keeps it.
    """
    message = "The server failed to answer this request; its log has the details."
    if is_api(request):
        response: Response = envelope_for(request.url.path, 500, message)
        response.headers.update(SECURITY_HEADERS)
        return response
    data = {"status": 500, "title": TITLES[500], "message": message}
    try:
        return render(request, "error.html", data, 500)
    except Exception:  # the page itself failed: plain text still says what happened
        return PlainTextResponse(message, status_code=500, headers=SECURITY_HEADERS)


ERROR_HANDLERS = {HTTPException: http_error, Exception: server_error}

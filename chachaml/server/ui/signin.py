"""Signing a browser in: paste a token, get an HttpOnly, SameSite=Strict session cookie.

The session cookie holds the token itself, so revoking the token ends every session made
with it within the access layer's refresh time, and any replica can check it. A readable
CSRF cookie goes with it; the UI's scripts echo it in ``X-CSRF-Token`` on every write
(double submit), which a page of another site cannot read. The forms themselves are
same-origin checked by the access layer like every other write.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from chachaml.server.access import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AccessPolicy,
    new_csrf,
    principal_of,
    session_cookies,
)
from chachaml.server.api.endpoint import read_limited
from chachaml.server.ui.common import render

MAX_FORM_BYTES = 4096


def _next(target: str | None) -> str:
    """A local path to go back to; anything else (``//evil``, ``https://...``) goes home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target


def signin_routes(policy: AccessPolicy) -> list[Route]:
    """``GET/POST /signin`` and ``POST /signout``."""

    async def page(request: Request, error: str = "", status: int = 200) -> Response:
        who = principal_of(request)
        data = {
            "next": _next(request.query_params.get("next")),
            "error": error,
            "user": who.user if who.via in ("session", "token") else None,
            "scope": who.scope,
        }
        return render(request, "signin.html", data, status)

    async def signin(request: Request) -> Response:
        if request.method != "POST":
            return await page(request)
        form = parse_qs((await read_limited(request, MAX_FORM_BYTES)).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        owner = await policy.owner(token) if token else None
        if owner is None:
            return await page(request, "That token is unknown or revoked.", 401)
        response = RedirectResponse(_next((form.get("next") or [""])[0]), status_code=303)
        secure = request.url.scheme == "https"
        response.raw_headers.extend(session_cookies(token, new_csrf(), secure))
        return response

    async def signout(request: Request) -> Response:
        response = RedirectResponse("/signin", status_code=303)
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            response.delete_cookie(name, path="/", samesite="strict")
        return response

    return [
        Route("/signin", signin, methods=["GET", "POST"]),
        Route("/signout", signout, methods=["POST"]),
    ]

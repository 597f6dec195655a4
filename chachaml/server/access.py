"""The one access layer: who is calling, and whether they may, checked once for every request.

``AccessLayer`` is ASGI middleware installed by :func:`chachaml.server.app.create_app` around
the whole app, so the UI, its JSON twins, ``/api/*``, the write API, exports, downloads,
``/mcp``, ``/api/chat`` and any route added later pass it; a route cannot opt out by
forgetting a call. Two modes:

- **local** (a loopback bind and no token anywhere): open to the person at the keyboard,
  closed to browsers of other origins. The Host must be a loopback name or one of
  ``CHACHAML_ALLOWED_HOSTS`` (DNS rebinding), and a state-changing request must be
  same-origin (``Sec-Fetch-Site``, ``Origin``) and may not carry a body type a cross-site form
  can send without a preflight.
- **team** (a token exists, in ``CHACHAML_TOKENS`` or the store, or a non-loopback bind):
  every request needs a token (``Authorization: Bearer``, or the sign-in session cookie),
  reads included, unless ``CHACHAML_PUBLIC_READS=true``. Cookie-authenticated writes also
  need the CSRF header (double submit). Scopes: ``read`` < ``write`` < ``admin``.

The mode is re-read from the store every few seconds, so a token created or revoked with
``chachaml token`` takes effect on a running server without a restart. The caller is left in
``scope["state"]`` as a :class:`Principal`; handlers ask :func:`require` for a scope, and the
MCP server reads it for each tool call (:mod:`chachaml.server.mcp.access`).
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from chachaml.errors import Forbidden, Unauthorized
from chachaml.server.errors import ApiError, envelope_for, is_mlflow
from chachaml.server.tokens import hash_token
from chachaml.store.server_state import SCOPES, ServerStore, TokenOwner, allows
from chachaml.store.server_state import Scope as TokenScope

Mode = Literal["local", "team"]
PRINCIPAL = "chachaml.principal"
SESSION_COOKIE = "chachaml_session"
CSRF_COOKIE = "chachaml_csrf"
CSRF_HEADER = "x-csrf-token"
USER_HEADER = "x-chachaml-user"
ANONYMOUS = "anonymous"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What answers without a token in team mode: probes for load balancers, the sign-in page, the
# static files it needs and the API's OpenAPI document (it holds no data). Nothing else; the
# route test enumerates the app against this.
PUBLIC_PATHS = frozenset(
    {"/health", "/healthz", "/readyz", "/signin", "/signout", "/api/openapi.json",
     # MLflow 3's capability probe, public as in MLflow (chachaml.server.api.mlflow.server_info)
     "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"}
)  # fmt: skip
PUBLIC_PREFIXES = ("/static/",)
# POST routes that read: each checks the scope of what it does (per endpoint, per MCP tool).
# MLflow's client searches with POST.
READ_POSTS = (
    "/mcp",
    "/api/store/",
    *(
        f"{prefix}2.0/mlflow/{noun}/search"
        for prefix in ("/api/", "/ajax-api/")
        for noun in ("runs", "experiments", "logged-models")
    ),
    *(
        f"{prefix}2.0/mlflow/registered-models/get-latest-versions"
        for prefix in ("/api/", "/ajax-api/")
    ),
)
# Body types a cross-site HTML form can send without a CORS preflight; only the sign-in
# forms take one (and they are same-origin checked like every other write).
FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
FORM_PATHS = frozenset({"/signin", "/signout"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class Principal:
    """Who a request acts as, and with what scope (``None``: an anonymous public reader)."""

    user: str
    scope: TokenScope | None
    via: Literal["local", "token", "session", "anonymous"]

    def may(self, needed: TokenScope) -> bool:
        """Whether this caller holds ``needed`` (admin covers write covers read)."""
        if self.scope is None:
            return needed == "read"
        return allows(self.scope, needed)


@dataclass(frozen=True)
class AccessConfig:
    """How ``chachaml serve`` was started, as far as access goes.

    ``tokens`` are ``CHACHAML_TOKENS``' ``(user, token)`` pairs (write scope) or
    ``(user, token, scope)`` triples; ``insecure``
    keeps a non-loopback bind in local mode (``--insecure``: for a container whose port is
    published on loopback only). ``local_user`` is who local-mode writes are attributed to
    when the request does not name a user.
    """

    tokens: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    public_reads: bool = False
    allowed_hosts: tuple[str, ...] = ()
    bind: str = "127.0.0.1"
    insecure: bool = False
    local_user: str = "local"
    refresh_seconds: float = 2.0


def is_loopback(host: str) -> bool:
    """Whether a listen address or Host name only reaches this machine."""
    name = host.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _scope(given: tuple[str, ...]) -> TokenScope:
    """The scope of a ``CHACHAML_TOKENS`` entry (write unless it names another)."""
    for known in SCOPES:
        if given and given[0] == known:
            return known
    return "write"


def _host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:8080`` -> ``::1``, ``a.b:80`` -> ``a.b``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class AccessPolicy:
    """The config plus what the store says now: the mode and who each token belongs to.

    Answers are cached for ``refresh_seconds`` so a request costs no query in the steady
    state, while a token created or revoked takes effect within that time.
    """

    def __init__(self, config: AccessConfig, store: ServerStore) -> None:
        self.config = config
        self._store = store
        self._static = {
            hash_token(entry[1]): TokenOwner(entry[0], _scope(entry[2:])) for entry in config.tokens
        }
        self._hosts = frozenset(h.strip().lower() for h in config.allowed_hosts if h.strip())
        self._bind_local = is_loopback(config.bind)
        self._has_tokens: tuple[float, bool] = (-1.0, False)
        self._owners: dict[str, tuple[float, TokenOwner | None]] = {}

    async def mode(self) -> Mode:
        """``team`` once any token exists or the bind is not loopback (unless insecure)."""
        if self._static or (not self._bind_local and not self.config.insecure):
            return "team"
        now = time.monotonic()
        checked, found = self._has_tokens
        if now - checked > self.config.refresh_seconds:
            found = await self._store.has_tokens()
            self._has_tokens = (now, found)
        return "team" if found else "local"

    async def owner(self, token: str) -> TokenOwner | None:
        """Who a token belongs to (``None``: unknown or revoked)."""
        digest = hash_token(token)
        static = self._static.get(digest)
        if static is not None:
            return static
        now = time.monotonic()
        cached = self._owners.get(digest)
        if cached is not None and now - cached[0] <= self.config.refresh_seconds:
            return cached[1]
        found = await self._store.find_token(digest)
        if len(self._owners) > 10_000:  # bounded: a flood of random tokens cannot grow it
            self._owners.clear()
        self._owners[digest] = (now, found)
        return found

    def host_allowed(self, host: str, mode: Mode) -> bool:
        """Loopback names and the configured hosts; any host in team mode without a list."""
        name = _host_name(host)
        if name in self._hosts or host.strip().lower() in self._hosts:
            return True
        if mode == "team" and not self._hosts:
            return True
        return is_loopback(name) if name else False

    def describe(self, mode: Mode) -> str:
        """The mode in one line, for the server's start-up message."""
        if mode == "local":
            return (
                "local mode: open to this machine, closed to other origins"
                " (creating a token with `chachaml token create` switches to team mode)"
            )
        reads = "reads are public" if self.config.public_reads else "reads need a token too"
        return f"team mode: every request needs a token ({reads}); browsers sign in at /signin"


def principal_of(conn: HTTPConnection) -> Principal:
    """The caller the access layer found; a 403 if the layer is not installed (fail closed)."""
    found = conn.scope.get("state", {}).get(PRINCIPAL)
    if not isinstance(found, Principal):
        raise ApiError(403, "this route is not behind chachaml's access layer")
    return found


def require(conn: HTTPConnection, scope: TokenScope) -> Principal:
    """The caller if they hold ``scope``; 401 for an anonymous caller, 403 for too small a scope."""
    who = principal_of(conn)
    if who.may(scope):
        return who
    if who.scope is None:
        raise Unauthorized(f"this needs a token with {scope} scope: send Authorization: Bearer")
    raise Forbidden(f"the token of {who.user!r} has {who.scope} scope; this needs {scope}")


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").partition(";")[0].strip().lower()


def _same_origin(headers: Mapping[str, str]) -> str | None:
    """Why a state-changing request is cross-site, or ``None`` when it is not."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is None:  # an older browser may send only a Referer
        referer = headers.get("referer")
        origin = None if referer is None else "{0.scheme}://{0.netloc}".format(urlsplit(referer))
    if origin is None:
        return None  # not a browser: nothing to forge
    host = headers.get("host", "").strip().lower()
    if origin == "null" or urlsplit(origin).netloc.lower() != host or not host:
        return f"cross-site request refused: origin {origin!r} is not this server"
    return None


def new_csrf() -> str:
    """A fresh CSRF value for the double-submit cookie."""
    return secrets.token_urlsafe(24)


class AccessLayer:
    """ASGI middleware: resolve the caller and refuse what the mode does not allow."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the request through with its caller recorded, or answer the refusal."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        outcome = await self._check(conn)
        if isinstance(outcome, Response):
            await outcome(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = outcome
        await self.app(scope, receive, send)

    async def _check(self, conn: HTTPConnection) -> Principal | Response:
        policy = self.policy
        headers = conn.headers
        path = conn.url.path
        try:
            mode = await policy.mode()
        except Exception:  # the store is down: probes still answer, nothing else does
            if path in PUBLIC_PATHS:
                return Principal(ANONYMOUS, None, "anonymous")
            return _refuse(conn, 503, "the store is unavailable: cannot check access")
        method = conn.scope.get("method", "GET")
        if not policy.host_allowed(headers.get("host", ""), mode):
            return _refuse(
                conn,
                403,
                f"Host {headers.get('host', '')!r} is not this server's: set"
                " CHACHAML_ALLOWED_HOSTS to the name browsers use for it",
            )
        unsafe = method not in SAFE_METHODS
        if unsafe:
            why = _same_origin(headers)
            if why is not None:
                return _refuse(conn, 403, why)
            # only a POST can come from a form (other methods need a preflight), so a PUT may
            # carry its file's own type (MLflow's artifact uploads send text/plain for .txt)
            if method == "POST" and _media_type(headers) in FORM_TYPES and path not in FORM_PATHS:
                media = _media_type(headers)
                if not (media == "multipart/form-data" and path.startswith("/api/w/")):
                    return _refuse(
                        conn, 415, f"{media} bodies are not accepted here: send application/json"
                    )
        try:
            who = await self._who(conn, mode)
        except ApiError as exc:
            return _refuse(conn, exc.status, exc.message)
        if who.via == "session" and unsafe and path not in FORM_PATHS:
            sent = headers.get(CSRF_HEADER, "")
            if not sent or not secrets.compare_digest(sent, conn.cookies.get(CSRF_COOKIE, "")):
                return _refuse(conn, 403, "missing or wrong X-CSRF-Token header")
        if who.scope is None and not self._anonymous_may(path, method):
            return _refuse(conn, 401, "this server needs a token: send Authorization: Bearer")
        needed = self._floor(path, method)
        if needed is not None and not who.may(needed):
            if who.scope is None:
                return _refuse(conn, 401, f"this needs a token with {needed} scope")
            return _refuse(conn, 403, f"the token of {who.user!r} has {who.scope} scope")
        return who

    async def _who(self, conn: HTTPConnection, mode: Mode) -> Principal:
        header = conn.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        token = token.strip()
        if header and (kind.lower() != "bearer" or (mode == "team" and not token)):
            raise ApiError(401, "the Authorization header must be 'Bearer <token>'")
        if token:
            owner = await self._owner(token)
            if owner is None:
                raise ApiError(401, "unknown or revoked token")
            return Principal(owner.user, owner.scope, "token")
        session = conn.cookies.get(SESSION_COOKIE)
        if session and mode == "team":
            owner = await self._owner(session)
            if owner is not None:
                return Principal(owner.user, owner.scope, "session")
        if mode == "local":
            user = conn.headers.get(USER_HEADER) or self.policy.config.local_user
            return Principal(user[:200], "admin", "local")
        return Principal(ANONYMOUS, None, "anonymous")

    async def _owner(self, token: str) -> TokenOwner | None:
        try:
            return await self.policy.owner(token)
        except Exception:
            raise ApiError(503, "the store is unavailable: cannot check the token") from None

    def _anonymous_may(self, path: str, method: str) -> bool:
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return True
        if not self.policy.config.public_reads:
            return False
        return method in SAFE_METHODS or path.startswith(READ_POSTS)

    @staticmethod
    def _floor(path: str, method: str) -> TokenScope | None:
        """The least scope any request to this path needs; handlers may ask for more."""
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or path in FORM_PATHS:
            return None
        if method in SAFE_METHODS or path.startswith(READ_POSTS) or path == "/api/chat":
            return "read"
        return "write"


def _wants_html(conn: HTTPConnection) -> bool:
    path = conn.url.path
    accept = conn.headers.get("accept", "")
    return (
        conn.scope.get("method") in ("GET", "HEAD")
        and not path.startswith(("/api/", "/mcp"))
        and not is_mlflow(path)
        and "text/html" in accept
    )


def _refuse(conn: HTTPConnection, status: int, message: str) -> Response:
    """The error envelope, or the sign-in page for a browser that has no session yet."""
    if status == 401 and _wants_html(conn):
        target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
    response: JSONResponse = envelope_for(conn.url.path, status, message)
    if status == 401:
        response.headers["www-authenticate"] = 'Bearer realm="chachaml"'
    return response


def session_cookies(token: str, csrf: str, secure: bool) -> Iterable[tuple[bytes, bytes]]:
    """``Set-Cookie`` headers of a signed-in browser: the HttpOnly session and the CSRF value."""
    jar: SimpleCookie = SimpleCookie()
    jar[SESSION_COOKIE] = token
    jar[CSRF_COOKIE] = csrf
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        morsel: Any = jar[name]
        morsel["path"] = "/"
        morsel["samesite"] = "Strict"
        morsel["max-age"] = 7 * 86400
        morsel["httponly"] = http_only
        morsel["secure"] = secure
        yield b"set-cookie", morsel.OutputString().encode("latin-1")

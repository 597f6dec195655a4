"""Who an MCP request acts as: the access layer's caller over HTTP, the local user over stdio.

:class:`CallerMiddleware` runs for every MCP message (an SDK ``ServerMiddleware``) and leaves
the caller in a context variable for the duration of the call; :func:`check_tool` refuses a
tool that writes to a caller without write scope, as a tool error an agent can read, and
:func:`caller_user` is who a write is attributed to (the registry's audit trail). A call
with no caller recorded is refused, so a transport that skipped the middleware fails closed.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from starlette.requests import HTTPConnection

from chachaml.server.access import PRINCIPAL, Principal
from chachaml.tools.catalogue import SPECS

CALLER: ContextVar[Principal | None] = ContextVar("chachaml_mcp_caller", default=None)


class CallerMiddleware:
    """Record each message's caller: the HTTP request's principal, else the local user."""

    def __init__(self, local_user: str) -> None:
        self.local = Principal(local_user, "admin", "local")

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Run the rest of the chain with the caller set."""
        request = ctx.request
        who: Principal | None = self.local
        if isinstance(request, HTTPConnection):
            found = request.scope.get("state", {}).get(PRINCIPAL)
            who = found if isinstance(found, Principal) else None
        token = CALLER.set(who)
        try:
            return await call_next(ctx)
        finally:
            CALLER.reset(token)


def check_tool(name: str) -> str | None:
    """Why the current caller may not run tool ``name``, or ``None`` when they may."""
    who = CALLER.get()
    if who is None:
        return "refused: this MCP request did not pass chachaml's access layer"
    spec = SPECS.get(name)
    if spec is not None and spec.admin and not who.may("admin"):
        held = "no token" if who.scope is None else f"a {who.scope} token"
        return (
            f"{name} manages the server's webhook subscriptions and needs a token with admin"
            f" scope; this caller has {held}."
        )
    if spec is not None and spec.writes and not who.may("write"):
        held = "no token" if who.scope is None else f"a {who.scope} token"
        does = "sends a webhook" if spec.open_world else "changes stored data"
        return (
            f"{name} {does} and needs a token with write scope; this caller has {held}."
            " Ask for a write token, or use the read tools."
        )
    return None


def caller_user(default: str) -> str:
    """Who the current MCP call acts as (``default`` outside a call)."""
    who = CALLER.get()
    return default if who is None or who.via == "local" else who.user

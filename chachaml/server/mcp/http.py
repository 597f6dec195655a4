"""MCP over streamable HTTP at ``/mcp``: single requests stateless, sessions for those who open one.

A request on its own (a 2026-07-28 request, or a bare ``tools/call`` as ``curl`` sends it) is
served statelessly, so any replica can answer it. A handshake-era client that sends
``initialize`` gets a session (``Mcp-Session-Id``) and a standing ``GET`` stream, which is
what ``resources/subscribe`` needs to deliver ``notifications/resources/updated`` later; its
later requests name the session and reach the same manager. Behind several replicas such
clients need session affinity on that header (a 2026-07-28 client subscribes with
``subscriptions/listen`` and needs none).

A session belongs to the caller who opened it: the access layer's principal is handed to the
SDK as the request's user, so a request naming another caller's session is answered 404.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from chachaml.server.access import PRINCIPAL, Principal

PATH = "/mcp"
PEEK_LIMIT = 65536  # an initialize request is far smaller; a larger body is served statelessly


def _opens_session(body: bytes) -> bool:
    """Whether a POST body is a handshake-era ``initialize`` request."""
    if b"initialize" not in body:  # most requests: no parse
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return False
    params = message.get("params")
    return isinstance(params, dict) and params.get("protocolVersion") in HANDSHAKE_PROTOCOL_VERSIONS


async def _read_start(receive: Receive) -> tuple[bytes, list[Message], bool]:
    """The body's first ``PEEK_LIMIT`` bytes, the messages read, and whether that was all."""
    seen: list[Message] = []
    body = b""
    while len(body) <= PEEK_LIMIT:
        message = await receive()
        seen.append(message)
        if message["type"] != "http.request":
            return body, seen, False
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body, seen, True
    return body, seen, False


def _replaying(seen: list[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return seen.pop(0) if seen else await receive()

    return replay


class McpEndpoint:
    """The ``/mcp`` ASGI app: one stateless manager and one session manager over one server."""

    def __init__(self, server: MCPServer) -> None:
        lowlevel = server._lowlevel_server
        # Host and Origin are checked for every route by the access layer, /mcp included
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self.single = StreamableHTTPSessionManager(
            lowlevel, json_response=True, stateless=True, security_settings=security
        )
        self.sessions = StreamableHTTPSessionManager(
            lowlevel, json_response=True, stateless=False, security_settings=security
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Run both managers (in the app's lifespan); open sessions end with it."""
        async with self.single.run(), self.sessions.run():
            yield

    def route(self) -> Route:
        """The route to mount."""
        return Route(PATH, endpoint=self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request through the manager it belongs to."""
        headers = Headers(scope=scope)
        if headers.get("mcp-session-id") is not None:
            await self.sessions.handle_request(self._owned(scope), receive, send)
            return
        version = headers.get("mcp-protocol-version")  # (a 2026-07-28 request is stateless)
        if scope["method"] == "POST" and (
            version is None or version in HANDSHAKE_PROTOCOL_VERSIONS
        ):
            body, seen, whole = await _read_start(receive)
            receive = _replaying(seen, receive)
            if whole and _opens_session(body):
                await self.sessions.handle_request(self._owned(scope), receive, send)
                return
        await self.single.handle_request(scope, receive, send)

    @staticmethod
    def _owned(scope: Scope) -> Scope:
        """The request with its caller as the SDK's user (who owns, or must own, the session)."""
        who = scope.get("state", {}).get(PRINCIPAL)
        if not isinstance(who, Principal):
            return scope
        token = AccessToken(token="", client_id=who.user, scopes=[str(who.scope)], subject=who.user)
        return {**scope, "user": AuthenticatedUser(token)}

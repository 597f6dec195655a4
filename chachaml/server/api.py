"""The HTTP API wired into an app.

Write endpoints, store reads, the OpenAPI document, the token policy and the one JSON
error envelope.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.server import api_store, api_write
from chachaml.server.api_errors import EXCEPTION_HANDLERS
from chachaml.server.auth import Auth
from chachaml.server.endpoints import Endpoint
from chachaml.server.openapi import build_document
from chachaml.settings import Settings
from chachaml.store.protocol import Store
from chachaml.tools.webhooks import Delivery

ENDPOINTS: tuple[Endpoint, ...] = (*api_write.api.endpoints, *api_store.api.endpoints)


@dataclass(frozen=True)
class ApiConfig:
    """How the HTTP API behaves: tokens, upload size limit, alert delivery."""

    auth: Auth = field(default_factory=Auth)
    max_upload_bytes: int = 1 << 30
    delivery: Delivery = field(default_factory=Delivery)


def _version() -> str:
    try:
        return version("chachaml")
    except PackageNotFoundError:
        return "0"


async def openapi(request: Request) -> JSONResponse:
    """The OpenAPI 3.1 document of the read and write API."""
    doc = build_document(ENDPOINTS, request.app.routes, _version())
    return JSONResponse(doc)


def install_api(app: Starlette, config: ApiConfig | None = None) -> None:
    """Add the API's routes (ahead of the others), state and error handlers to an app."""
    cfg = config or ApiConfig()
    routes = [*api_write.api.routes(), *api_store.api.routes(), Route("/api/openapi.json", openapi)]
    app.router.routes[:0] = routes
    for kind, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(kind, handler)
    app.state.auth = cfg.auth
    app.state.max_upload_bytes = cfg.max_upload_bytes
    app.state.delivery = cfg.delivery


def is_loopback(host: str) -> bool:
    """Whether a listen address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ApiOptions:
    """What ``chachaml serve`` was told about the API, turned into an :class:`ApiConfig`."""

    settings: Settings
    insecure: bool = False

    async def config(self, store: Store, host: str) -> ApiConfig:
        """The API config for a server on ``host``; ``InvalidInput`` for an unsafe setup.

        Without tokens (``CHACHAML_TOKENS`` or tokens in the store), writes are open, which
        only a loopback server or an explicit ``--insecure`` may do.
        """
        s = self.settings
        configured = bool(s.tokens) or await store.has_tokens()
        if not configured and not is_loopback(host) and not self.insecure:
            raise InvalidInput(
                f"refusing to listen on {host} without API tokens: anyone could write. Set"
                " CHACHAML_TOKENS=user:token, create one with `chachaml token create --user"
                " NAME`, or pass --insecure"
            )
        auth = Auth.from_pairs(s.tokens, protect_reads=s.auth_reads, open_writes=not configured)
        delivery = Delivery.from_settings(s)
        return ApiConfig(auth=auth, max_upload_bytes=s.max_upload_bytes, delivery=delivery)

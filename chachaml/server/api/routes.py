"""The HTTP API wired into an app.

Write endpoints (runs, registry, pipelines, alert rules), the versioned store reads, MLflow's
tracking protocol, the OpenAPI document and the one JSON error envelope. Who may
call them is the access layer's business (:mod:`chachaml.server.access`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chachaml.errors import InvalidInput
from chachaml.server.access import AccessConfig, is_loopback
from chachaml.server.api import alerts as api_alerts
from chachaml.server.api import events as api_events
from chachaml.server.api import experiments as api_experiments
from chachaml.server.api import pipelines as api_pipelines
from chachaml.server.api import registry as api_registry
from chachaml.server.api import store as api_store
from chachaml.server.api import subscriptions as api_subscriptions
from chachaml.server.api import write as api_write
from chachaml.server.api.endpoint import Endpoint
from chachaml.server.api.mlflow.metrics import Heartbeats
from chachaml.server.api.mlflow.routes import mlflow_routes
from chachaml.server.api.openapi import build_document
from chachaml.server.errors import EXCEPTION_HANDLERS
from chachaml.settings import Settings
from chachaml.store.server_state import ServerStore
from chachaml.tools.webhooks import Delivery

APIS = (
    api_write.api,
    api_experiments.api,
    api_registry.api,
    api_pipelines.api,
    api_alerts.api,
    api_subscriptions.api,
    api_store.api,
    api_events.api,
)
ENDPOINTS: tuple[Endpoint, ...] = tuple(ep for api in APIS for ep in api.endpoints)


@dataclass(frozen=True)
class ApiConfig:
    """How the HTTP API behaves: upload size limit, alert delivery."""

    max_upload_bytes: int = 1 << 30
    delivery: Delivery = field(default_factory=Delivery)
    idempotency_lease: float = 60.0  # seconds before a crashed request's key may be retried
    events_retention: float = 7 * 86400.0  # seconds an event is kept in the outbox
    events_sweep: float = 5.0  # seconds between two looks for runs whose heartbeat went stale
    events_heartbeat: float = 15.0  # seconds between two SSE comment lines on a quiet stream


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
    routes = [
        *(r for api in APIS for r in api.routes()),
        *mlflow_routes(),  # MLflow's tracking protocol, for unmodified mlflow clients
        Route("/api/openapi.json", openapi),
    ]
    app.router.routes[:0] = routes
    for kind, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(kind, handler)
    app.state.max_upload_bytes = cfg.max_upload_bytes
    app.state.delivery = cfg.delivery
    app.state.idempotency_lease = cfg.idempotency_lease
    app.state.events_heartbeat = cfg.events_heartbeat
    app.state.mlflow_heartbeats = Heartbeats()


@dataclass(frozen=True)
class ApiOptions:
    """What ``chachaml serve`` was told about the API, turned into an :class:`ApiConfig`."""

    settings: Settings
    insecure: bool = False

    async def config(self, store: ServerStore, host: str) -> ApiConfig:
        """The API config for a server on ``host``; ``InvalidInput`` for an unsafe setup.

        A non-loopback server is in team mode (every request needs a token); without any
        token nobody could use it, so it refuses to start unless ``--insecure`` keeps it in
        local mode (for a container whose port is published on loopback only).
        """
        s = self.settings
        configured = bool(s.tokens) or await store.has_tokens()
        if not configured and not is_loopback(host) and not self.insecure:
            raise InvalidInput(
                f"refusing to listen on {host} without API tokens: a non-loopback server needs"
                " a token for every request. Set CHACHAML_TOKENS=user:token, create one with"
                " `chachaml token create --store URL --user NAME`, or pass --insecure"
            )
        return ApiConfig(
            max_upload_bytes=s.max_upload_bytes,
            delivery=Delivery.from_settings(s),
            idempotency_lease=s.idempotency_lease,
            events_retention=s.events_retention,
            events_sweep=s.events_sweep,
            events_heartbeat=s.events_heartbeat,
        )

    def access(self, host: str) -> AccessConfig:
        """The access layer's config for a server bound to ``host``."""
        s = self.settings
        return AccessConfig(
            tokens=s.tokens,
            public_reads=s.public_reads,
            allowed_hosts=s.allowed_hosts,
            bind=host,
            insecure=self.insecure,
            local_user=s.user,
        )

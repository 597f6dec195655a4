"""The web app: one Starlette application over one store, with MCP (streamable HTTP) at ``/mcp``.

``create_app`` only constructs; the caller opens and closes the store, and the app's lifespan
runs the MCP endpoint. Single MCP requests are stateless, so any number of replicas can serve
the same store behind a load balancer; handshake-era MCP clients get a session (for resource
subscriptions), which needs affinity on ``Mcp-Session-Id`` there
(:mod:`chachaml.server.mcp.http`).
"""

from __future__ import annotations

import contextlib
import gc
import resource
import socket
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chachaml.server.access import AccessConfig, AccessLayer, AccessPolicy
from chachaml.server.api.chat import ChatOptions, chat_routes
from chachaml.server.api.routes import ApiConfig, ApiOptions, install_api
from chachaml.server.health import healthz, readyz
from chachaml.server.mcp.http import McpEndpoint
from chachaml.server.mcp.resource_updates import ResourceSubscriptions
from chachaml.server.mcp.server import build_mcp
from chachaml.server.ui import ERROR_HANDLERS, ui_routes
from chachaml.server.ui.signin import signin_routes
from chachaml.store import open_store
from chachaml.store.artifacts import ArtifactStore, open_artifact_store
from chachaml.store.server_state import ServerStore
from chachaml.tools.brokers import Broker, open_brokers
from chachaml.tools.brokers.publisher import run_brokers
from chachaml.tools.deliveries import run_delivery_worker
from chachaml.tools.events import EventFeed, run_event_sweeper

if TYPE_CHECKING:
    from chachaml.settings import S3Settings


async def health(request: Request) -> JSONResponse:
    """Liveness: the app is up."""
    return JSONResponse({"status": "ok"})


def create_app(
    store: ServerStore,
    *,
    artifacts: ArtifactStore | None = None,
    toolsets: Iterable[str] = (),
    read_only: bool = False,
    host: str = "127.0.0.1",
    user: str = "mcp",
    api: ApiConfig | None = None,
    chat: ChatOptions | None = None,
    access: AccessConfig | None = None,
    brokers: Sequence[Broker] = (),
) -> Starlette:
    """The chachaml web app over an open store: ``/mcp`` (streamable HTTP) and the probes.

    ``/health`` and ``/healthz`` say the process is up; ``/readyz`` that the store and
    artifact store answer.

    Every request passes one access layer (:mod:`chachaml.server.access`), installed here
    around the whole app; ``access`` says how the server was started (binding, tokens,
    public reads, allowed hosts). ``host`` is kept for callers that only name the bind.
    ``brokers`` are published every event from the outbox while the app runs.
    """
    policy = AccessPolicy(access or AccessConfig(bind=host, local_user=user), store)
    api_config = api or ApiConfig()
    events = EventFeed(store)  # one reader of the outbox for every SSE client and subscription
    subscriptions = ResourceSubscriptions(store, events)
    # MCP's check_alerts and send_test_alert deliver as the rest of the server does
    mcp = build_mcp(store, artifacts=artifacts, toolsets=toolsets, read_only=read_only,
                    user=user, delivery=api_config.delivery, events=events,
                    subscriptions=subscriptions)  # fmt: skip
    endpoint = McpEndpoint(mcp)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with endpoint.run(), anyio.create_task_group() as tasks:
            # Alert webhooks go out from their queue here, never inside a request.
            tasks.start_soon(run_delivery_worker, store, app.state.delivery)
            # Events: one shared reader for the streams; run.killed and pruning by a sweep.
            tasks.start_soon(events.run)
            tasks.start_soon(subscriptions.run)  # MCP resource subscriptions, from the same feed
            tasks.start_soon(partial(run_event_sweeper, store,
                                     retention=api_config.events_retention,
                                     every=api_config.events_sweep))  # fmt: skip
            # Brokers (CHACHAML_EVENTS): each published by one replica at a time, from its cursor.
            tasks.start_soon(run_brokers, store, brokers)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()

    probes = [Route("/healthz", healthz), Route("/readyz", readyz)]
    chat_api = chat_routes(store, artifacts, chat)  # POST /api/chat, read-only tools
    signin = signin_routes(policy)
    routes = [Route("/health", health), *probes, endpoint.route(), *chat_api, *signin, *ui_routes()]
    # The access layer wraps everything, so no route can be reached around it.
    app = Starlette(
        routes=routes, lifespan=lifespan, middleware=[Middleware(AccessLayer, policy=policy)]
    )
    app.state.store = store
    app.state.ui_user = user
    app.state.access = policy
    app.state.artifacts = artifacts
    app.state.events = events
    install_api(app, api_config)  # /api/w, /api/store/v1, /api/openapi.json, error envelope
    for kind, handler in ERROR_HANDLERS.items():  # unknown pages: a styled 404 with the nav
        app.add_exception_handler(kind, handler)
    return app


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one (the new soft limit).

    Every SSE client holds a socket for as long as it listens, and the usual soft limit
    (1,024) would refuse connections long before memory or CPU runs out.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if soft < want:
        with contextlib.suppress(OSError, ValueError):  # a limit above the kernel's: keep it
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def serve_http(
    store_url: str,
    artifact_root: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    toolsets: Iterable[str] = (),
    read_only: bool = False,
    user: str = "mcp",
    s3: S3Settings | None = None,
    api: ApiOptions | None = None,
    chat: ChatOptions | None = None,
) -> None:
    """Open the store and serve the app with uvicorn until interrupted."""
    import uvicorn

    brokers = open_brokers(api.settings.events) if api is not None else []  # bad URLs: refused now
    raise_open_file_limit()
    store = await open_store(store_url)
    try:
        config = None if api is None else await api.config(store, host)  # refuses unsafe setups
        access = api.access(host) if api is not None else AccessConfig(bind=host, local_user=user)
        policy = AccessPolicy(access, store)
        shown = f"[{host}]" if ":" in host else host
        print(
            f"chachaml: serving http://{shown}:{port} (MCP at /mcp) in"
            f" {policy.describe(await policy.mode())}",
            file=sys.stderr,
            flush=True,
        )
        app = create_app(
            store,
            artifacts=open_artifact_store(artifact_root, s3),
            toolsets=toolsets,
            read_only=read_only,
            host=host,
            user=user,
            api=config,
            chat=chat,
            access=access,
            brokers=brokers,
        )
        feed: EventFeed = app.state.events

        class Server(uvicorn.Server):
            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                # end the event streams first: uvicorn waits for every open connection, and a
                # browser tab on a live page holds one for as long as it is open
                feed.close()
                await super().shutdown(sockets)

        # Everything alive now lives as long as the process: moved out of the collector's
        # reach, it is not rescanned by every collection that request handling triggers (a
        # 10,000-point metric batch is validated 3x faster). Done here, once per process, not
        # in the app's lifespan: an app served inside a bigger process (the tests start some
        # hundred) would pay a full collection of that process's heap each time.
        gc.collect()
        gc.freeze()
        await Server(uvicorn.Config(app, host=host, port=port, log_level="info")).serve()
    finally:
        await store.close()

"""Probes for orchestrators: ``/healthz`` (the process is up), ``/readyz`` (it can serve).

``/readyz`` answers 200 only when the store answers a query and the artifact store can be
used, each within a few seconds; otherwise 503 with what failed, so a load balancer takes
the replica out of rotation until its database or bucket is back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from chachaml.errors import NotFound
from chachaml.store.artifacts import ArtifactStore
from chachaml.store.protocol import Store

PROBE_SECONDS = 5.0


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process is up and serving requests."""
    return JSONResponse({"status": "ok"})


async def _store_answers(store: Store) -> None:
    with suppress(NotFound):  # NotFound is an answer too
        await store.get_experiment("chachaml-readyz")  # one indexed lookup


async def _probe(check: Callable[[], Awaitable[None]]) -> str:
    try:
        with anyio.fail_after(PROBE_SECONDS):
            await check()
    except TimeoutError:
        return f"no answer within {PROBE_SECONDS:g}s"
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return "ok"


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the store and the artifact store are reachable (503 and the reason if not)."""
    store: Store = request.app.state.store
    artifacts: ArtifactStore | None = request.app.state.artifacts
    checks = {"store": await _probe(lambda: _store_answers(store))}
    if artifacts is not None:
        checks["artifacts"] = await _probe(artifacts.check)
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )

"""The web UI and its JSON read API: server-rendered pages over the same operations as MCP."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from chachaml.server.ui import (
    actions,
    alert_actions,
    alerts,
    artifacts,
    chat,
    compare,
    experiments,
    pipelines,
    registry,
    run,
    runs,
    search,
)

STATIC = Path(__file__).resolve().parent.parent / "static"


async def home(request: Request) -> RedirectResponse:
    """The dashboard is the Runs page."""
    return RedirectResponse("/runs", status_code=307)


def ui_routes() -> list[BaseRoute]:
    """Every page, its ``/api`` twin, the exports and the bundled static files."""
    return [
        Route("/", home),
        *runs.routes(),
        *run.routes(),
        *actions.routes(),
        *artifacts.routes(),
        *experiments.routes(),
        *search.routes(),
        *compare.routes(),
        *registry.routes(),
        *pipelines.routes(),
        *alerts.routes(),
        *alert_actions.routes(),
        *chat.routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


__all__ = ["ui_routes"]

"""The web UI and its JSON read API: server-rendered pages over the same operations as MCP."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from chachaml.server.ui import (
    actions,
    alert_actions,
    alerts,
    artifacts,
    chat,
    compare,
    experiments,
    overview,
    pipelines,
    registry,
    run,
    runs,
    search,
)
from chachaml.server.ui.error_pages import ERROR_HANDLERS

STATIC = Path(__file__).resolve().parent.parent / "static"


def ui_routes() -> list[BaseRoute]:
    """Every page, its ``/api`` twin, the exports and the bundled static files."""
    return [
        *overview.routes(),
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


__all__ = ["ERROR_HANDLERS", "ui_routes"]

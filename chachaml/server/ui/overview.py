"""The overview at ``/``: what needs a look now, in four short tables.

Running runs, recent failures (failed, and killed by a lost heartbeat), recent registry
changes (stage and alias audit events) and recently fired alerts, each linking to its page.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.records.runs import RunInfo
from chachaml.server.ui.common import store_of, twin
from chachaml.store.protocol import Store
from chachaml.tools import alerts as alert_ops
from chachaml.tools import registry as registry_ops
from chachaml.tools import runs as run_ops

ROWS = 10  # per table: a glance, with a link to the full page
MODELS_SCANNED = 5  # the most recently changed models hold the most recent audit events


def _row(run: RunInfo) -> dict[str, Any]:
    return {**run.model_dump(mode="json"), "duration_seconds": run.duration_seconds}


async def _failures(store: Store) -> list[RunInfo]:
    """Failed and killed runs, newest first."""
    failed = await run_ops.list_runs(store, status="failed", limit=ROWS)
    killed = await run_ops.list_runs(store, status="killed", limit=ROWS)
    return sorted([*failed, *killed], key=lambda r: r.started_at, reverse=True)[:ROWS]


async def _registry_changes(store: Store) -> list[dict[str, Any]]:
    """Stage and alias changes across the registry, newest first.

    The store keeps each model's audit trail with the model, and a change bumps the model's
    ``updated_at``; the latest changes are therefore among the latest updated models'.
    """
    models = sorted(await registry_ops.list_models(store), key=lambda m: m.updated_at)
    events = [
        event
        for model in reversed(models[-MODELS_SCANNED:])
        for event in (await registry_ops.get_model(store, model.name)).history
    ]
    events.sort(key=lambda e: e.at, reverse=True)
    return [e.model_dump(mode="json") for e in events[:ROWS]]


async def overview_page(request: Request) -> dict[str, Any]:
    """Running runs, recent failures, registry changes and fired alerts (10 of each at most)."""
    store = store_of(request)
    running = await run_ops.list_runs(store, status="running", limit=ROWS)
    alerts = await alert_ops.alert_history(store, None, ROWS)
    return {
        "running": [_row(r) for r in running],
        "failures": [_row(r) for r in await _failures(store)],
        "registry_changes": await _registry_changes(store),
        "alerts": [e.model_dump(mode="json", exclude={"attempts"}) for e in alerts],
        "rows": ROWS,
    }


def routes() -> list[Route]:
    """The overview at ``/`` and its JSON twin at ``/api/``."""
    return twin("/", overview_page, "overview.html")

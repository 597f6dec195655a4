"""The Alerts page: every rule with its condition, and recent events with their deliveries."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.server.ui.common import int_param, store_of, text_param, twin
from chachaml.tools import alerts as alert_ops
from chachaml.tools.webhooks import condition


async def alerts_page(request: Request) -> dict[str, Any]:
    """Rules (condition, webhook host, signing, last firing) and events newest first.

    ``?alert=`` narrows the events to one rule, ``?limit=`` caps them (1 to 500).
    """
    name = text_param(request, "alert")
    limit = int_param(request, "limit", 50, 1, 500)
    store = store_of(request)
    rules = await alert_ops.list_alerts(store)
    events = await alert_ops.alert_history(store, name, limit)
    return {
        "alert": name,
        "limit": limit,
        "rules": [{**r.model_dump(mode="json"), "condition": condition(r)} for r in rules],
        "events": [e.model_dump(mode="json") for e in events],
    }


def routes() -> list[Route]:
    """The Alerts page and its JSON twin."""
    return twin("/alerts", alerts_page, "alerts.html")

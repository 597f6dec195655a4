"""The Alerts page: every rule with its condition, and recent events with their deliveries.

Rules are created, edited, muted, deleted and test-fired from the page through the JSON POST
actions in :mod:`chachaml.server.ui.alert_actions` (static/alerts.js sends them).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from chachaml.records.alerts import Alert
from chachaml.server.ui.common import int_param, store_of, text_param, twin
from chachaml.tools import alerts as alert_ops
from chachaml.tools.webhooks import condition


def _plain(value: float | None, scale: float = 1.0) -> str:
    """A number as the form shows it: ``2`` not ``2.0``, blank for none."""
    return "" if value is None else f"{value / scale:g}"


def form_values(rule: Alert) -> dict[str, Any]:
    """A rule as the page's form fields hold it (windows in hours or minutes, as typed)."""
    window = rule.window_seconds
    return {
        "name": rule.name,
        "kind": rule.kind,
        "experiment": rule.experiment or "",
        "metric_key": rule.metric_key or "",
        "op": rule.op or "",
        "threshold": _plain(rule.threshold),
        "drop_pct": _plain(rule.drop_pct),
        "baseline_model": rule.baseline_model or "",
        "baseline_runs": "" if rule.baseline_runs is None else str(rule.baseline_runs),
        "no_completed_run_hours": _plain(window, 3600) if rule.kind == "no_completed_run" else "",
        "silent_minutes": _plain(window, 60) if rule.kind == "silent_run" else "",
        "cooldown_minutes": _plain(rule.cooldown_seconds, 60) if rule.cooldown_seconds else "",
        "webhook": rule.webhook or "",
        "signed": rule.signed,
        "muted": rule.muted,
    }


async def alerts_page(request: Request) -> dict[str, Any]:
    """Rules (condition, webhook host, signing, muted, last firing) and events newest first.

    Each rule carries ``form``: its fields as the page's edit form holds them.

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
        "rules": [
            {**r.model_dump(mode="json"), "condition": condition(r), "form": form_values(r)}
            for r in rules
        ],
        "events": [e.model_dump(mode="json") for e in events],
    }


def routes() -> list[Route]:
    """The Alerts page and its JSON twin."""
    return twin("/alerts", alerts_page, "alerts.html")

"""The opt-in ``alerts`` toolset: list, read what fired, evaluate, mute, send a test event."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from chachaml.records.alerts import Alert, AlertEvent, AlertTrial
from chachaml.server.mcp import render
from chachaml.server.mcp.runs import ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.store.server_state import require_server_state
from chachaml.tools import alerts as alert_ops
from chachaml.tools.alert_trial import send_test_alert as send_trial
from chachaml.tools.deliveries import wake
from chachaml.tools.webhooks import Delivery, condition


class AlertList(BaseModel):
    """Every alert rule, by name."""

    alerts: list[Alert]


class AlertEvents(BaseModel):
    """Alert events, newest first, with their webhook delivery status."""

    events: list[AlertEvent]


def alerts_text(alerts: list[Alert]) -> str:
    """Alert rules as rows."""
    if not alerts:
        return "No alert rules defined."
    rows = [
        [a.name, a.experiment or "(all)", condition(a), a.webhook, a.muted, a.last_fired_at]
        for a in alerts
    ]
    headers = ["alert", "experiment", "condition", "webhook", "muted", "last fired"]
    return f"{len(alerts)} alert rules:\n{render.table(headers, rows)}"


def events_text(events: list[AlertEvent], empty: str) -> str:
    """Alert events as rows."""
    if not events:
        return empty
    rows = [
        [e.fired_at, e.alert, e.run_id, e.experiment, e.value, e.delivery, len(e.attempts)]
        for e in events
    ]
    headers = ["fired", "alert", "run_id", "experiment", "value", "delivery", "attempts"]
    messages = "\n".join(f"- {e.message}" for e in events)
    return f"{len(events)} events:\n{render.table(headers, rows)}\n{messages}"


def trial_text(trial: AlertTrial) -> str:
    """A test event's outcome and its attempts as rows."""
    rows = [[a.at, a.status_code, a.error or "ok", a.seconds] for a in trial.attempts]
    table = render.table(["at", "status", "result", "seconds"], rows)
    outcome = "delivered" if trial.delivered else "NOT delivered"
    return f"Test event for {trial.alert!r} to {trial.webhook}: {outcome}.\n{table}"


Name = Annotated[str, Field(description="The alert rule's name (see list_alerts).")]


def alert_tools(store: Store, delivery: Delivery) -> list[ToolFn]:
    """The ``alerts`` toolset, bound to ``store``; deliveries as ``delivery`` says."""

    async def list_alerts() -> Annotated[CallToolResult, AlertList]:
        """Every alert rule: its metric condition or staleness window, experiment, webhook host.

        Example: {}.
        """
        found = await alert_ops.list_alerts(store)
        return answer(AlertList(alerts=found), alerts_text(found))

    async def alert_history(
        alert: Annotated[
            str | None, Field(description="An alert rule's name; omit for every rule.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="How many events (1-200).")] = 20,
    ) -> Annotated[CallToolResult, AlertEvents]:
        """What alert rules fired, newest first: run, value, message and webhook delivery status.

        Example: {"alert": "accuracy-low", "limit": 10}.
        """
        found = await alert_ops.alert_history(store, alert, limit)
        return answer(AlertEvents(events=found), events_text(found, "No alert has fired."))

    async def check_alerts() -> Annotated[CallToolResult, AlertEvents]:
        """Evaluate every alert rule now and queue webhooks for what fires; returns the new events.

        A rule fires at most once per run, so calling it again does not repeat alerts.
        Webhooks are sent by the server's delivery worker (see alert_history for their status).
        Example: {}.
        """
        server_store = require_server_state(store, "evaluating alerts")
        fired = await alert_ops.check_alerts(server_store, delivery)
        if any(e.delivery == "pending" for e in fired):
            wake()
        return answer(AlertEvents(events=fired), events_text(fired, "No alert fired."))

    async def mute_alert(
        alert: Name,
        muted: Annotated[bool, Field(description="true mutes the rule; false unmutes it.")] = True,
    ) -> Annotated[CallToolResult, Alert]:
        """Mute an alert rule (kept, but not evaluated: it fires nothing) or unmute it.

        Nothing else about the rule changes; setting it again keeps it muted.
        Example: {"alert": "accuracy-low", "muted": false}.
        """
        rule = await alert_ops.mute_alert(store, alert, muted)
        state = "muted: it fires nothing" if rule.muted else "unmuted: it is evaluated again"
        return answer(rule, f"Alert {rule.name!r} is {state}.\n{alerts_text([rule])}")

    async def send_test_alert(alert: Name) -> Annotated[CallToolResult, AlertTrial]:
        """Send an alert rule's webhook a test event now, to check it works; nothing is recorded.

        The body is marked "test": true, signed and retried as a real delivery; the result
        lists each attempt. A failed delivery is a result (delivered false), not an error.
        Example: {"alert": "accuracy-low"}.
        """
        trial = await send_trial(store, alert, delivery)
        return answer(trial, trial_text(trial))

    return [list_alerts, alert_history, check_alerts, mute_alert, send_test_alert]

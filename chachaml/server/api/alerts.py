"""Alert rules over HTTP: reads under ``/api/store/v1/alerts``, writes under ``/api/w/alerts``.

Rules are defined by any client with write scope and evaluated by this server: when metrics
arrive and runs end (the write API), and on request (``POST /api/w/alerts/check``, which a
remote ``check_alerts()`` calls). A rule's webhook URL and signing secret are write-only:
reads show the webhook's host and whether deliveries are signed, as every other surface does,
since a webhook URL is often a credential; so muting a rule (``/api/w/alerts/mute``) and
sending its webhook a test event (``/api/w/alerts/test``) happen here, where they are held.
Each endpoint is one call of an operation in :mod:`chachaml.tools.alerts` or
:mod:`chachaml.tools.alert_trial`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from chachaml.records.alerts import Alert, AlertEvent, AlertKind, AlertTrial, NewAlert
from chachaml.records.runs import Op
from chachaml.records.validation import MAX_FILTER, MAX_URL
from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import Api, Call
from chachaml.tools import alerts as alert_ops
from chachaml.tools import deliveries
from chachaml.tools.alert_trial import send_test_alert
from chachaml.tools.webhooks import Delivery

api = Api()
READ = "/api/store/v1/alerts"
ERR = (401, 403, 404, 422)
Name = Annotated[str, m.NoNul, Field(min_length=1, max_length=500)]
Number = Annotated[float, Field(allow_inf_nan=False)]


class SetAlert(m.Body):
    """A rule to create, or to replace the one with its name (its history is kept).

    ``kind`` says which fields apply: ``threshold`` (``metric_key``, ``op``, ``threshold``),
    ``drop`` (``metric_key``, ``drop_pct``, ``baseline_model`` or ``baseline_runs``),
    ``no_completed_run`` and ``silent_run`` (``window_seconds``).
    """

    name: Name
    kind: AlertKind
    experiment: Name | None = None
    metric_key: Annotated[str, m.NoNul, Field(min_length=1, max_length=250)] | None = None
    op: Op | None = None
    threshold: Number | None = None
    drop_pct: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    baseline_model: Name | None = None
    baseline_runs: int | None = Field(default=None, ge=1, le=100)
    window_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    cooldown_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    webhook_url: Annotated[str, m.NoNul, Field(max_length=MAX_URL)] | None = None
    secret: Annotated[str, m.NoNul, Field(min_length=1, max_length=MAX_FILTER)] | None = None
    muted: bool | None = Field(
        default=None, description="Mute (kept, not evaluated) or unmute; unset keeps it as is."
    )


class AlertName(m.Body):
    """One rule, by name."""

    name: Name


class MuteAlert(m.Body):
    """Mute a rule (kept, not evaluated: it fires nothing) or, with ``muted: false``, unmute it."""

    name: Name
    muted: bool = True


class EventQuery(m.Body):
    """Events of one rule (every rule without ``alert``), newest first."""

    alert: Name | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class CheckAlerts(m.Body):
    """Evaluate every rule now (``now``: the clock to judge staleness by; default the server's).

    Metric rules look at the runs started in the last ``lookback_hours``.
    """

    now: m.Time | None = None
    lookback_hours: float = Field(
        default=alert_ops.DEFAULT_LOOKBACK_HOURS, gt=0, le=24 * 366 * 100, allow_inf_nan=False
    )


class AlertList(BaseModel):
    """Every rule, by name, with when it last fired."""

    alerts: list[Alert]


class AlertEvents(BaseModel):
    """Events, newest first, with each webhook delivery attempt."""

    events: list[AlertEvent]


def _delivery(call: Call) -> Delivery:
    found: Delivery = call.request.app.state.delivery
    return found


@api.route("GET", READ, scope="read", response=AlertList, errors=(401, 403))
async def list_alerts(call: Call) -> AlertList:
    """Every alert rule, by name (webhooks shown by host only)."""
    return AlertList(alerts=await alert_ops.list_alerts(call.store))


@api.route("POST", READ + "/events", scope="read", body=EventQuery, response=AlertEvents,
           errors=ERR)  # fmt: skip
async def alert_events(call: Call) -> AlertEvents:
    """What a rule (or every rule) fired, newest first, with each delivery attempt."""
    q: EventQuery = call.body
    return AlertEvents(events=await alert_ops.alert_history(call.store, q.alert, q.limit))


@api.route("GET", READ + "/{name:path}", scope="read", response=Alert, errors=ERR)
async def get_alert(call: Call) -> Alert:
    """One alert rule (webhook shown by host only)."""
    return await alert_ops.get_alert(call.store, call.path("name"))


@api.route("POST", "/api/w/alerts", scope="write", body=SetAlert, response=Alert, errors=ERR)
async def set_alert(call: Call) -> Alert:
    """Create a rule, or replace the one with its name; attributed to the caller."""
    new = NewAlert(**call.body.model_dump(), created_by=call.user)
    allow = _delivery(call).allow_private
    return await alert_ops.set_alert(call.store, alert_ops.check_rule(new), allow_private=allow)


@api.route("POST", "/api/w/alerts/delete", scope="write", body=AlertName, response=m.Ok,
           errors=ERR)  # fmt: skip
async def delete_alert(call: Call) -> m.Ok:
    """Delete a rule and its history."""
    await alert_ops.delete_alert(call.store, call.body.name)
    return m.Ok()


@api.route("POST", "/api/w/alerts/mute", scope="write", body=MuteAlert, response=Alert,
           errors=ERR)  # fmt: skip
async def mute_alert(call: Call) -> Alert:
    """Mute or unmute a rule; nothing else about it changes (its webhook and secret stay)."""
    b: MuteAlert = call.body
    return await alert_ops.mute_alert(call.store, b.name, b.muted)


@api.route("POST", "/api/w/alerts/test", scope="write", body=AlertName, response=AlertTrial,
           errors=ERR)  # fmt: skip
async def test_alert(call: Call) -> AlertTrial:
    """Send the rule's webhook a test event now; the answer lists each attempt.

    The body is marked ``"test": true``, signed and retried as a real delivery is; nothing
    is recorded. A failed delivery is a 200 with ``delivered: false``; a rule without a
    webhook is a 422.
    """
    return await send_test_alert(call.store, call.body.name, _delivery(call))


@api.route("POST", "/api/w/alerts/check", scope="write", body=CheckAlerts,
           response=AlertEvents, errors=(401, 403, 422))  # fmt: skip
async def check_alerts(call: Call) -> AlertEvents:
    """Evaluate every rule now; the events fired (webhooks queued, sent by this server)."""
    b: CheckAlerts = call.body
    fired = await alert_ops.check_alerts(call.store, _delivery(call), now=b.now,
                                         lookback_hours=b.lookback_hours)  # fmt: skip
    if any(e.delivery == "pending" for e in fired):
        deliveries.wake()
    return AlertEvents(events=fired)

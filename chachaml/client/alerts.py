"""Alerts from Python: rules on runs' latest metrics and on silence, delivered to webhooks.

``chachaml.set_alert(...)`` and friends act through the default client; ``Alerts(client)``
binds the same API to another :class:`~chachaml.Client`. Rules are evaluated automatically
when a run ends (never failing the run: trouble is logged) and on demand by
:func:`check_alerts`, which also evaluates the staleness rules. Webhooks are queued, never
sent from here: a server (``chachaml serve``) sends them, or ``chachaml alerts deliver``::

    ml.set_alert("acc-low", metric_key="accuracy", op="<", threshold=0.8,
                 experiment="mnist", webhook_url="https://hooks.slack.com/services/...")
"""

from __future__ import annotations

from chachaml.client.bound import ClientBound
from chachaml.records.alerts import Alert, AlertEvent
from chachaml.tools import alerts as ops
from chachaml.tools.webhooks import Delivery


class Alerts(ClientBound):
    """The alerts API bound to a client (the default client when none is given)."""

    def set_alert(
        self,
        name: str,
        metric_key: str | None = None,
        op: str | None = None,
        threshold: float | None = None,
        experiment: str | None = None,
        webhook_url: str | None = None,
        *,
        drop_pct: float | None = None,
        baseline_model: str | None = None,
        baseline_runs: int | None = None,
        no_completed_run_hours: float | None = None,
        silent_minutes: float | None = None,
        cooldown_minutes: float = 0.0,
        secret: str | None = None,
    ) -> Alert:
        """Create a rule, or replace the rule with this name; returns it.

        Give exactly one of: ``op`` and ``threshold`` (a run's latest ``metric_key`` value
        compared with ``> >= < <= =``); ``drop_pct`` (the latest value more than that many
        percent below the production version of ``baseline_model``, or else the mean of the
        last ``baseline_runs`` completed runs, 5 by default); ``no_completed_run_hours`` (an
        experiment, or any, without a completed run that long); ``silent_minutes`` (a run
        that has not ended and has logged nothing that long). ``experiment`` narrows the rule;
        it fires at most once per run and not again within ``cooldown_minutes``.
        ``webhook_url`` must be http(s) on a public address (loopback and private ones need
        ``CHACHAML_WEBHOOK_ALLOW_PRIVATE=true``); with ``secret`` each delivery is HMAC-signed.
        """
        client = self.client
        new = ops.build_rule(
            name,
            client.current_user(),
            metric_key=metric_key,
            op=op,
            threshold=threshold,
            experiment=experiment,
            webhook_url=webhook_url,
            drop_pct=drop_pct,
            baseline_model=baseline_model,
            baseline_runs=baseline_runs,
            no_completed_run_hours=no_completed_run_hours,
            silent_minutes=silent_minutes,
            cooldown_minutes=cooldown_minutes,
            secret=secret,
        )
        return client.op(ops.set_alert, new, allow_private=client.settings.webhook_allow_private)

    def alerts(self) -> list[Alert]:
        """Every rule, by name (webhooks shown by host only)."""
        return self.client.op(ops.list_alerts)

    def delete_alert(self, name: str) -> None:
        """Delete a rule and its history; ``NotFound`` listing the rules if absent."""
        self.client.op(ops.delete_alert, name)

    def check_alerts(self) -> list[AlertEvent]:
        """Evaluate every rule now; returns the events fired, their webhooks queued."""
        client = self.client
        return client.op(ops.check_alerts, Delivery.from_settings(client.settings))

    def alert_history(self, name: str | None = None, limit: int = 50) -> list[AlertEvent]:
        """What a rule (or every rule) fired, newest first, with each delivery attempt."""
        return self.client.op(ops.alert_history, name, limit)


_default = Alerts()

set_alert = _default.set_alert
alerts = _default.alerts
delete_alert = _default.delete_alert
check_alerts = _default.check_alerts
alert_history = _default.alert_history

__all__ = [
    "Alert",
    "AlertEvent",
    "Alerts",
    "alert_history",
    "alerts",
    "check_alerts",
    "delete_alert",
    "set_alert",
]

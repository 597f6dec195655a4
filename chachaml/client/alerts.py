"""Alerts from Python: rules on runs' latest metrics and on silence, delivered to webhooks.

``chachaml.set_threshold_alert(...)`` and the other kinds (``set_drop_alert``,
``set_stale_alert``, ``set_silent_alert``: one function per kind of rule, each with only its
own arguments) act through the default client; ``Alerts(client)``
binds the same API to another :class:`~chachaml.Client`. Rules are evaluated automatically
when a run ends (never failing the run: trouble is logged) and on demand by
:func:`check_alerts`, which also evaluates the staleness rules; a muted rule
(:func:`mute_alert`) is kept but evaluated nowhere. Webhooks are queued, never sent from here:
a server (``chachaml serve``) sends them, or ``chachaml alerts deliver``. The one exception is
:func:`send_test_alert`, which sends a rule's webhook a marked test event now and says how it
went (against a server, the server sends it)::

    ml.set_threshold_alert("acc-low", "accuracy", "<", 0.8, experiment="mnist",
                           webhook_url="https://hooks.slack.com/services/...")
"""

from __future__ import annotations

from typing import Any

from chachaml.client.default import ClientBound
from chachaml.records.alerts import Alert, AlertEvent, AlertTrial
from chachaml.tools import alerts as ops
from chachaml.tools.alert_trial import send_test_alert as send_trial
from chachaml.tools.webhooks import Delivery


class Alerts(ClientBound):
    """The alerts API bound to a client (the default client when none is given)."""

    def set_threshold_alert(
        self,
        name: str,
        metric: str,
        op: str,
        threshold: float,
        *,
        experiment: str | None = None,
        webhook_url: str | None = None,
        cooldown_minutes: float = 0.0,
        secret: str | None = None,
    ) -> Alert:
        """Fire when a run's latest ``metric`` compares with ``threshold`` by ``op``.

        ``op`` is one of ``> >= < <= =``. Creates the rule, or replaces the rule with this
        name (its history stays); returns it. The arguments every kind shares: ``experiment``
        narrows the rule; it fires at most once per run and not again within
        ``cooldown_minutes``; ``webhook_url`` must be http(s) on a public address (loopback
        and private ones need ``CHACHAML_WEBHOOK_ALLOW_PRIVATE=true``); with ``secret`` each
        delivery is HMAC-signed.
        """
        return self._set(
            name, experiment, webhook_url, cooldown_minutes, secret,
            metric_key=metric, op=op, threshold=threshold,
        )  # fmt: skip

    def set_drop_alert(
        self,
        name: str,
        metric: str,
        drop_pct: float,
        *,
        baseline_model: str | None = None,
        baseline_runs: int | None = None,
        experiment: str | None = None,
        webhook_url: str | None = None,
        cooldown_minutes: float = 0.0,
        secret: str | None = None,
    ) -> Alert:
        """Fire when a run's latest ``metric`` is more than ``drop_pct`` percent below a baseline.

        The baseline is the production version of ``baseline_model``, or else the mean of
        the last ``baseline_runs`` completed runs (5 by default). The shared arguments are as
        for :meth:`set_threshold_alert`.
        """
        return self._set(
            name, experiment, webhook_url, cooldown_minutes, secret, metric_key=metric,
            drop_pct=drop_pct, baseline_model=baseline_model, baseline_runs=baseline_runs,
        )  # fmt: skip

    def set_stale_alert(
        self,
        name: str,
        no_completed_run_hours: float,
        *,
        experiment: str | None = None,
        webhook_url: str | None = None,
        cooldown_minutes: float = 0.0,
        secret: str | None = None,
    ) -> Alert:
        """Fire when an experiment (or any) has had no completed run for that many hours.

        Evaluated by :meth:`check_alerts` (a server runs it); shared arguments as for
        :meth:`set_threshold_alert`.
        """
        return self._set(
            name, experiment, webhook_url, cooldown_minutes, secret,
            no_completed_run_hours=no_completed_run_hours,
        )  # fmt: skip

    def set_silent_alert(
        self,
        name: str,
        silent_minutes: float,
        *,
        experiment: str | None = None,
        webhook_url: str | None = None,
        cooldown_minutes: float = 0.0,
        secret: str | None = None,
    ) -> Alert:
        """Fire when a run that has not ended has logged nothing for ``silent_minutes``.

        Evaluated by :meth:`check_alerts`; shared arguments as for :meth:`set_threshold_alert`.
        """
        return self._set(
            name, experiment, webhook_url, cooldown_minutes, secret,
            silent_minutes=silent_minutes,
        )  # fmt: skip

    def _set(
        self,
        name: str,
        experiment: str | None,
        webhook_url: str | None,
        cooldown_minutes: float,
        secret: str | None,
        **kind: Any,
    ) -> Alert:
        """Build, check and store a rule of one kind (``kind`` holds that kind's fields)."""
        client = self.client
        new = ops.build_rule(
            name,
            client.current_user(),
            experiment=experiment,
            webhook_url=webhook_url,
            cooldown_minutes=cooldown_minutes,
            secret=secret,
            **kind,
        )
        return client.op(ops.set_alert, new, allow_private=client.settings.webhook_allow_private)

    def alerts(self) -> list[Alert]:
        """Every rule, by name (webhooks shown by host only)."""
        return self.client.op(ops.list_alerts)

    def delete_alert(self, name: str) -> None:
        """Delete a rule and its history; ``NotFound`` listing the rules if absent."""
        self.client.op(ops.delete_alert, name)

    def mute_alert(self, name: str) -> Alert:
        """Mute a rule: it is kept (and listed ``muted``) but fires nothing until unmuted.

        Setting the rule again (``set_threshold_alert``...) keeps it muted. ``NotFound``
        listing the rules if absent.
        """
        return self.client.op(ops.mute_alert, name, True)

    def unmute_alert(self, name: str) -> Alert:
        """Unmute a rule: it is evaluated again from now on."""
        return self.client.op(ops.mute_alert, name, False)

    def send_test_alert(self, name: str) -> AlertTrial:
        """Send a rule's webhook a test event now, signed and retried as a real one.

        The body is the rule's usual one marked ``"test": true`` with a ``[test]`` prefix;
        nothing is recorded (no history, no cooldown). Returns each attempt and whether one
        got a 2xx: a dead webhook is an answer, not an exception. ``InvalidInput`` if the rule
        has no webhook. Against a server, the server sends it with its own settings.
        """
        client = self.client
        return client.op(send_trial, name, Delivery.from_settings(client.settings))

    def check_alerts(self) -> list[AlertEvent]:
        """Evaluate every rule now; returns the events fired, their webhooks queued."""
        client = self.client
        return client.op(ops.check_alerts, Delivery.from_settings(client.settings))

    def alert_history(self, name: str | None = None, limit: int = 50) -> list[AlertEvent]:
        """What a rule (or every rule) fired, newest first, with each delivery attempt."""
        return self.client.op(ops.alert_history, name, limit)


_default = Alerts()

set_threshold_alert = _default.set_threshold_alert
set_drop_alert = _default.set_drop_alert
set_stale_alert = _default.set_stale_alert
set_silent_alert = _default.set_silent_alert
alerts = _default.alerts
delete_alert = _default.delete_alert
mute_alert = _default.mute_alert
unmute_alert = _default.unmute_alert
send_test_alert = _default.send_test_alert
check_alerts = _default.check_alerts
alert_history = _default.alert_history

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertTrial",
    "Alerts",
    "alert_history",
    "alerts",
    "check_alerts",
    "delete_alert",
    "mute_alert",
    "send_test_alert",
    "set_drop_alert",
    "set_silent_alert",
    "set_stale_alert",
    "set_threshold_alert",
    "unmute_alert",
]

"""Alert rules and the events they fire, as every alert query returns them.

Like :mod:`chachaml.records.runs`, each record is a frozen pydantic model with aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from chachaml.records.runs import Op

AlertKind = Literal["threshold", "drop", "no_completed_run", "silent_run"]
DeliveryStatus = Literal["none", "pending", "delivered", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


KIND_HELP = (
    "Which fields apply. threshold: a run's latest metric_key value op threshold."
    " drop: a run's latest value fell more than drop_pct percent below a baseline, the"
    " production version of baseline_model (its source run's value) or else the mean of the"
    " baseline_runs completed runs of the experiment started before it."
    " no_completed_run: an experiment has had no completed run for window_seconds."
    " silent_run: a run that never ended has logged no metric for window_seconds."
)


class AlertDefinition(_Model):
    """A rule's name and the condition it fires on (``kind`` says which fields apply).

    Shared by stored rules and new ones; the schemas every client sees (OpenAPI, MCP output)
    carry the explanation of each kind on the ``kind`` field.
    """

    name: str
    kind: AlertKind = Field(description=KIND_HELP)
    experiment: str | None = None
    metric_key: str | None = None
    op: Op | None = None
    threshold: float | None = None
    drop_pct: float | None = None
    baseline_model: str | None = None
    baseline_runs: int | None = None
    window_seconds: float | None = None
    cooldown_seconds: float = 0.0


MUTED_HELP = "A muted rule is kept but not evaluated: it fires nothing."


class Alert(AlertDefinition):
    """A rule as lists show it: the webhook is shown by host only, the secret never."""

    muted: bool = Field(default=False, description=MUTED_HELP)

    webhook: str | None = None
    signed: bool = False
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_fired_at: datetime | None = None


class AlertRule(Alert):
    """A rule with what delivery needs: the full webhook URL and the signing secret."""

    webhook_url: str | None = None
    secret: str | None = Field(default=None, repr=False)

    def public(self) -> Alert:
        """The rule without its webhook URL and secret."""
        return Alert(**self.model_dump(exclude={"webhook_url", "secret"}))


class NewAlert(AlertDefinition):
    """A validated rule for the store to create, or to replace the one with its name."""

    webhook_url: str | None = None
    secret: str | None = Field(default=None, repr=False)
    created_by: str
    # None keeps a replaced rule's muted state (a new rule starts unmuted): code that sets
    # its rules again at each start does not unmute what someone muted
    muted: bool | None = Field(default=None, description=MUTED_HELP + " Unset: kept as is.")


class DeliveryAttempt(_Model):
    """One POST to the webhook: when, the HTTP status (if any answer came), the error if any.

    ``error`` is a kind (``timeout``, ``connection refused``, ``http 503``...), never the
    receiver's answer: a webhook's error body can hold anything, secrets included.
    """

    at: datetime
    status_code: int | None = None
    error: str | None = None
    seconds: float


class AlertTrial(_Model):
    """How a rule's test event went: each delivery attempt, and whether one got a 2xx.

    A test event is recorded nowhere; this answer is all that is left of it. ``webhook`` is
    the host only, as listings show it; ``payload`` the body sent (no secret is in it).
    """

    alert: str
    webhook: str | None
    delivered: bool
    attempts: list[DeliveryAttempt]
    payload: dict[str, Any]


class NewAlertEvent(_Model):
    """What evaluation found, for the store to record as a firing of a rule.

    ``subject`` is what the rule fires at most once for: a run id, or for
    ``no_completed_run`` the experiment and its last completed run.
    """

    subject: str
    run_id: str | None = None
    experiment: str | None = None
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    message: str
    fired_at: float
    webhook: bool
    payload: dict[str, Any] | None = None  # the webhook body to queue when ``webhook``


class AlertEvent(_Model):
    """A firing of a rule, with its delivery state and every attempt made."""

    id: int
    alert: str
    kind: AlertKind
    subject: str
    run_id: str | None = None
    experiment: str | None = None
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    message: str
    fired_at: datetime
    delivery: DeliveryStatus
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class PendingDelivery(_Model):
    """A queued webhook delivery a worker has claimed: where to POST what, and which try.

    The queue holds two kinds of subscriber, sent alike: an alert rule's webhook
    (``event_id`` is the alert event, ``alert`` the rule) and a subscription to the event
    stream (``subscription``; ``event`` the outbox event's id, sent for de-duplication).
    ``id`` is the queue row.
    """

    id: int = 0
    event_id: int | None = None
    alert: str | None = None
    subscription: int | None = None
    event: str | None = None
    url: str
    payload: dict[str, Any]
    secret: str | None = Field(default=None, repr=False)
    attempt: int  # this try's number, from 1


class TriedDelivery(NamedTuple):
    """One try of a claimed queue row: the row's id, the attempt, its status now, the retry."""

    id: int
    attempt: DeliveryAttempt
    status: DeliveryStatus
    retry_at: float | None = None


class StaleExperiment(_Model):
    """An experiment whose latest completed run ended before a cutoff (or that has none)."""

    experiment: str
    last_run_id: str | None = None
    last_completed_at: datetime | None = None


class SilentRun(_Model):
    """A run that never ended and whose latest metric point (or start) is before a cutoff."""

    run_id: str
    experiment: str
    last_activity: datetime

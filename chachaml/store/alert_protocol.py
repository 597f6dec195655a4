"""The ``AlertStore`` protocol: the alerting part of every backend.

Contract for implementers (on top of the ``Store`` contract):

- A rule's name is unique: ``set_alert`` with a name that exists replaces that rule's
  definition in place (same identity, same history, its ``created_*`` kept), never adds a
  second rule; concurrent ``set_alert`` calls on one name leave exactly one rule.
- ``fire_alert`` is the only way an event is recorded and is one transaction that first
  locks the rule's row, so that whatever the interleaving of tasks, threads or processes:
  a rule fires at most once per subject (a unique index backs this), and not again within
  its cooldown of its last firing. It returns ``None`` when it records nothing.
- ``fire_alert`` of an event with ``webhook`` set, for a rule with a webhook URL, queues one
  delivery (``event.payload`` as the body) in the same transaction: no event is left without
  its delivery, and none is delivered twice by construction of the queue below.
- ``claim_deliveries`` hands each due pending delivery to one caller only, whatever the
  number of processes or replicas (PostgreSQL: ``FOR UPDATE SKIP LOCKED``), counting the try
  and leasing the row until ``lease_until`` (a caller that dies leaves it to be claimed
  again then). The queue survives restarts: it is a table.
- ``record_delivery`` appends one attempt to an event's list and sets its delivery status
  (and its queued delivery's: ``pending`` again at ``retry_at``, or final); attempts are kept
  in the order recorded. Attempts hold an error kind, never a receiver's answer.
- Events are listed newest first. Deleting a rule deletes its events.
- A rule or event that does not exist raises ``NotFound`` naming it (for rules, listing the
  names that exist).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from chachaml.records.alerts import (
    AlertEvent,
    AlertRule,
    DeliveryAttempt,
    DeliveryStatus,
    NewAlert,
    NewAlertEvent,
    PendingDelivery,
    SilentRun,
    StaleExperiment,
)


class AlertStore(Protocol):
    """Async persistence for alert rules and the events they fire."""

    async def set_alert(self, new: NewAlert) -> AlertRule:
        """Create the rule, or replace the definition of the rule with its name."""
        ...

    async def list_alerts(self) -> list[AlertRule]:
        """Every rule, by name."""
        ...

    async def get_alert(self, name: str) -> AlertRule:
        """One rule; ``NotFound`` listing the rules if absent."""
        ...

    async def delete_alert(self, name: str) -> None:
        """Delete a rule and its events; ``NotFound`` listing the rules if absent."""
        ...

    async def alert_events(self, name: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events of one rule (of every rule when ``name`` is ``None``), newest first."""
        ...


class AlertServerStore(Protocol):
    """Alert internals only a server's own store has: firing, the webhook queue, staleness.

    A remote client asks the server to evaluate its rules instead (``RemoteStore.check_alerts``).
    """

    async def fire_alert(self, name: str, event: NewAlertEvent) -> AlertEvent | None:
        """Record a firing unless the rule fired for this subject already or is cooling down.

        The event's delivery status starts ``pending`` when ``event.webhook`` is true, else
        ``none``.
        """
        ...

    async def record_delivery(
        self,
        event_id: int,
        attempt: DeliveryAttempt,
        status: DeliveryStatus,
        retry_at: float | None = None,
    ) -> None:
        """Append a delivery attempt to an event and set its delivery status.

        With ``status`` ``pending``, ``retry_at`` (epoch seconds) is when the next try is due.
        """
        ...

    async def claim_deliveries(
        self, now: float, lease_until: float, limit: int
    ) -> list[PendingDelivery]:
        """Claim up to ``limit`` pending deliveries due at ``now``, leased until ``lease_until``."""
        ...

    async def pending_deliveries(self) -> tuple[int, float | None]:
        """How many deliveries are pending, and when the earliest is due (epoch seconds)."""
        ...

    async def stale_experiments(
        self, experiment: str | None, cutoff: float
    ) -> list[StaleExperiment]:
        """Experiments (all, or the one named) with no run completed at or after ``cutoff``.

        An experiment with no completed run at all counts only if created before ``cutoff``.
        """
        ...

    async def silent_runs(self, experiment: str | None, cutoff: float) -> list[SilentRun]:
        """Unarchived runs never ended whose latest metric point (or start) is before ``cutoff``."""
        ...


@runtime_checkable
class ServerEvaluatedAlerts(Protocol):
    """A store whose server evaluates the alert rules: a remote store.

    A :class:`~chachaml.client.remote.RemoteStore` has no :class:`AlertServerStore` methods:
    its server fires rules itself when metrics arrive and runs end, and evaluates every rule
    on request.
    """

    async def check_alerts(
        self, now: float | None = None, lookback_hours: float | None = None
    ) -> list[AlertEvent]:
        """Have the server evaluate every rule now; the events fired (webhooks queued)."""
        ...

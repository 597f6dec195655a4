"""Alert rules and events in portable SQL: a mixin of :class:`~chachaml.store.sql_store.SQLStore`.

``fire_alert`` first updates the rule's row: that row lock makes concurrent evaluations of
one rule (tasks or processes, on either backend) decide one after the other, so cooldowns
hold; the unique index on ``(alert_id, subject)`` backs "at most once per subject".

Webhook deliveries are queued in ``webhook_deliveries`` in the transaction that records the
event. ``claim_deliveries`` hands due rows to one worker: PostgreSQL locks them with
``FOR UPDATE SKIP LOCKED`` (replicas never claim the same row), SQLite has one writer; the
claim pushes ``next_attempt_at`` out by a lease, so a worker that dies mid-send leaves its
rows to be claimed again once the lease ends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from chachaml.errors import NotFound
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
from chachaml.records.runs import to_datetime
from chachaml.store.sql_driver import Row, Tx

T = TypeVar("T")

RULE_FIELDS = (
    "kind",
    "experiment",
    "metric_key",
    "op",
    "threshold",
    "drop_pct",
    "baseline_model",
    "baseline_runs",
    "window_seconds",
    "cooldown_seconds",
    "webhook_url",
    "secret",
)
RULE_SELECT = (
    "SELECT name, "
    + ", ".join(RULE_FIELDS)
    + ", created_by, created_at, updated_at, last_fired_at FROM alerts"
)
# an event's delivery status is its queued delivery's, when it has one
EVENT_SELECT = """
    SELECT ev.id, a.name, a.kind, ev.subject, ev.run_id, ev.experiment, ev.value, ev.threshold,
           ev.baseline, ev.message, ev.fired_at, coalesce(d.status, ev.delivery), ev.attempts
    FROM alert_events ev JOIN alerts a ON a.id = ev.alert_id
    LEFT JOIN webhook_deliveries d ON d.event_id = ev.id
"""
# errors recorded before error kinds: "HTTP 500: <the receiver's body>", "ConnectError: <...>"
LEGACY_HTTP_ERROR = re.compile(r"^HTTP (\d{3})\b")
LEGACY_EXCEPTION = re.compile(r"^([A-Z]\w*(?:Error|Exception|Timeout)): ")
LAST_ACTIVITY = (
    "coalesce((SELECT max(m.last_time) FROM metric_summary m WHERE m.run_id = r.id), r.started_at)"
)


def webhook_host(url: str | None) -> str | None:
    """A webhook URL shown without its path, which often carries a token."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…"


def _rule(row: Sequence[Any]) -> AlertRule:
    fields = dict(zip(RULE_FIELDS, row[1:13], strict=True))
    return AlertRule(
        name=row[0],
        **fields,
        webhook=webhook_host(fields["webhook_url"]),
        signed=fields["secret"] is not None,
        created_by=row[13],
        created_at=to_datetime(row[14]),
        updated_at=to_datetime(row[15]),
        last_fired_at=to_datetime(row[16]),
    )


def _error_kind(error: str | None) -> str | None:
    """An attempt's error as a kind: older rows held the receiver's body after a colon."""
    if error is None:
        return None
    if found := LEGACY_HTTP_ERROR.match(error):
        return f"http {found[1]}"
    if found := LEGACY_EXCEPTION.match(error):
        return found[1]
    return error


def _attempt(raw: dict[str, Any]) -> DeliveryAttempt:
    return DeliveryAttempt.model_validate({**raw, "error": _error_kind(raw.get("error"))})


def _event(row: Sequence[Any]) -> AlertEvent:
    return AlertEvent(
        id=row[0],
        alert=row[1],
        kind=row[2],
        subject=row[3],
        run_id=row[4],
        experiment=row[5],
        value=row[6],
        threshold=row[7],
        baseline=row[8],
        message=row[9],
        fired_at=to_datetime(row[10]),
        delivery=row[11],
        attempts=[_attempt(a) for a in json.loads(row[12])],
    )


class SQLAlerts:
    """The :class:`~chachaml.store.alert_protocol.AlertStore` methods of SQLStore."""

    if TYPE_CHECKING:  # provided by SQLStore

        async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _query(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

        @property
        def url(self) -> str:
            """The store's URL (``sqlite:`` or PostgreSQL)."""
            ...

    @staticmethod
    async def _alert_row(db: Tx, name: str) -> Sequence[Any]:
        found = await db.fetchall(RULE_SELECT + " WHERE name = ?", (name,))
        if found:
            return found[0]
        known = ", ".join(r[0] for r in await db.fetchall("SELECT name FROM alerts ORDER BY name"))
        raise NotFound(f"alert {name!r} not found (alerts: {known or 'none'})")

    async def set_alert(self, new: NewAlert) -> AlertRule:
        """Insert a rule, or replace the definition of the one with its name."""
        values = [getattr(new, f) for f in RULE_FIELDS]
        now = time.time()

        async def body(db: Tx) -> None:
            await db.execute(
                "INSERT INTO alerts (name, "
                + ", ".join(RULE_FIELDS)
                + ", created_by, created_at, updated_at) VALUES ("
                + ", ".join("?" * (len(RULE_FIELDS) + 4))
                + ") ON CONFLICT (name) DO UPDATE SET "
                + ", ".join(f"{f} = excluded.{f}" for f in RULE_FIELDS)
                + ", updated_at = excluded.updated_at",
                [new.name, *values, new.created_by, now, now],
            )

        await self._transact(body)
        return await self.get_alert(new.name)

    async def list_alerts(self) -> list[AlertRule]:
        """Every rule, by name."""
        return [_rule(r) for r in await self._fetch(RULE_SELECT + " ORDER BY name")]

    async def get_alert(self, name: str) -> AlertRule:
        """One rule by name."""
        return _rule(await self._query(lambda db: self._alert_row(db, name)))

    async def delete_alert(self, name: str) -> None:
        """Delete a rule and (by cascade) its events."""

        async def body(db: Tx) -> None:
            await self._alert_row(db, name)
            await db.execute("DELETE FROM alerts WHERE name = ?", (name,))

        await self._transact(body)

    async def fire_alert(self, name: str, event: NewAlertEvent) -> AlertEvent | None:
        """Record a firing unless already fired for the subject or within the cooldown."""

        async def body(db: Tx) -> int | None:
            await self._alert_row(db, name)
            await db.execute(  # locks the rule's row until commit
                "UPDATE alerts SET last_fired_at = last_fired_at WHERE name = ?", (name,)
            )
            ((alert_id, cooldown, last, url),) = await db.fetchall(
                "SELECT id, cooldown_seconds, last_fired_at, webhook_url FROM alerts"
                " WHERE name = ?",
                (name,),
            )
            if last is not None and cooldown > 0 and event.fired_at < last + cooldown:
                return None
            if await db.fetchall(
                "SELECT 1 FROM alert_events WHERE alert_id = ? AND subject = ?",
                (alert_id, event.subject),
            ):
                return None
            await db.execute(
                "INSERT INTO alert_events (alert_id, subject, run_id, experiment, value,"
                " threshold, baseline, message, fired_at, delivery)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert_id,
                    event.subject,
                    event.run_id,
                    event.experiment,
                    event.value,
                    event.threshold,
                    event.baseline,
                    event.message,
                    event.fired_at,
                    "pending" if event.webhook else "none",
                ),
            )
            await db.execute(
                "UPDATE alerts SET last_fired_at = ? WHERE id = ?"
                " AND (last_fired_at IS NULL OR last_fired_at < ?)",
                (event.fired_at, alert_id, event.fired_at),
            )
            ((event_id,),) = await db.fetchall(
                "SELECT id FROM alert_events WHERE alert_id = ? AND subject = ?",
                (alert_id, event.subject),
            )
            if event.webhook and url is not None:
                body = event.payload if event.payload is not None else {"text": event.message}
                now = time.time()
                await db.execute(
                    "INSERT INTO webhook_deliveries (event_id, alert, url, payload,"
                    " next_attempt_at, status, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (event_id, name, url, json.dumps(body), now, now, now),
                )
            return int(event_id)

        event_id = await self._transact(body)
        if event_id is None:
            return None
        return _event((await self._fetch(EVENT_SELECT + " WHERE ev.id = ?", (event_id,)))[0])

    async def record_delivery(
        self,
        event_id: int,
        attempt: DeliveryAttempt,
        status: DeliveryStatus,
        retry_at: float | None = None,
    ) -> None:
        """Append an attempt to an event's JSON list and set its (and its queue row's) status."""

        async def body(db: Tx) -> None:
            changed = await db.execute(  # locks the event's row until commit
                "UPDATE alert_events SET delivery = ? WHERE id = ?", (status, event_id)
            )
            if not changed:
                raise NotFound(f"alert event {event_id} not found")
            ((raw,),) = await db.fetchall(
                "SELECT attempts FROM alert_events WHERE id = ?", (event_id,)
            )
            attempts = [*json.loads(raw), attempt.model_dump(mode="json")]
            await db.execute(
                "UPDATE alert_events SET attempts = ? WHERE id = ?",
                (json.dumps(attempts), event_id),
            )
            await db.execute(
                "UPDATE webhook_deliveries SET status = ?, last_status = ?, last_error = ?,"
                " next_attempt_at = coalesce(?, next_attempt_at), updated_at = ?"
                " WHERE event_id = ?",
                (status if status != "none" else "failed", attempt.status_code, attempt.error,
                 retry_at, time.time(), event_id),
            )  # fmt: skip

        await self._transact(body)

    async def claim_deliveries(
        self, now: float, lease_until: float, limit: int
    ) -> list[PendingDelivery]:
        """Claim up to ``limit`` pending deliveries due at ``now`` until ``lease_until``."""
        lock = "" if self.url.startswith("sqlite") else " FOR UPDATE SKIP LOCKED"

        async def body(db: Tx) -> list[Row]:
            due = await db.fetchall(
                "SELECT id FROM webhook_deliveries WHERE status = 'pending'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?" + lock,
                (now, limit),
            )
            if not due:
                return []
            ids = [r[0] for r in due]
            marks = ", ".join("?" * len(ids))
            await db.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?,"
                f" updated_at = ? WHERE id IN ({marks})",
                (lease_until, now, *ids),
            )
            return await db.fetchall(
                "SELECT d.event_id, d.alert, d.url, d.payload, a.secret, d.attempts"
                " FROM webhook_deliveries d JOIN alert_events ev ON ev.id = d.event_id"
                f" JOIN alerts a ON a.id = ev.alert_id WHERE d.id IN ({marks}) ORDER BY d.id",
                ids,
            )

        return [
            PendingDelivery(
                event_id=event_id,
                alert=alert,
                url=url,
                payload=json.loads(payload),
                secret=secret,
                attempt=attempt,
            )
            for event_id, alert, url, payload, secret, attempt in await self._transact(body)
        ]

    async def pending_deliveries(self) -> tuple[int, float | None]:
        """How many deliveries are pending, and when the earliest is due."""
        ((count, due),) = await self._fetch(
            "SELECT count(*), min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
        )
        return int(count), None if due is None else float(due)

    async def alert_events(self, name: str | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events of one rule, or of all, newest first."""

        async def body(db: Tx) -> list[Row]:
            if name is None:
                return await db.fetchall(
                    EVENT_SELECT + " ORDER BY ev.fired_at DESC, ev.id DESC LIMIT ?", (limit,)
                )
            await self._alert_row(db, name)
            return await db.fetchall(
                EVENT_SELECT + " WHERE a.name = ? ORDER BY ev.fired_at DESC, ev.id DESC LIMIT ?",
                (name, limit),
            )

        return [_event(r) for r in await self._query(body)]

    async def stale_experiments(
        self, experiment: str | None, cutoff: float
    ) -> list[StaleExperiment]:
        """Experiments whose latest completed run ended before ``cutoff``."""
        sql = """
            SELECT e.name, e.created_at,
                   (SELECT r.id FROM runs r WHERE r.experiment_id = e.id
                     AND r.status = 'completed' AND r.archived = 0
                     ORDER BY r.ended_at DESC, r.id LIMIT 1),
                   (SELECT max(r.ended_at) FROM runs r WHERE r.experiment_id = e.id
                     AND r.status = 'completed' AND r.archived = 0)
            FROM experiments e
        """
        args: list[Any] = []
        if experiment is not None:
            sql += " WHERE e.name = ?"
            args.append(experiment)
        found = await self._fetch(sql + " ORDER BY e.name", args)
        return [
            StaleExperiment(
                experiment=name, last_run_id=run_id, last_completed_at=to_datetime(ended)
            )
            for name, created, run_id, ended in found
            if (ended if ended is not None else created) < cutoff
        ]

    async def silent_runs(self, experiment: str | None, cutoff: float) -> list[SilentRun]:
        """Runs never ended whose latest metric point (or start) is before ``cutoff``."""
        sql = (
            f"SELECT r.id, e.name, {LAST_ACTIVITY} FROM runs r"
            " JOIN experiments e ON e.id = r.experiment_id"
            f" WHERE r.status = 'running' AND r.archived = 0 AND {LAST_ACTIVITY} < ?"
        )
        args: list[Any] = [cutoff]
        if experiment is not None:
            sql += " AND e.name = ?"
            args.append(experiment)
        found = await self._fetch(sql + " ORDER BY r.started_at, r.id", args)
        return [
            SilentRun(run_id=rid, experiment=exp, last_activity=to_datetime(at))
            for rid, exp, at in found
        ]

"""Alert rules, their events, and the reads that evaluating a rule needs.

``fire_alert`` first updates the rule's row: that row lock makes concurrent evaluations of
one rule (tasks or processes, on either backend) decide one after the other, so cooldowns
hold; the unique index on ``(alert_id, subject)`` backs "at most once per subject". An event
for a rule with a webhook queues its delivery (:mod:`deliveries`) in the same transaction.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from chachaml.errors import NotFound
from chachaml.records.alerts import (
    AlertEvent,
    AlertRule,
    DeliveryAttempt,
    NewAlert,
    NewAlertEvent,
    SilentRun,
    StaleExperiment,
)
from chachaml.records.events import AlertFired
from chachaml.records.runs import to_datetime
from chachaml.store.sql.database import Database, Row, Tx, fetch
from chachaml.store.sql.events import emit

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
    "muted",
)
RULE_SELECT = (
    "SELECT name, "
    + ", ".join(RULE_FIELDS)
    + ", created_by, created_at, updated_at, last_fired_at FROM alerts"
)
# an event's delivery status is its queued delivery's, when it has one
EVENT_SELECT = """
    SELECT ev.id, a.name AS alert, a.kind, ev.subject, ev.run_id, ev.experiment, ev.value,
           ev.threshold, ev.baseline, ev.message, ev.fired_at,
           coalesce(d.status, ev.delivery) AS delivery, ev.attempts
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


def _rule(row: Row) -> AlertRule:
    return AlertRule(
        name=row["name"],
        **{f: row[f] for f in RULE_FIELDS if f != "muted"},
        muted=bool(row["muted"]),
        webhook=webhook_host(row["webhook_url"]),
        signed=row["secret"] is not None,
        created_by=row["created_by"],
        created_at=to_datetime(row["created_at"]),
        updated_at=to_datetime(row["updated_at"]),
        last_fired_at=to_datetime(row["last_fired_at"]),
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


EVENT_COLUMNS = (
    "id",
    "alert",
    "kind",
    "subject",
    "run_id",
    "experiment",
    "value",
    "threshold",
    "baseline",
    "message",
    "delivery",
)


def _event(row: Row) -> AlertEvent:
    return AlertEvent(
        **{c: row[c] for c in EVENT_COLUMNS},
        fired_at=to_datetime(row["fired_at"]),
        attempts=[_attempt(a) for a in json.loads(row["attempts"])],
    )


class Alerts:
    """Alert rules, the events they fire, and what evaluating them reads."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @staticmethod
    async def _alert_row(db: Tx, name: str) -> Row:
        found = await db.fetchall(RULE_SELECT + " WHERE name = ?", (name,))
        if found:
            return found[0]
        known = ", ".join(
            r["name"] for r in await db.fetchall("SELECT name FROM alerts ORDER BY name")
        )
        raise NotFound(f"alert {name!r} not found (alerts: {known or 'none'})")

    async def set_alert(self, new: NewAlert) -> AlertRule:
        """Insert a rule, or replace the definition of the one with its name.

        ``muted`` is replaced only when given; a new rule without it starts unmuted.
        """
        values = [int(new.muted or 0) if f == "muted" else getattr(new, f) for f in RULE_FIELDS]
        replaced = [f for f in RULE_FIELDS if f != "muted" or new.muted is not None]
        now = time.time()

        async def body(db: Tx) -> None:
            await db.execute(
                "INSERT INTO alerts (name, "
                + ", ".join(RULE_FIELDS)
                + ", created_by, created_at, updated_at) VALUES ("
                + ", ".join("?" * (len(RULE_FIELDS) + 4))
                + ") ON CONFLICT (name) DO UPDATE SET "
                + ", ".join(f"{f} = excluded.{f}" for f in replaced)
                + ", updated_at = excluded.updated_at",
                [new.name, *values, new.created_by, now, now],
            )

        await self._db.transact(body)
        return await self.get_alert(new.name)

    async def list_alerts(self) -> list[AlertRule]:
        """Every rule, by name."""
        return [_rule(r) for r in await fetch(self._db, RULE_SELECT + " ORDER BY name")]

    async def get_alert(self, name: str) -> AlertRule:
        """One rule by name."""
        return _rule(await self._db.query(lambda db: self._alert_row(db, name)))

    async def delete_alert(self, name: str) -> None:
        """Delete a rule and (by cascade) its events."""

        async def body(db: Tx) -> None:
            await self._alert_row(db, name)
            await db.execute("DELETE FROM alerts WHERE name = ?", (name,))

        await self._db.transact(body)

    async def fire_alert(self, name: str, event: NewAlertEvent) -> AlertEvent | None:
        """Record a firing unless already fired for the subject or within the cooldown."""

        async def body(db: Tx) -> int | None:
            await self._alert_row(db, name)
            await db.execute(  # locks the rule's row until commit
                "UPDATE alerts SET last_fired_at = last_fired_at WHERE name = ?", (name,)
            )
            (rule,) = await db.fetchall(
                "SELECT id, cooldown_seconds, last_fired_at, webhook_url FROM alerts"
                " WHERE name = ?",
                (name,),
            )
            alert_id, cooldown = rule["id"], rule["cooldown_seconds"]
            last, url = rule["last_fired_at"], rule["webhook_url"]
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
            (fired,) = await db.fetchall(
                "SELECT id FROM alert_events WHERE alert_id = ? AND subject = ?",
                (alert_id, event.subject),
            )
            event_id = fired["id"]
            alert = AlertFired(alert=name, event_id=event_id, alert_subject=event.subject,
                               message=event.message, run_id=event.run_id,
                               experiment_name=event.experiment)  # fmt: skip
            await emit(db, alert, at=event.fired_at)
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

        event_id = await self._db.transact(body)
        if event_id is None:
            return None
        return _event((await fetch(self._db, EVENT_SELECT + " WHERE ev.id = ?", (event_id,)))[0])

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

        return [_event(r) for r in await self._db.query(body)]

    async def stale_experiments(
        self, experiment: str | None, cutoff: float
    ) -> list[StaleExperiment]:
        """Experiments whose latest completed run ended before ``cutoff``."""
        sql = """
            SELECT e.name, e.created_at,
                   (SELECT r.id FROM runs r WHERE r.experiment_id = e.id
                     AND r.status = 'completed' AND r.archived = 0
                     ORDER BY r.ended_at DESC, r.id LIMIT 1) AS last_run_id,
                   (SELECT max(r.ended_at) FROM runs r WHERE r.experiment_id = e.id
                     AND r.status = 'completed' AND r.archived = 0) AS last_completed_at
            FROM experiments e
        """
        args: list[Any] = []
        if experiment is not None:
            sql += " WHERE e.name = ?"
            args.append(experiment)
        found = await fetch(self._db, sql + " ORDER BY e.name", args)
        return [
            StaleExperiment(
                experiment=r["name"],
                last_run_id=r["last_run_id"],
                last_completed_at=to_datetime(r["last_completed_at"]),
            )
            for r in found
            if (r["last_completed_at"] if r["last_completed_at"] is not None else r["created_at"])
            < cutoff
        ]

    async def silent_runs(self, experiment: str | None, cutoff: float) -> list[SilentRun]:
        """Runs never ended whose latest metric point (or start) is before ``cutoff``."""
        sql = (
            f"SELECT r.id, e.name, {LAST_ACTIVITY} AS last_activity FROM runs r"
            " JOIN experiments e ON e.id = r.experiment_id"
            f" WHERE r.status = 'running' AND r.archived = 0 AND {LAST_ACTIVITY} < ?"
        )
        args: list[Any] = [cutoff]
        if experiment is not None:
            sql += " AND e.name = ?"
            args.append(experiment)
        found = await fetch(self._db, sql + " ORDER BY r.started_at, r.id", args)
        return [
            SilentRun(
                run_id=r["id"], experiment=r["name"], last_activity=to_datetime(r["last_activity"])
            )
            for r in found
        ]

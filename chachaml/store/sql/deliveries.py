"""The webhook delivery queue: a table, so it survives restarts and is shared by replicas.

Deliveries are queued in ``webhook_deliveries`` by the transaction that records their alert
event (:mod:`alerts`). ``claim_deliveries`` hands due rows to one worker: PostgreSQL locks
them with ``FOR UPDATE SKIP LOCKED`` (replicas never claim the same row), SQLite has one
writer; the claim pushes ``next_attempt_at`` out by a lease, so a worker that dies mid-send
leaves its rows to be claimed again once the lease ends.

Subscriptions to the event stream queue their events here too
(:mod:`chachaml.store.sql.subscriptions`): one queue, one claim, one worker for both kinds
of subscriber. A subscription's rows go out in order: only its oldest pending row (its head)
can be claimed, so a later event waits for the retries of an earlier one. A claim of a head
also takes the rows that follow it (``follow``), for the claimer to send one after another:
no one else can claim them, as they are never a head while the claimed head is pending, and
each becomes a head only once the rows before it are done, still under the claimer's lease.
"""

from __future__ import annotations

import json
import time

from chachaml.errors import NotFound
from chachaml.records.alerts import DeliveryAttempt, DeliveryStatus, PendingDelivery
from chachaml.store.sql.database import Database, Row, Tx, fetch
from chachaml.store.sql.rows import marks

SKIP_LOCKED = {"sqlite": "", "postgresql": " FOR UPDATE SKIP LOCKED"}
# a row that may go out now: an alert's, or the oldest pending row of its subscription
HEAD = (
    "(d.subscription_id IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p"
    " WHERE p.subscription_id = d.subscription_id AND p.status = 'pending' AND p.id < d.id))"
)


class Deliveries:
    """Queued webhook deliveries and the attempts recorded on their events."""

    def __init__(self, database: Database) -> None:
        self._db = database

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
            (event,) = await db.fetchall(
                "SELECT attempts FROM alert_events WHERE id = ?", (event_id,)
            )
            attempts = [*json.loads(event["attempts"]), attempt.model_dump(mode="json")]
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

        await self._db.transact(body)

    async def claim_deliveries(
        self, now: float, lease_until: float, limit: int, follow: int = 0
    ) -> list[PendingDelivery]:
        """Claim up to ``limit`` pending deliveries due at ``now`` until ``lease_until``.

        With each subscription's head come up to ``follow`` of its next pending rows.
        """
        lock = SKIP_LOCKED[self._db.dialect]

        async def body(db: Tx) -> list[Row]:
            due = await db.fetchall(
                "SELECT d.id, d.subscription_id FROM webhook_deliveries d"
                f" WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND {HEAD}"
                " ORDER BY d.next_attempt_at, d.id LIMIT ?" + lock,
                (now, limit),
            )
            if not due:
                return []
            ids = [r["id"] for r in due]
            for head in due if follow > 0 else ():
                if head["subscription_id"] is not None:
                    ids += [
                        r["id"]
                        for r in await db.fetchall(
                            "SELECT id FROM webhook_deliveries WHERE subscription_id = ?"
                            " AND status = 'pending' AND id > ? ORDER BY id LIMIT ?",
                            (head["subscription_id"], head["id"], follow),
                        )
                    ]
            await db.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?,"
                f" updated_at = ? WHERE id IN ({marks(ids)})",
                (lease_until, now, *ids),
            )
            return await db.fetchall(
                "SELECT d.id, d.event_id, d.alert, d.subscription_id, d.event_seq, d.url,"
                " d.payload, coalesce(a.secret, s.secret) AS secret, d.attempts"
                " FROM webhook_deliveries d LEFT JOIN alert_events ev ON ev.id = d.event_id"
                " LEFT JOIN alerts a ON a.id = ev.alert_id"
                " LEFT JOIN subscriptions s ON s.id = d.subscription_id"
                f" WHERE d.id IN ({marks(ids)}) ORDER BY d.id",
                ids,
            )

        return [
            PendingDelivery(
                id=r["id"],
                event_id=r["event_id"],
                alert=r["alert"],
                subscription=r["subscription_id"],
                event=None if r["event_seq"] is None else str(r["event_seq"]),
                url=r["url"],
                payload=json.loads(r["payload"]),
                secret=r["secret"],
                attempt=r["attempts"],
            )
            for r in await self._db.transact(body)
        ]

    async def pending_deliveries(self) -> tuple[int, float | None]:
        """How many deliveries are pending, and when the earliest that may go out is due.

        A subscription's row behind its oldest pending one is not due, whatever its time.
        """
        (found,) = await fetch(
            self._db,
            f"SELECT count(*) AS n, min(CASE WHEN {HEAD} THEN d.next_attempt_at END) AS due"
            " FROM webhook_deliveries d WHERE d.status = 'pending'",
        )
        due = found["due"]
        return int(found["n"]), None if due is None else float(due)

"""Subscriptions: webhook targets of the event stream, fed into the webhook delivery queue.

Each subscription keeps a cursor in the outbox (``last_seq``). :meth:`queue_events` is one
transaction that locks the subscriptions behind the outbox's head (PostgreSQL: ``FOR UPDATE
SKIP LOCKED``, so replicas split them and never queue one twice; SQLite has one writer),
reads a page of events after the lowest cursor, queues each matching event as a row of
``webhook_deliveries`` (unique per subscription and event) and moves the cursors past the
page. So an event is queued exactly once per subscription, and a crash before the commit
queues it again later rather than never. Sending is the queue's business
(:mod:`chachaml.store.sql.deliveries`), which hands out a subscription's rows one at a time
in id order; once final, a row is deleted and counted on its subscription.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from chachaml.errors import NotFound
from chachaml.records.alerts import TriedDelivery
from chachaml.records.events import EventFilter
from chachaml.records.runs import to_datetime
from chachaml.records.subscriptions import NewSubscription, Subscription
from chachaml.store.sql.alerts import webhook_host
from chachaml.store.sql.database import Database, Row, Tx
from chachaml.store.sql.events import SELECT, event_from_row
from chachaml.store.sql.rows import marks

SKIP_LOCKED = {"sqlite": "", "postgresql": " FOR UPDATE SKIP LOCKED"}
COUNTERS = {"delivered": ", delivered = delivered + 1", "failed": ", failed = failed + 1"}
LISTED = (
    "SELECT s.id, s.url, s.types, s.secret, s.created_by, s.created_at, s.last_seq,"
    " s.delivered, s.failed, s.last_status, s.last_error, s.last_attempt_at,"
    " (SELECT count(*) FROM webhook_deliveries d WHERE d.subscription_id = s.id"
    " AND d.status = 'pending') AS pending FROM subscriptions s"
)


def _subscription(row: Row) -> Subscription:
    return Subscription(
        id=row["id"],
        target=webhook_host(row["url"]) or "",
        types=json.loads(row["types"]),
        signed=row["secret"] is not None,
        created_by=row["created_by"],
        created_at=to_datetime(row["created_at"]),
        after=row["last_seq"],
        pending=row["pending"],
        delivered=row["delivered"],
        failed=row["failed"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        last_attempt_at=to_datetime(row["last_attempt_at"]),
    )


class Subscriptions:
    """Webhook subscriptions, their outbox cursors, and their rows of the delivery queue."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def subscribe(self, new: NewSubscription) -> Subscription:
        """Create a subscription that starts after the newest event committed now."""

        async def body(db: Tx) -> Row:
            (head,) = await db.fetchall("SELECT coalesce(max(seq), 0) AS seq FROM events")
            (row,) = await db.fetchall(
                "INSERT INTO subscriptions (url, types, secret, created_by, created_at,"
                " last_seq) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (new.url, json.dumps(list(new.types)), new.secret, new.created_by, time.time(),
                 head["seq"]),
            )  # fmt: skip
            (found,) = await db.fetchall(LISTED + " WHERE s.id = ?", (row["id"],))
            return found

        return _subscription(await self._db.transact(body))

    async def unsubscribe(self, subscription_id: int) -> None:
        """Delete a subscription and whatever of it is still queued; ``NotFound`` if absent."""

        async def body(db: Tx) -> int:
            await db.execute(
                "DELETE FROM webhook_deliveries WHERE subscription_id = ?", (subscription_id,)
            )
            return await db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))

        if not await self._db.transact(body):
            raise NotFound(f"subscription {subscription_id} not found; see subscriptions()")

    async def list_subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        rows = await self._db.query(lambda db: db.fetchall(LISTED + " ORDER BY s.id"))
        return [_subscription(r) for r in rows]

    async def queue_events(self, limit: int) -> int:
        """Queue the next page (``limit`` events) for the subscriptions behind.

        Returns how many events the page held (``limit``: there may be more). A read finds
        out first whether any subscription is behind, so the usual answer costs no write.
        """
        behind = await self._db.query(
            lambda db: db.fetchall(
                "SELECT 1 AS one FROM subscriptions WHERE last_seq <"
                " (SELECT coalesce(max(seq), 0) FROM events) LIMIT 1"
            )
        )
        if not behind:
            return 0
        lock = SKIP_LOCKED[self._db.dialect]

        async def body(db: Tx) -> int:
            (head,) = await db.fetchall("SELECT coalesce(max(seq), 0) AS seq FROM events")
            subs = await db.fetchall(
                "SELECT id, url, types, last_seq FROM subscriptions WHERE last_seq < ?"
                " ORDER BY id" + lock,
                (head["seq"],),
            )
            if not subs:
                return 0
            low = min(s["last_seq"] for s in subs)
            events = [
                event_from_row(r)
                for r in await db.fetchall(
                    SELECT + " WHERE seq > ? ORDER BY seq LIMIT ?", (low, limit)
                )
            ]
            if not events:  # pruned since the head was read (an idle store): next time
                return 0
            last = events[-1].seq
            now = time.time()
            rows = []
            for sub in subs:
                wanted = EventFilter(types=tuple(json.loads(sub["types"])))
                rows += [
                    (sub["id"], e.seq, sub["url"], e.model_dump_json(), now, now, now)
                    for e in events
                    if e.seq > sub["last_seq"] and wanted.matches(e)
                ]
            if rows:
                await db.executemany(
                    "INSERT INTO webhook_deliveries (subscription_id, event_seq, url, payload,"
                    " next_attempt_at, status, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)"
                    " ON CONFLICT (subscription_id, event_seq) DO NOTHING",
                    rows,
                )
            ids = [s["id"] for s in subs]
            await db.execute(
                "UPDATE subscriptions SET last_seq = ? WHERE last_seq < ?"
                f" AND id IN ({marks(ids)})",
                (last, last, *ids),
            )
            return len(events)

        return await self._db.transact(body)

    async def record_deliveries(
        self, tried: Sequence[TriedDelivery], unsent: Sequence[int], now: float
    ) -> None:
        """Record the tries of a subscription's claimed rows, and hand back those not sent.

        Each tried row is retried (``pending`` at its ``retry_at``) or done: counted on its
        subscription and dropped. ``unsent`` rows (claimed, then held back behind a row to
        retry) are due again at ``now``, their claim not counted as a try. One transaction;
        rows that are gone (their subscription was deleted meanwhile) record nothing.
        """

        async def body(db: Tx) -> None:
            for delivery_id, attempt, status, retry_at in tried:
                found = await db.fetchall(
                    "SELECT subscription_id FROM webhook_deliveries WHERE id = ?", (delivery_id,)
                )
                if not found:
                    continue
                if status == "pending":
                    await db.execute(
                        "UPDATE webhook_deliveries SET last_status = ?, last_error = ?,"
                        " next_attempt_at = coalesce(?, next_attempt_at), updated_at = ?"
                        " WHERE id = ?",
                        (attempt.status_code, attempt.error, retry_at, now, delivery_id),
                    )
                else:
                    await db.execute("DELETE FROM webhook_deliveries WHERE id = ?", (delivery_id,))
                counter = COUNTERS.get(status, "")
                await db.execute(
                    "UPDATE subscriptions SET last_status = ?, last_error = ?,"
                    f" last_attempt_at = ?{counter} WHERE id = ?",
                    (attempt.status_code, attempt.error, attempt.at.timestamp(),
                     found[0]["subscription_id"]),
                )  # fmt: skip
            if unsent:
                await db.execute(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?, attempts = attempts - 1,"
                    f" updated_at = ? WHERE id IN ({marks(unsent)}) AND status = 'pending'",
                    (now, now, *unsent),
                )

        await self._db.transact(body)

    async def expire_queued(self, before: float) -> int:
        """Give up on rows queued before ``before`` (the events' retention): counted failed.

        A receiver away for longer than the outbox keeps its events misses them, as a broker
        does; the queue does not grow without end meanwhile.
        """

        async def body(db: Tx) -> int:
            old = await db.fetchall(
                "SELECT subscription_id, count(*) AS n FROM webhook_deliveries"
                " WHERE subscription_id IS NOT NULL AND created_at < ? GROUP BY subscription_id",
                (before,),
            )
            for row in old:
                await db.execute(
                    "UPDATE subscriptions SET failed = failed + ? WHERE id = ?",
                    (row["n"], row["subscription_id"]),
                )
            await db.execute(
                "DELETE FROM webhook_deliveries WHERE subscription_id IS NOT NULL"
                " AND created_at < ?",
                (before,),
            )
            return sum(int(r["n"]) for r in old)

        return await self._db.transact(body)

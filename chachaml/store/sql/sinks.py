"""Event sinks: each broker's cursor in the outbox, leased to one publisher at a time.

A row per sink (``event_sinks``): the id of the last event published to it and the publisher
(``owner``) leasing it until ``lease_until``. ``claim_sink`` takes the row inside one
transaction that first locks it (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; a row another
replica is claiming this instant is skipped, not waited for); SQLite has one writer. Every
later move of the cursor names the owner, so a publisher whose lease was taken over (it
stalled past it) learns so at its next step and stops, rather than moving the cursor of the
one that took over.
"""

from __future__ import annotations

from chachaml.store.sql.database import Database, Tx

SKIP_LOCKED = {"sqlite": "", "postgresql": " FOR UPDATE SKIP LOCKED"}


class Sinks:
    """Cursors of the brokers events are published to."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def claim_sink(self, name: str, owner: str, now: float, lease_until: float) -> int | None:
        """The sink's cursor if ``owner`` holds (or now takes) its lease, else ``None``."""
        lock = SKIP_LOCKED[self._db.dialect]

        async def body(db: Tx) -> int | None:
            await db.execute(
                "INSERT INTO event_sinks (name, last_seq, updated_at) VALUES (?, 0, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, now),
            )
            rows = await db.fetchall(
                "SELECT last_seq, owner, lease_until FROM event_sinks WHERE name = ?" + lock,
                (name,),
            )
            if not rows:  # another replica is claiming it right now
                return None
            (row,) = rows
            if row["owner"] not in (None, owner) and (row["lease_until"] or 0) > now:
                return None
            await db.execute(
                "UPDATE event_sinks SET owner = ?, lease_until = ?, updated_at = ? WHERE name = ?",
                (owner, lease_until, now, name),
            )
            return int(row["last_seq"])

        return await self._db.transact(body)

    async def advance_sink(
        self, name: str, owner: str, last_seq: int, now: float, lease_until: float
    ) -> bool:
        """Move the cursor to ``last_seq`` and renew the lease; ``False`` if ``owner`` lost it."""
        changed = await self._db.transact(
            lambda db: db.execute(
                "UPDATE event_sinks SET last_seq = ?, lease_until = ?, updated_at = ?"
                " WHERE name = ? AND owner = ? AND last_seq <= ?",
                (last_seq, lease_until, now, name, owner, last_seq),
            )
        )
        return changed > 0

    async def release_sink(self, name: str, owner: str) -> None:
        """Give the lease up (another publisher may claim the sink at once)."""
        await self._db.transact(
            lambda db: db.execute(
                "UPDATE event_sinks SET owner = NULL, lease_until = NULL"
                " WHERE name = ? AND owner = ?",
                (name, owner),
            )
        )

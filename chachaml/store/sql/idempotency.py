"""Idempotency keys: a request sent again with its key gets the first request's reply.

The primary key ``(user_name, key)`` of ``idempotency_keys`` makes a claim atomic on both
backends: ``INSERT ... ON CONFLICT DO NOTHING`` inserts for exactly one of racing requests.
"""

from __future__ import annotations

import time

from chachaml.store.server_state import IdempotentReply
from chachaml.store.sql.database import Database, Tx


class IdempotencyKeys:
    """Claims on idempotency keys, and the replies stored under them."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def claim_idempotency_key(
        self, user: str, key: str, request_hash: str, lease: float = 60.0
    ) -> IdempotentReply | None:
        """Insert an in-flight claim, take over one older than ``lease``, or return the row.

        A claim left in flight by a server that died is taken over by one UPDATE whose
        condition includes the old ``created_at``: of racing retries exactly one changes the
        row (the others see the new time), so only one runs the request again.
        """

        async def body(db: Tx) -> IdempotentReply | None:
            now = time.time()
            claimed = await db.execute(
                "INSERT INTO idempotency_keys (user_name, key, request_hash, status, created_at)"
                " VALUES (?, ?, ?, 0, ?) ON CONFLICT (user_name, key) DO NOTHING",
                (user, key, request_hash, now),
            )
            if claimed:
                return None
            taken = await db.execute(
                "UPDATE idempotency_keys SET created_at = ? WHERE user_name = ? AND key = ?"
                " AND request_hash = ? AND status = 0 AND created_at < ?",
                (now, user, key, request_hash, now - lease),
            )
            if taken:
                return None
            (row,) = await db.fetchall(
                "SELECT request_hash, status, body FROM idempotency_keys"
                " WHERE user_name = ? AND key = ?",
                (user, key),
            )
            return IdempotentReply(
                request_hash=row["request_hash"], status=row["status"], body=row["body"]
            )

        return await self._db.transact(body)

    async def finish_idempotency_key(self, user: str, key: str, status: int, body: str) -> None:
        """Store the reply under the key, unless a reply is already there (a takeover's)."""

        async def write(db: Tx) -> None:
            await db.execute(
                "UPDATE idempotency_keys SET status = ?, body = ?"
                " WHERE user_name = ? AND key = ? AND status = 0",
                (status, body, user, key),
            )

        await self._db.transact(write)

    async def release_idempotency_key(self, user: str, key: str) -> None:
        """Delete an in-flight claim."""

        async def write(db: Tx) -> None:
            await db.execute(
                "DELETE FROM idempotency_keys WHERE user_name = ? AND key = ? AND status = 0",
                (user, key),
            )

        await self._db.transact(write)

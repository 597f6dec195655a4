"""API tokens and idempotency keys in portable SQL: a mixin of ``SQLStore``.

The primary key ``(user_name, key)`` of ``idempotency_keys`` makes a claim atomic on both
backends: ``INSERT ... ON CONFLICT DO NOTHING`` inserts for exactly one of racing requests.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from chachaml.store.api_protocol import IdempotentReply, Scope, TokenOwner
from chachaml.store.sql_driver import Row, Tx

T = TypeVar("T")


class SQLApi:
    """The :class:`~chachaml.store.api_protocol.ApiStore` methods of SQLStore."""

    if TYPE_CHECKING:  # provided by SQLStore

        async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _query(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def create_token(self, user: str, scope: Scope, token_hash: str) -> None:
        """Record a token hash."""

        async def body(db: Tx) -> None:
            await db.execute(
                "INSERT INTO api_tokens (user_name, scope, token_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (user, scope, token_hash, time.time()),
            )

        await self._transact(body)

    async def find_token(self, token_hash: str) -> TokenOwner | None:
        """The owner of a token hash."""
        found = await self._fetch(
            "SELECT user_name, scope FROM api_tokens WHERE token_hash = ?", (token_hash,)
        )
        return TokenOwner(user=found[0][0], scope=found[0][1]) if found else None

    async def has_tokens(self) -> bool:
        """Whether the table holds any token."""
        return bool(await self._fetch("SELECT 1 FROM api_tokens LIMIT 1"))

    async def claim_idempotency_key(
        self, user: str, key: str, request_hash: str
    ) -> IdempotentReply | None:
        """Insert an in-flight claim, or return the row already there."""

        async def body(db: Tx) -> IdempotentReply | None:
            claimed = await db.execute(
                "INSERT INTO idempotency_keys (user_name, key, request_hash, status, created_at)"
                " VALUES (?, ?, ?, 0, ?) ON CONFLICT (user_name, key) DO NOTHING",
                (user, key, request_hash, time.time()),
            )
            if claimed:
                return None
            row = (
                await db.fetchall(
                    "SELECT request_hash, status, body FROM idempotency_keys"
                    " WHERE user_name = ? AND key = ?",
                    (user, key),
                )
            )[0]
            return IdempotentReply(request_hash=row[0], status=row[1], body=row[2])

        return await self._transact(body)

    async def finish_idempotency_key(self, user: str, key: str, status: int, body: str) -> None:
        """Store the reply under the key."""

        async def write(db: Tx) -> None:
            await db.execute(
                "UPDATE idempotency_keys SET status = ?, body = ? WHERE user_name = ? AND key = ?",
                (status, body, user, key),
            )

        await self._transact(write)

    async def release_idempotency_key(self, user: str, key: str) -> None:
        """Delete an in-flight claim."""

        async def write(db: Tx) -> None:
            await db.execute(
                "DELETE FROM idempotency_keys WHERE user_name = ? AND key = ? AND status = 0",
                (user, key),
            )

        await self._transact(write)
